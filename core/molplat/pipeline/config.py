"""Loading and validating a pipeline file.

Validation finds every problem before anything runs, and reports each in one line
that names the table, the key, what is allowed and, for a typo, the close match. It
resolves every component the pipeline names: the factory is imported and every
component but the dataset (whose construction reads data) is built with its settings,
so a component that cannot load fails here, before any run directory exists.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from molplat.errors import ValidationError
from molplat.builtin import TRAINER_COMMON
from molplat.models.heads import Heads
from molplat.pipeline.checks import (LIST_TABLES, build_checks, cross_checks, duplicate_problems, layouts_of, one_line,
                                     stage_requirements)
from molplat.pipeline.reading import check_settings, depth_problem, read_toml
from molplat.pipeline.targets import declared_heads, heads_for, target_list, target_problems, target_tables
from molplat.plugins import PluginManager, close_match, get_plugin_manager
from molplat.search_space import Dimension, metric_names, parse_space
from molplat.specs import ComponentSpec, Setting
from molplat.structure import Target

__all__ = ["ComponentChoice", "Pipeline", "layouts_of"]

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
#: keys the core handles for every dataset, beside the dataset's own settings
DATASET_COMMON = (
    Setting("target", "str|list[str]", None, "the target to learn, or several: target = [\"homo\", \"lumo\"] "
            "(default: the dataset's default target)"),
    Setting("split", "list[float]", [0.8, 0.1, 0.1], "train, val and test fractions", minimum=0.0, maximum=1.0),
    Setting("split_seed", "int", 0, "seed of the random split", minimum=0, maximum=2**32 - 1),
)
#: keys the core handles for every model, beside the model's own settings (molplat.training.initial)
MODEL_COMMON = (
    Setting("init", "path", None, "start from the weights of another run: its run directory (relative to the "
            "pipeline file); parameters whose names and shapes match are loaded", must_exist=False),
    Setting("freeze", "list[str]", [], "blocks of the model not to train, as module-name prefixes such as "
            "\"embedding\" or \"interactions.0\" (needs init)"),
)
CORE_TABLES: dict[str, tuple[Setting, ...]] = {
    "output": (
        Setting("dir", "path", "runs", "folder that holds run directories (relative to the pipeline file)",
                must_exist=False),
        Setting("name", "str", None, "run name (default: the pipeline file's name); a plain name, no folders"),
        Setting("plots", "bool", True, "write PNG plots"),
        Setting("loggers", "list[str]", [], "logger plugins that record this run, such as [\"tensorboard\", "
                "\"mlflow\", \"wandb\"]; each writes inside the run directory (`molplat list-plugins --kind logger`)"),
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
        Setting("store_format", "str", "molplat", "the store backend that writes and reads [data] store: the "
                "core's own (molplat) or one a plugin provides (`molplat list-plugins --kind store_backend`)"),
    ),
}
#: the core's keys beside a component's own, by table
COMMON_SETTINGS: dict[str, tuple[Setting, ...]] = {"dataset": DATASET_COMMON, "trainer": TRAINER_COMMON,
                                                   "model": MODEL_COMMON}
#: tables whose values may differ between a run and the pipeline that resumes it
RESUMABLE_DIFFERENCES = ("output", "plugins", "data")


@dataclass
class ComponentChoice:
    """A component named in a pipeline table, with its settings resolved against its schema."""

    table: str
    spec: ComponentSpec
    settings: dict[str, Any]
    #: where the pipeline names it, for messages: "[model]", "[[explain]] #2"
    where: str = ""

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
    #: how many models ``[trainer] ensemble`` trains (1: a single model, the run directory of old)
    ensemble: int = 1
    model_common: dict[str, Any] = field(default_factory=dict)
    #: the [[simulate]] entries, run in order after the explainers
    simulators: list[ComponentChoice] = field(default_factory=list)

    @classmethod
    def load(cls, source: Any, manager: PluginManager | None = None, for_model: bool = False,
             base_dir: str | Path | None = None) -> "Pipeline":
        """Parse and validate a TOML path or a dict; raise ValidationError listing every problem.

        Relative paths resolve against the file's folder (``base_dir`` or the working
        folder for a dict). ``for_model`` loads a run's pipeline only to rebuild its
        model: data paths need not exist and stage components are not built.
        """
        if isinstance(source, dict):
            problem = depth_problem(source)
            if problem:
                raise ValidationError(problem, source="<pipeline dict>")
            raw, label, default_name = copy.deepcopy(source), "<pipeline dict>", "run"
            base = Path(base_dir) if base_dir is not None else Path.cwd()
        else:
            path = Path(source)
            label, default_name = str(path), path.stem
            raw = read_toml(path)
            base = Path(base_dir) if base_dir is not None else path.resolve().parent
            problem = depth_problem(raw)
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
            core[table], found = check_settings(f"[{table}]", value, schema, f"[{table}]", base)
            problems += found
        problems += _output_problems(core["output"])
        store_format = core["data"].get("store_format")
        if isinstance(store_format, str) and not for_model:  # else already a problem; a model reads no store
            try:
                manager.get("store_backend", store_format, where="[data] store_format")
            except ValidationError as exc:
                problems += exc.problems
        loggers = core["output"]["loggers"]
        if isinstance(loggers, list) and all(isinstance(name, str) for name in loggers):  # else already a problem
            problems += manager.logger_problems(loggers)
        problems += [f"{source}: {name!r} is not an installed plugin{hint}; remove it or fix the name"
                     for name, source, hint in manager.unknown_disabled()]
        components: dict[str, ComponentChoice] = {}
        explainers: list[ComponentChoice] = []
        simulators: list[ComponentChoice] = []
        dataset_common: dict[str, Any] = {}
        ensemble = 1
        model_common: dict[str, Any] = {s.name: s.default for s in MODEL_COMMON}
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
                single = table not in LIST_TABLES or (isinstance(tables[table], dict) and table == "simulate")
                where = f"[{table}]" if single else f"[[{table}]] #{index + 1}"
                choice, found = cls._choose(where, table, kind, entry, manager, base, for_model)
                problems += found
                if choice is None:
                    continue
                if table == "dataset":  # checked with the dataset's own keys; the core applies them
                    dataset_common = {s.name: choice.settings.pop(s.name) for s in DATASET_COMMON}
                if table == "trainer":  # every backend trains an ensemble the same way: member by member
                    size = choice.settings.pop("ensemble", 1)
                    ensemble = size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 1
                if table == "model":  # the core starts the model from another run's weights
                    model_common = {s.name: choice.settings.pop(s.name) for s in MODEL_COMMON}
                if table in LIST_TABLES:
                    (simulators if table == "simulate" else explainers).append(choice)
                else:
                    components[table] = choice
        target_options, found = target_tables(raw.get("targets", {}), dataset_common, base)
        problems += found
        problems += cross_checks(components, dataset_common)
        problems += duplicate_problems("simulate", simulators)
        heads = None
        if not problems:  # heads are only well defined once every setting is
            heads, found = declared_heads(components, dataset_common, target_options)
            problems += found
        if not problems:
            problems += build_checks(components, explainers + simulators, heads, for_model)
        if not problems and not for_model:
            problems += init_problems(components["model"], model_common, heads)
        if not for_model:
            problems += search_problems(components, heads)
        if problems:
            raise ValidationError(problems, source=label)
        output = core["output"]
        output["name"] = output["name"] or default_name
        pipeline = cls(raw, label, components, explainers, dataset_common, output, core["plugins"]["disable"], manager,
                       base, core["data"], target_options, ensemble, model_common, simulators)
        if not for_model:  # what the optional stages need of the rest (dynamics need forces)
            problems = stage_requirements(pipeline)
            if problems:
                raise ValidationError(problems, source=label)
        return pipeline

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
        schema = spec.settings + COMMON_SETTINGS.get(table, ())
        settings = {k: v for k, v in entry.items() if k != "name"}
        check_paths = not (for_model and table == "dataset")
        resolved, problems = check_settings(where, settings, schema, f"{kind} {name!r}", base, check_paths)
        if not problems:
            try:
                spec.load()
            except Exception as exc:  # a plugin's broken import must be one line, not a traceback
                problems.append(f"{where} name: {kind} {spec.name!r} of plugin {spec.plugin!r} cannot be loaded: "
                                f"{one_line(exc)}")
        return ComponentChoice(table, spec, resolved, where), problems

    def run(self, resume: str | Path | None = None, echo: Any = print) -> dict[str, Any]:
        """Run every stage into a run directory and return the summary (``summary["run_dir"]`` says where)."""
        from molplat.pipeline.runner import run_pipeline

        return run_pipeline(self, resume=resume, echo=echo)

    def variant(self, changes: dict[str, Any], drop: tuple[str, ...] = ("search",)) -> "Pipeline":
        """This pipeline with ``{"table.key": value}`` changes, validated by the same manager.

        Searchers evaluate their trials with it; the ``[search]`` table is dropped so a
        trial does not search again. ``output.dir``/``output.name`` may be changed too.
        An ``[[explain]]`` entry is addressed as ``explain.NAME.key`` (or ``explain.key``
        when the pipeline has one explainer).
        """
        raw = {k: copy.deepcopy(v) for k, v in self.raw.items() if k not in drop}
        for key, value in changes.items():
            table, dot, setting = key.partition(".")
            if not dot or not setting:
                raise ValidationError(f"change {key!r} must look like 'table.setting', such as 'model.cutoff'",
                                      source=self.source)
            if table in LIST_TABLES:
                _list_entry(raw, table, setting, key, self.source)[setting.rpartition(".")[2]] = value
                continue
            entry = raw.setdefault(table, {})
            if not isinstance(entry, dict):
                raise ValidationError(f"change {key!r}: [{table}] is not a table", source=self.source)
            entry[setting] = value
        return Pipeline._validate(raw, self.source, self.output["name"], self.manager, self.base_dir)

    # -- pickling: process evaluators receive pipelines; the plugin manager is rebuilt there --
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        extra = {p.name: p.module for p in self.manager.plugins if p.version == "in-process" and p.module}
        return _unpickle_pipeline, (self.raw, self.source, self.output["name"], str(self.base_dir),
                                    sorted(self.disabled), extra)

    # -- targets -------------------------------------------------------------------------
    @property
    def target_names(self) -> list[str]:
        """The targets named in ``[dataset] target`` (empty: the dataset's default)."""
        return target_list(self.dataset_common.get("target"))

    def heads(self, targets: dict[str, Target], default_target: str) -> Heads:
        """The heads of this run for a dataset's targets (raises ValidationError naming a missing one)."""
        names = self.target_names or [default_target]
        dataset = self.components["dataset"].spec.name
        problems = target_problems(names, targets, dataset)
        if problems:
            raise ValidationError(problems, source=self.source)
        return heads_for(names, targets, self.components["trainer"].settings, self.target_options)

    # -- views ---------------------------------------------------------------------------
    def resolved(self) -> dict[str, Any]:
        """The pipeline with every default filled in, qualified component names and plugin versions."""
        out: dict[str, Any] = {}
        for table, choice in self.components.items():
            out[table] = {"name": choice.spec.qualified_name, **_toml_safe(choice.settings)}
            if table == "dataset":
                out[table].update(_toml_safe(self.dataset_common))
            if table == "trainer" and self.ensemble > 1:  # left out at 1, so single-model runs read as before
                out[table]["ensemble"] = self.ensemble
            if table == "model":  # only when set, so runs made before init existed still resume
                out[table].update({k: v for k, v in _toml_safe(self.model_common).items() if v})
        if self.explainers:
            out["explain"] = [{"name": c.spec.qualified_name, **_toml_safe(c.settings)} for c in self.explainers]
        if self.simulators:
            out["simulate"] = [{"name": c.spec.qualified_name, **_toml_safe(c.settings)} for c in self.simulators]
        if self.target_options:
            out["targets"] = {k: _toml_safe(v) for k, v in self.target_options.items()}
        out["output"] = _toml_safe(self.output)
        out["data"] = _toml_safe(self.data)
        out["plugins"] = {"disable": list(self.disabled), "versions": self.plugin_versions()}
        return out

    def plugin_versions(self) -> dict[str, str]:
        used = {c.spec.plugin for c in list(self.components.values()) + self.explainers + self.simulators}
        return {p.name: p.version for p in self.manager.plugins if p.name in used}


def searched_dimensions(components: dict[str, ComponentChoice], space: Any) -> tuple[list[Dimension], list[str]]:
    """A search ``space`` parsed and checked against the schema of each key's component: every choice and
    both ends of every range must be values that key accepts. A float key's integer ends become floats."""
    dimensions, problems = parse_space(space)
    checked: list[Dimension] = []
    for dimension in dimensions:
        where = f"[search] space {dimension.key}"
        choice = components.get(dimension.table)
        if choice is None:
            problems.append(f"{where}: the pipeline has no [{dimension.table}] table to vary")
            continue
        schema = {s.name: s for s in choice.spec.settings + COMMON_SETTINGS.get(dimension.table, ())}
        setting = schema.get(dimension.setting)
        if setting is None:
            problems.append(f"{where}: {dimension.setting!r} is not a key of {choice.spec.kind} "
                            f"{choice.spec.name!r}{close_match(dimension.setting, list(schema))} "
                            f"(keys: {', '.join(schema)})")
            continue
        found = [f"{where}: {value!r}: {problem}" for value in dimension.values_to_check()
                 for problem in [setting.check(value)] if problem]
        if dimension.choices is None and setting.type not in ("int", "float"):
            found.append(f"{where}: a range needs a number key, and {dimension.setting!r} is {setting.type}; "
                         f"list its choices instead")
        problems += found
        if not found and setting.type == "float" and dimension.integer:
            dimension = replace(dimension, low=float(dimension.low), high=float(dimension.high))  # type: ignore[arg-type]
        checked.append(dimension)
    return checked, problems


def search_problems(components: dict[str, ComponentChoice], heads: Heads | None) -> list[str]:
    """A searcher's ``space`` and ``objective`` (when its spec declares them), checked before anything runs."""
    search = components.get("search")
    if search is None:
        return []
    problems = []
    if search.spec.setting("space") is not None:
        _, problems = searched_dimensions(components, search.settings.get("space"))
    objective = search.settings.get("objective")
    if search.spec.setting("objective") is not None and heads is not None and isinstance(objective, str):
        names = metric_names(heads)
        if objective not in names:
            problems.append(f"[search] objective: {objective!r} is not a validation metric of this run"
                            f"{close_match(objective, names)} (metrics: {', '.join(names)})")
    return problems


def _unpickle_pipeline(raw: dict[str, Any], source: str, name: str, base_dir: str, disabled: list[str],
                       extra: dict[str, str]) -> Pipeline:
    """A pickled pipeline validated again in this process, with this process's plugin manager
    (and the same in-process plugin modules, such as the SDK's toys, imported by name)."""
    if extra:
        import importlib

        manager = PluginManager(disabled, extra={k: importlib.import_module(m) for k, m in extra.items()})
    else:
        manager = get_plugin_manager(disabled)
    return Pipeline._validate(copy.deepcopy(raw), source, name, manager, Path(base_dir))


def _list_entry(raw: dict[str, Any], table: str, setting: str, key: str, source: str) -> dict[str, Any]:
    """The ``[[table]]`` entry a change ``table.NAME.key`` (or ``table.key`` with one entry) addresses."""
    entries = raw.get(table)
    entries = [entries] if isinstance(entries, dict) else entries
    if not isinstance(entries, list) or not entries:
        raise ValidationError(f"change {key!r}: the pipeline has no [[{table}]] entry to change", source=source)
    raw[table] = entries
    name, dot, _ = setting.rpartition(".")
    if not dot:
        if len(entries) == 1 and isinstance(entries[0], dict):
            return entries[0]
        raise ValidationError(f"change {key!r}: the pipeline has {len(entries)} [[{table}]] entries; name one, as in "
                              f"'{table}.NAME.{setting}'", source=source)
    matches = [e for e in entries if isinstance(e, dict) and e.get("name") == name]
    if len(matches) != 1:
        names = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict))
        raise ValidationError(f"change {key!r}: {'no' if not matches else 'more than one'} [[{table}]] entry is named "
                              f"{name!r} (entries: {names})", source=source)
    return matches[0]


def init_problems(model: ComponentChoice, model_common: dict[str, Any], heads: Heads | None) -> list[str]:
    """``[model] init`` and ``freeze`` checked against the other run and a model built with the declared heads."""
    init, freeze = model_common.get("init"), list(model_common.get("freeze") or [])
    if not init:
        return [f"[model] freeze: freezing needs weights to keep; add init = \"runs/NAME\" (a pre-training run) "
                f"or remove freeze"] if freeze else []
    from molplat.training.initial import InitialWeights

    try:
        weights = InitialWeights.read(init, model.spec.qualified_name, freeze)
    except ValidationError as exc:
        return exc.problems
    return weights.problems(model.build_model(heads or Heads.single()))


def _output_problems(output: dict[str, Any]) -> list[str]:
    name = output.get("name")
    if not isinstance(name, str):
        return []
    if not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute() \
            or name != name.strip() or len(name) > 100:
        return [f"[output] name: {name!r} must be a plain folder name (no '/', '\\\\' or '..', at most 100 "
                f"characters); set [output] dir to choose where runs go"]
    return []


def _toml_safe(values: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: drop unset optional values."""
    return {k: v for k, v in values.items() if v is not None}
