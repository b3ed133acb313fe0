"""Loading and validating a pipeline file.

Validation finds every problem before anything runs, and reports each in one line
that names the table, the key, what is allowed and, for a typo, the close match. It
resolves every component the pipeline names: the factory is imported and every
component but the dataset (whose construction reads data) is built with its settings,
so a component that cannot load fails here, before any run directory exists.
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molplat.errors import ValidationError
from molplat.models.heads import LOSSES, Head, Heads
from molplat.plugins import PluginManager, close_match, get_plugin_manager
from molplat.specs import ComponentSpec, Setting
from molplat.structure import Target

#: pipeline table -> component kind
COMPONENT_TABLES: dict[str, str] = {
    "dataset": "dataset",
    "representation": "representation",
    "model": "model",
    "trainer": "trainer_backend",
    "search": "searcher",
    "explain": "explainer",
    "simulate": "simulator",
}
REQUIRED_TABLES = ("dataset", "representation", "model")
DEFAULT_TRAINER = "cpu"
LIST_TABLES = ("explain",)  # [[explain]] may appear several times
#: components built during validation; datasets are built by the run (building reads data)
BUILT_WHILE_VALIDATING = ("representation", "model", "trainer", "search", "explain", "simulate")
MAX_DEPTH = 16
MAX_FILE_BYTES = 8 * 1024 * 1024
#: unknown keys beyond this many are counted but not matched against the allowed ones
MATCHED_UNKNOWN = 50

#: keys the core handles for every dataset, beside the dataset's own settings
DATASET_COMMON = (
    Setting("target", "str|list[str]", None, "the target to learn, or several: target = [\"homo\", \"lumo\"] "
            "(default: the dataset's default target)"),
    Setting("split", "list[float]", [0.8, 0.1, 0.1], "train, val and test fractions", minimum=0.0, maximum=1.0),
    Setting("split_seed", "int", 0, "seed of the random split", minimum=0, maximum=2**32 - 1),
)
TARGET_SETTINGS = (
    Setting("loss", "str", None, "loss of this target: mse, l1, huber (regression) or bce (binary classification, "
            "values 0 and 1); default: [trainer] loss", choices=LOSSES),
    Setting("weight", "float", 1.0, "weight of this target's loss; weights are normalised to sum to 1",
            minimum=0.0, maximum=1e6, exclusive_minimum=True),
)
CORE_TABLES: dict[str, tuple[Setting, ...]] = {
    "output": (
        Setting("dir", "path", "runs", "folder that holds run directories (relative to the pipeline file)",
                must_exist=False),
        Setting("name", "str", None, "run name (default: the pipeline file's name); a plain name, no folders"),
        Setting("plots", "bool", True, "write PNG plots"),
    ),
    "plugins": (
        Setting("disable", "list[str]", [], "plugins not to load for this pipeline"),
        Setting("versions", "dict", {}, "plugin versions a run used (written by molplat; informational)"),
    ),
    "data": (
        Setting("num_workers", "int", 0, "processes that featurise (or read) structures for training; 0: the main "
                "process", minimum=0, maximum=64),
        Setting("in_memory", "bool", True, "featurise every structure once and keep the results in memory; false: "
                "featurise each batch again in the workers, holding nothing (data larger than memory)"),
        Setting("store", "path", None, "folder of a preprocessed store (`molplat preprocess`); runs read its "
                "shards memory-mapped and build it first when it is missing", must_exist=False),
    ),
}
#: tables whose values may differ between a run and the pipeline that resumes it
RESUMABLE_DIFFERENCES = ("output", "plugins", "data")


def _check_settings(where: str, table: dict[str, Any], schema: tuple[Setting, ...], owner: str,
                    base: Path, check_paths: bool = True) -> tuple[dict, list[str]]:
    problems: list[str] = []
    by_name = {s.name: s for s in schema}
    resolved: dict[str, Any] = {}
    unknown = 0
    for key, value in table.items():
        setting = by_name.get(key)
        if setting is None:
            unknown += 1
            hint = close_match(str(key), list(by_name)) if unknown <= MATCHED_UNKNOWN else ""
            allowed = ", ".join(by_name) or "none"
            problems.append(f"{where}: unknown key {key!r} for {owner}{hint} (allowed keys: {allowed})")
            continue
        problem = setting.check(value)
        if problem:
            problems.append(f"{where} {key}: {problem}")
            resolved[key] = value
            continue
        value = setting.resolve_path(value, base)
        if check_paths and setting.type == "path" and setting.must_exist and value and not Path(value).exists():
            problems.append(f"{where} {key}: {value} does not exist; fix the path (relative paths are read from "
                            f"the pipeline file's folder, {base})")
        resolved[key] = value
    for setting in schema:
        if setting.name not in resolved:
            if setting.required:
                problems.append(f"{where}: missing required key {setting.name!r} for {owner} ({setting.help})")
            resolved[setting.name] = copy.deepcopy(setting.resolve_path(setting.default, base))
    return resolved, problems


def _depth_problem(raw: Any) -> str | None:
    """Arrays and tables nested deeper than MAX_DEPTH, found without recursion."""
    stack = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"arrays or tables are nested more than {MAX_DEPTH} levels deep; no pipeline needs that"
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A pipeline file as a dict, or one ValidationError line naming the file and the fix."""
    label = str(path)
    if not path.is_file():
        raise ValidationError("pipeline file not found; check the path", source=label)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError(f"the file has {path.stat().st_size} bytes, more than a pipeline's "
                              f"{MAX_FILE_BYTES}; pass a pipeline TOML file", source=label)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file "
                              f"as UTF-8", source=label) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"not valid TOML: {exc}", source=label) from None
    except RecursionError:
        raise ValidationError(f"arrays or tables are nested more than {MAX_DEPTH} levels deep; no pipeline "
                              f"needs that", source=label) from None
    return raw


