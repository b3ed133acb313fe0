"""Loading and validating a pipeline file.

Validation finds every problem before anything runs, and reports each in one line
that names the table, the key, what is allowed and, for a typo, the close match.
"""
from __future__ import annotations

import copy
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molplat.errors import ValidationError
from molplat.plugins import PluginManager, get_plugin_manager
from molplat.specs import ComponentSpec, Setting

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

#: keys the core handles for every dataset, beside the dataset's own settings
DATASET_COMMON = (
    Setting("target", "str", None, "the target to learn (default: the dataset's default target)"),
    Setting("split", "list[float]", [0.8, 0.1, 0.1], "train, val and test fractions"),
    Setting("split_seed", "int", 0, "seed of the random split"),
)
CORE_TABLES: dict[str, tuple[Setting, ...]] = {
    "output": (
        Setting("dir", "str", "runs", "folder that holds run directories"),
        Setting("name", "str", None, "run name (default: the pipeline file's name)"),
        Setting("plots", "bool", True, "write PNG plots"),
    ),
    "plugins": (
        Setting("disable", "list[str]", [], "plugins not to load for this pipeline"),
        Setting("versions", "dict", {}, "plugin versions a run used (written by molplat; informational)"),
    ),
}
ALL_TABLES = tuple(COMPONENT_TABLES) + tuple(CORE_TABLES)


def _close(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _check_settings(where: str, table: dict[str, Any], schema: tuple[Setting, ...], owner: str) -> tuple[dict, list[str]]:
    problems: list[str] = []
    names = [s.name for s in schema]
    resolved: dict[str, Any] = {}
    for key, value in table.items():
        setting = next((s for s in schema if s.name == key), None)
        if setting is None:
            allowed = ", ".join(names) or "none"
            problems.append(f"{where}: unknown key {key!r} for {owner}{_close(key, names)} (allowed keys: {allowed})")
            continue
        problem = setting.check(value)
        if problem:
            problems.append(f"{where} {key}: {problem}")
        resolved[key] = value
    for setting in schema:
        if setting.name not in resolved:
            if setting.required:
                problems.append(f"{where}: missing required key {setting.name!r} for {owner} ({setting.help})")
            resolved[setting.name] = copy.deepcopy(setting.default)
    return resolved, problems


@dataclass
class ComponentChoice:
    """A component named in a pipeline table, with its settings resolved against its schema."""

    table: str
    spec: ComponentSpec
    settings: dict[str, Any]

    def build(self, **extra: Any) -> Any:
        return self.spec.load()(**self.settings, **extra)


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

    @classmethod
    def load(cls, source: Any, manager: PluginManager | None = None) -> "Pipeline":
        """Parse and validate a TOML path or a dict; raise ValidationError listing every problem."""
        if isinstance(source, dict):
            raw, label, default_name = copy.deepcopy(source), "<pipeline dict>", "run"
        else:
            path = Path(source)
            label, default_name = str(path), path.stem
            if not path.is_file():
                raise ValidationError("pipeline file not found; check the path", source=label)
            try:
                raw = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ValidationError(f"not valid TOML: {exc}", source=label) from None
        plugins_table = raw.get("plugins", {})
        disabled = plugins_table.get("disable", []) if isinstance(plugins_table, dict) else []
        if manager is None:
            manager = get_plugin_manager(disabled if isinstance(disabled, list) else [])
        return cls._validate(raw, label, default_name, manager)

    @classmethod
    def _validate(cls, raw: dict, label: str, default_name: str, manager: PluginManager) -> "Pipeline":
        problems: list[str] = []
        for table in raw:
            if table not in ALL_TABLES:
                problems.append(f"unknown table [{table}]{_close(table, list(ALL_TABLES))} "
                                f"(allowed tables: {', '.join(ALL_TABLES)})")
        for table in REQUIRED_TABLES:
            if table not in raw:
                problems.append(f"missing table [{table}]; add it with name = \"...\" "
                                f"(available: {', '.join(sorted(manager.components(COMPONENT_TABLES[table]))) or 'none'})")
        core: dict[str, dict[str, Any]] = {}
        for table, schema in CORE_TABLES.items():
            value = raw.get(table, {})
            if not isinstance(value, dict):
                problems.append(f"[{table}] must be a table")
                value = {}
            core[table], found = _check_settings(f"[{table}]", value, schema, f"[{table}]")
            problems += found
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
                choice, found = cls._choose(where, table, kind, entry, manager)
                problems += found
                if choice is None:
                    continue
                if table == "dataset":  # checked with the dataset's own keys; the core applies them
                    dataset_common = {s.name: choice.settings.pop(s.name) for s in DATASET_COMMON}
                if table in LIST_TABLES:
                    explainers.append(choice)
                else:
                    components[table] = choice
        problems += cls._cross_checks(components, dataset_common)
        if problems:
            raise ValidationError(problems, source=label)
        output = core["output"]
        output["name"] = output["name"] or default_name
        return cls(raw, label, components, explainers, dataset_common, output, core["plugins"]["disable"], manager)

    @staticmethod
    def _choose(where: str, table: str, kind: str, entry: Any, manager: PluginManager) -> tuple[ComponentChoice | None, list[str]]:
        if not isinstance(entry, dict):
            return None, [f"{where} must be a table"]
        name = entry.get("name")
        available = sorted(manager.components(kind))
        if name is None:
            return None, [f"{where}: missing key 'name'; choose one of: {', '.join(available) or 'none installed'}"]
        if not isinstance(name, str):
            return None, [f"{where} name: expected a string, got {name!r}"]
        try:
            spec = manager.get(kind, name, where=f"{where} name")
        except ValidationError as exc:
            return None, exc.problems
        schema = spec.settings + (DATASET_COMMON if table == "dataset" else ())
        settings = {k: v for k, v in entry.items() if k != "name"}
        resolved, problems = _check_settings(where, settings, schema, f"{kind} {name!r}")
        return ComponentChoice(table, spec, resolved), problems

    @staticmethod
    def _cross_checks(components: dict[str, ComponentChoice], dataset_common: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        model, rep = components.get("model"), components.get("representation")
        if model and rep and model.spec.accepts and not set(layouts_of(rep.spec)) & set(model.spec.accepts):
            problems.append(
                f"[model] {model.spec.name!r} does not accept representation {rep.spec.name!r} "
                f"set in [representation] name; it accepts: {', '.join(model.spec.accepts)}"
            )
        if model and rep:
            model_cutoff, rep_cutoff = model.settings.get("cutoff"), rep.settings.get("cutoff")
            if isinstance(model_cutoff, (int, float)) and isinstance(rep_cutoff, (int, float)) \
                    and model_cutoff > rep_cutoff + 1e-9:
                problems.append(f"[model] cutoff: {model_cutoff} Å is beyond [representation] cutoff {rep_cutoff} Å, "
                                f"so pairs in between would be missing; set [representation] cutoff = {model_cutoff}")
        trainer = components.get("trainer")
        if model and trainer and trainer.settings.get("task") == "energy_forces" and model.spec.outputs \
                and "forces" not in model.spec.outputs:
            problems.append(f"[trainer] task = 'energy_forces' but model {model.spec.name!r} does not predict forces "
                            f"(outputs: {', '.join(model.spec.outputs)}); use task = 'property'")
        split = dataset_common.get("split")
        if isinstance(split, list) and (len(split) != 3 or any(f < 0 for f in split) or abs(sum(split) - 1) > 1e-6):
            problems.append(f"[dataset] split: {split!r} must be three non-negative fractions (train, val, test) "
                            f"that sum to 1, such as [0.8, 0.1, 0.1]")
        dataset = components.get("dataset")
        target = dataset_common.get("target")
        if dataset and target is not None:
            targets = _declared_targets(dataset.spec)
            if targets and target not in targets:
                problems.append(f"[dataset] target: {target!r} is not a target of dataset {dataset.spec.name!r}"
                                f"{_close(target, targets)} (targets: {', '.join(targets)})")
        return problems

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
        return Pipeline._validate(raw, self.source, self.output["name"], self.manager)

    # -- views ---------------------------------------------------------------------------
    def resolved(self) -> dict[str, Any]:
        """The pipeline with every default filled in and the plugin of every component."""
        out: dict[str, Any] = {}
        for table, choice in self.components.items():
            out[table] = {"name": choice.spec.name, **_toml_safe(choice.settings)}
            if table == "dataset":
                out[table].update(_toml_safe(self.dataset_common))
        if self.explainers:
            out["explain"] = [{"name": c.spec.name, **_toml_safe(c.settings)} for c in self.explainers]
        out["output"] = _toml_safe(self.output)
        out["plugins"] = {"disable": list(self.disabled), "versions": self.plugin_versions()}
        return out

    def plugin_versions(self) -> dict[str, str]:
        used = {c.spec.plugin for c in list(self.components.values()) + self.explainers}
        return {p.name: p.version for p in self.manager.plugins if p.name in used}


def layouts_of(representation: ComponentSpec) -> tuple[str, ...]:
    """The batch layouts a representation produces: its own name plus those it declares in ``outputs``.

    A new representation that fills the same batch fields as ``adjacency_list`` says
    ``outputs=("adjacency_list",)`` and every model accepting adjacency lists takes it.
    """
    return (representation.name, *representation.outputs)


def _declared_targets(spec: ComponentSpec) -> list[str]:
    """Class-level targets of a dataset, when it declares them (importing only its module)."""
    try:
        factory = spec.load()
    except Exception:
        return []
    return list(getattr(factory, "targets", {}) or {})


def _toml_safe(values: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: drop unset optional values."""
    return {k: v for k, v in values.items() if v is not None}