@dataclass
class ComponentChoice:
    """A component named in a pipeline table, with its settings resolved against its schema."""

    table: str
    spec: ComponentSpec
    settings: dict[str, Any]

    def build(self, **extra: Any) -> Any:
        return self.spec.load()(**self.settings, **extra)

    def build_model(self, heads: Heads, statistics: Any = None) -> Any:
        """The model for ``heads``; ``statistics`` reaches factories that take it (see molplat.models)."""
        from molplat.models.base import build_model

        return build_model(self.spec.load(), self.settings, heads, statistics)


@dataclass
class Pipeline:
    """A validated pipeline; build it with :meth:`load`."""

    raw: dict[str, Any]
    source: str
    components: dict[str, ComponentChoice]
    explainers: list[ComponentChoice]
    dataset_common: dict[str, Any]
    output: dict[str, Any]
    disabled: list[str]
    manager: PluginManager = field(repr=False)
    base_dir: Path = field(default_factory=Path.cwd)
    data: dict[str, Any] = field(default_factory=dict)
    target_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, source: Any, manager: PluginManager | None = None, for_model: bool = False,
             base_dir: str | Path | None = None) -> "Pipeline":
        """Parse and validate a TOML path or a dict; raise ValidationError listing every problem.

        Relative paths resolve against the file's folder (``base_dir`` or the working
        folder for a dict). ``for_model`` loads a run's pipeline only to rebuild its
        model: data paths need not exist and stage components are not built.
        """
        if isinstance(source, dict):
            problem = _depth_problem(source)
            if problem:
                raise ValidationError(problem, source="<pipeline dict>")
            raw, label, default_name = copy.deepcopy(source), "<pipeline dict>", "run"
            base = Path(base_dir) if base_dir is not None else Path.cwd()
        else:
            path = Path(source)
            label, default_name = str(path), path.stem
            raw = read_toml(path)
            base = Path(base_dir) if base_dir is not None else path.resolve().parent
            problem = _depth_problem(raw)
            if problem:
                raise ValidationError(problem, source=label)
        plugins_table = raw.get("plugins", {})
        disabled = plugins_table.get("disable", []) if isinstance(plugins_table, dict) else []
        if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
            disabled = []
        if manager is None:
            manager = get_plugin_manager(disabled)
        return cls._validate(raw, label, default_name, manager, base.resolve(), for_model)

    @classmethod
    def _validate(cls, raw: dict, label: str, default_name: str, manager: PluginManager, base: Path,
                  for_model: bool = False) -> "Pipeline":
        problems: list[str] = []
        known = tuple(COMPONENT_TABLES) + tuple(CORE_TABLES) + ("targets",)
        for table in raw:
            if table not in known:
                problems.append(f"unknown table [{table}]{close_match(str(table), list(known))} "
                                f"(allowed tables: {', '.join(known)})")
        for table in REQUIRED_TABLES:
            if table not in raw and not (for_model and table == "dataset"):
                available = ", ".join(sorted(manager.components(COMPONENT_TABLES[table]))) or "none"
                problems.append(f"missing table [{table}]; add it with name = \"...\" (available: {available})")
        core: dict[str, dict[str, Any]] = {}
        for table, schema in CORE_TABLES.items():
            value = raw.get(table, {})
            if not isinstance(value, dict):
                problems.append(f"[{table}] must be a table")
                value = {}
            core[table], found = _check_settings(f"[{table}]", value, schema, f"[{table}]", base)
            problems += found
        problems += _output_problems(core["output"])
        problems += [f"{source}: {name!r} is not an installed plugin{hint}; remove it or fix the name"
                     for name, source, hint in manager.unknown_disabled()]
        components: dict[str, ComponentChoice] = {}
        explainers: list[ComponentChoice] = []
        dataset_common: dict[str, Any] = {}
        tables = dict(raw)
        trainer = tables.get("trainer", {})
        if isinstance(trainer, dict) and "name" not in trainer:
            tables["trainer"] = {"name": DEFAULT_TRAINER, **trainer}
        for table, kind in COMPONENT_TABLES.items():
            if table not in tables:
                continue
            entries = tables[table]
            if table in LIST_TABLES:
                if isinstance(entries, dict):
                    entries = [entries]
                if not isinstance(entries, list):
                    problems.append(f"[[{table}]] must be an array of tables")
                    continue
            else:
                if not isinstance(entries, dict):
                    problems.append(f"[{table}] must be a table, not {type(entries).__name__}")
                    continue
                entries = [entries]
            for index, entry in enumerate(entries):
                where = f"[{table}]" if table not in LIST_TABLES else f"[[{table}]] #{index + 1}"
                choice, found = cls._choose(where, table, kind, entry, manager, base, for_model)
                problems += found
                if choice is None:
                    continue
                if table == "dataset":  # checked with the dataset's own keys; the core applies them
                    dataset_common = {s.name: choice.settings.pop(s.name) for s in DATASET_COMMON}
                if table in LIST_TABLES:
                    explainers.append(choice)
                else:
                    components[table] = choice
        target_options, found = _target_tables(raw.get("targets", {}), dataset_common, base)
        problems += found
        problems += _cross_checks(components, dataset_common)
        heads = None
        if not problems:  # heads are only well defined once every setting is
            heads, found = _declared_heads(components, dataset_common, target_options)
            problems += found
        if not problems:
            problems += _build_checks(components, explainers, heads, for_model)
        if problems:
            raise ValidationError(problems, source=label)
        output = core["output"]
        output["name"] = output["name"] or default_name
        return cls(raw, label, components, explainers, dataset_common, output, core["plugins"]["disable"], manager,
                   base, core["data"], target_options)

    @staticmethod
    def _choose(where: str, table: str, kind: str, entry: Any, manager: PluginManager, base: Path,
                for_model: bool) -> tuple[ComponentChoice | None, list[str]]:
        if not isinstance(entry, dict):
            return None, [f"{where} must be a table"]
        name = entry.get("name")
        if name is None:
            available = sorted(manager.components(kind))
            return None, [f"{where}: missing key 'name'; choose one of: {', '.join(available) or 'none installed'}"]
        if not isinstance(name, str) or len(name) > 200:
            return None, [f"{where} name: expected the name of a component, got {str(name)[:60]!r}"]
        try:
            spec = manager.get(kind, name, where=f"{where} name")
        except ValidationError as exc:
            return None, exc.problems
        schema = spec.settings + (DATASET_COMMON if table == "dataset" else ())
        settings = {k: v for k, v in entry.items() if k != "name"}
        check_paths = not (for_model and table == "dataset")
        resolved, problems = _check_settings(where, settings, schema, f"{kind} {name!r}", base, check_paths)
        if not problems:
            try:
                spec.load()
            except Exception as exc:  # a plugin's broken import must be one line, not a traceback
                problems.append(f"{where} name: {kind} {spec.name!r} of plugin {spec.plugin!r} cannot be loaded: "
                                f"{_one_line(exc)}")
        return ComponentChoice(table, spec, resolved), problems

    def run(self, resume: str | Path | None = None, echo: Any = print) -> dict[str, Any]:
        """Run every stage into a run directory and return the summary (``summary["run_dir"]`` says where)."""
        from molplat.pipeline.runner import run_pipeline

        return run_pipeline(self, resume=resume, echo=echo)

    def variant(self, changes: dict[str, Any], drop: tuple[str, ...] = ("search",)) -> "Pipeline":
        """This pipeline with ``{"table.key": value}`` changes, validated by the same manager.

        Searchers evaluate their trials with it; the ``[search]`` table is dropped so a
        trial does not search again. ``output.dir``/``output.name`` may be changed too.
        """
        raw = {k: copy.deepcopy(v) for k, v in self.raw.items() if k not in drop}
        for key, value in changes.items():
            table, dot, setting = key.partition(".")
            if not dot or not setting:
                raise ValidationError(f"change {key!r} must look like 'table.setting', such as 'model.cutoff'",
                                      source=self.source)
            raw.setdefault(table, {})[setting] = value
        return Pipeline._validate(raw, self.source, self.output["name"], self.manager, self.base_dir)

    # -- targets -------------------------------------------------------------------------
    @property
    def target_names(self) -> list[str]:
        """The targets named in ``[dataset] target`` (empty: the dataset's default)."""
        return _target_list(self.dataset_common.get("target"))

    def heads(self, targets: dict[str, Target], default_target: str) -> Heads:
        """The heads of this run for a dataset's targets (raises ValidationError naming a missing one)."""
        names = self.target_names or [default_target]
        dataset = self.components["dataset"].spec.name
        problems = _target_problems(names, targets, dataset)
        if problems:
            raise ValidationError(problems, source=self.source)
        return _heads_for(names, targets, self.components["trainer"].settings, self.target_options)

    # -- views ---------------------------------------------------------------------------
    def resolved(self) -> dict[str, Any]:
        """The pipeline with every default filled in, qualified component names and plugin versions."""
        out: dict[str, Any] = {}
        for table, choice in self.components.items():
            out[table] = {"name": choice.spec.qualified_name, **_toml_safe(choice.settings)}
            if table == "dataset":
                out[table].update(_toml_safe(self.dataset_common))
        if self.explainers:
            out["explain"] = [{"name": c.spec.qualified_name, **_toml_safe(c.settings)} for c in self.explainers]
        if self.target_options:
            out["targets"] = {k: _toml_safe(v) for k, v in self.target_options.items()}
        out["output"] = _toml_safe(self.output)
        out["data"] = _toml_safe(self.data)
        out["plugins"] = {"disable": list(self.disabled), "versions": self.plugin_versions()}
        return out

    def plugin_versions(self) -> dict[str, str]:
        used = {c.spec.plugin for c in list(self.components.values()) + self.explainers}
        return {p.name: p.version for p in self.manager.plugins if p.name in used}


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _output_problems(output: dict[str, Any]) -> list[str]:
    name = output.get("name")
    if not isinstance(name, str):
        return []
    if not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute() \
            or name != name.strip() or len(name) > 100:
        return [f"[output] name: {name!r} must be a plain folder name (no '/', '\\\\' or '..', at most 100 "
                f"characters); set [output] dir to choose where runs go"]
    return []


def _target_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _target_tables(table: Any, dataset_common: dict[str, Any], base: Path) -> tuple[dict[str, dict], list[str]]:
    """``[targets.NAME]`` tables: a loss and a weight per named target."""
    if not isinstance(table, dict):
        return {}, ["[targets] must hold one table per target, such as [targets.gap] with loss and weight"]
    options, problems = {}, []
    named = _target_list(dataset_common.get("target"))
    for name, entry in table.items():
        where = f"[targets.{name}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a table with loss and/or weight")
            continue
        if named and name not in named:
            problems.append(f"{where}: {name!r} is not one of the targets in [dataset] target{close_match(name, named)} "
                            f"({', '.join(named)})")
        options[name], found = _check_settings(where, entry, TARGET_SETTINGS, "a target", base)
        problems += found
    return options, problems


def _declared_targets(spec: ComponentSpec) -> dict[str, Target]:
    """Class-level targets of a dataset, when it declares them (importing only its module)."""
    try:
        factory = spec.load()
    except Exception:
        return {}
    targets = getattr(factory, "targets", {}) or {}
    return {k: v for k, v in targets.items() if isinstance(v, Target)}


def _target_problems(names: list[str], targets: dict[str, Target], dataset: str) -> list[str]:
    problems = []
    if len(names) != len(set(names)):
        problems.append(f"[dataset] target: {names} names a target twice")
    for name in names:
        if name not in targets:
            problems.append(f"[dataset] target: {name!r} is not a target of dataset {dataset!r}"
                            f"{close_match(name, list(targets))} (targets: {', '.join(targets)})")
        elif not targets[name].usable:
            problems.append(f"[dataset] target: {name!r} of dataset {dataset!r} cannot be learnt by an invariant "
                            f"model ({targets[name].description}); choose another target")
    return problems


def _heads_for(names: list[str], targets: dict[str, Target], trainer: dict[str, Any],
               options: dict[str, dict[str, Any]]) -> Heads:
    forces = trainer.get("task") == "energy_forces"
    default_loss = trainer.get("loss", "mse")
    heads = []
    for position, name in enumerate(names):
        target = targets[name]
        chosen = options.get(name, {})
        extensive = target.extensive or (forces and position == 0)
        heads.append(Head(name, target.level, target.units, chosen.get("loss") or default_loss,
                          float(chosen.get("weight") or 1.0), extensive))
    graph = [h for h in heads if h.level == "graph"]
    return Heads(tuple(graph + [h for h in heads if h.level == "atom"]), forces)


def _declared_heads(components: dict[str, ComponentChoice], dataset_common: dict[str, Any],
                    options: dict[str, dict[str, Any]]) -> tuple[Heads | None, list[str]]:
    """The heads, from the dataset's class-level targets (a dataset whose targets depend on
    its files is checked again when the run builds it)."""
    dataset, trainer = components.get("dataset"), components.get("trainer")
    if dataset is None or trainer is None:
        return None, []
    names = _target_list(dataset_common.get("target"))
    targets = _declared_targets(dataset.spec)
    default = getattr(_safe_factory(dataset.spec), "default_target", "")
    if not targets:
        return None, []
    names = names or ([default] if default in targets else [])
    if not names:
        return None, []
    problems = _target_problems(names, targets, dataset.spec.name)
    if problems:
        return None, problems
    heads = _heads_for(names, targets, trainer.settings, options)
    problems += _head_problems(heads, components)
    return heads, problems


def _safe_factory(spec: ComponentSpec) -> Any:
    try:
        return spec.load()
    except Exception:
        return None


def _head_problems(heads: Heads, components: dict[str, ComponentChoice]) -> list[str]:
    problems = []
    model = components.get("model")
    if heads.n_atom and model and "atom_property" not in model.spec.outputs:
        atom = ", ".join(h.name for h in heads.atom)
        problems.append(f"[dataset] target: {atom} are per-atom targets, and model {model.spec.name!r} predicts no "
                        f"per-atom properties (outputs: {', '.join(model.spec.outputs)}); choose a model with "
                        f"'atom_property' or graph-level targets")
    if heads.forces and heads.graph and heads.graph[0].classification:
        problems.append("[trainer] task: 'energy_forces' needs the first target to be an energy, not a "
                        "classification (loss = 'bce')")
    if heads.forces and not heads.graph:
        problems.append("[trainer] task: 'energy_forces' needs a graph-level energy as the first target")
    return problems


def _cross_checks(components: dict[str, ComponentChoice], dataset_common: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    model, rep = components.get("model"), components.get("representation")
    if model and rep and model.spec.accepts and not set(layouts_of(rep.spec)) & set(model.spec.accepts):
        problems.append(
            f"[model] {model.spec.name!r} does not accept representation {rep.spec.name!r} "
            f"set in [representation] name; it accepts: {', '.join(model.spec.accepts)}"
        )
    if model and rep:
        problems += _cutoff_problems(model.settings.get("cutoff"), rep.settings.get("cutoff"))
    trainer = components.get("trainer")
    forces = bool(trainer and trainer.settings.get("task") == "energy_forces")
    if model and forces and model.spec.outputs and "forces" not in model.spec.outputs:
        problems.append(f"[trainer] task = 'energy_forces' but model {model.spec.name!r} does not predict forces "
                        f"(outputs: {', '.join(model.spec.outputs)}); use task = 'property'")
    if rep and forces and rep.settings.get("max_neighbors") is not None:
        problems.append(f"[representation] max_neighbors: keeping only the {rep.settings['max_neighbors']} nearest "
                        f"neighbours makes the energy jump when the ranking changes, so forces are wrong; remove "
                        f"max_neighbors for task = 'energy_forces'")
    split = dataset_common.get("split")
    if isinstance(split, list) and (len(split) != 3 or any(f < 0 for f in split) or abs(sum(split) - 1) > 1e-6):
        problems.append(f"[dataset] split: {split!r} must be three non-negative fractions (train, val, test) "
                        f"that sum to 1, such as [0.8, 0.1, 0.1]")
    target = dataset_common.get("target")
    if target is not None and not isinstance(target, str) and not (
            isinstance(target, list) and target and all(isinstance(t, str) for t in target)):
        problems.append(f"[dataset] target: expected a target name or a list of names, got {str(target)[:60]}")
    return problems


def _cutoff_problems(model_cutoff: Any, rep_cutoff: Any, what: str = "[model] cutoff") -> list[str]:
    if isinstance(model_cutoff, (int, float)) and isinstance(rep_cutoff, (int, float)) \
            and model_cutoff > rep_cutoff + 1e-9:
        return [f"{what}: {model_cutoff} Å is beyond [representation] cutoff {rep_cutoff} Å, "
                f"so pairs in between would be missing; set [representation] cutoff = {model_cutoff}"]
    return []


def _build_checks(components: dict[str, ComponentChoice], explainers: list[ComponentChoice], heads: Heads | None,
                  for_model: bool) -> list[str]:
    """Build every component but the dataset, so one that raises is a validation error, not a traceback."""
    problems: list[str] = []
    choices = [c for t, c in components.items() if t in BUILT_WHILE_VALIDATING] + ([] if for_model else explainers)
    if for_model:
        choices = [c for c in choices if c.table in ("representation", "model", "trainer")]
    for choice in choices:
        where = f"[{choice.table}]" if choice.table not in LIST_TABLES else f"[[{choice.table}]]"
        try:
            if choice.table == "model":
                built = choice.build_model(heads or Heads.single())
            else:
                built = choice.build()
        except ValidationError as exc:
            problems += exc.problems
            continue
        except Exception as exc:
            problems.append(f"{where}: {choice.spec.kind} {choice.spec.name!r} of plugin {choice.spec.plugin!r} "
                            f"fails to build with these settings: {_one_line(exc)}")
            continue
        if choice.table == "model" and "representation" in components:
            rep_cutoff = components["representation"].settings.get("cutoff")
            problems += _cutoff_problems(getattr(built, "cutoff", None), rep_cutoff,
                                         f"[model] {choice.spec.name!r} uses a cutoff of")
    return problems


def layouts_of(representation: ComponentSpec) -> tuple[str, ...]:
    """The batch layouts a representation produces: its own name plus those it declares in ``outputs``.

    A new representation that fills the same batch fields as ``adjacency_list`` says
    ``outputs=("adjacency_list",)`` and every model accepting adjacency lists takes it.
    """
    return (representation.name, *representation.outputs)


def _toml_safe(values: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: drop unset optional values."""
    return {k: v for k, v in values.items() if v is not None}
