"""The ``molplat`` command, on click. Exit codes: 0 success, 2 invalid input, 1 failure while running.

Heavy modules (torch, ASE, Lightning) are imported inside the commands that need them,
so ``molplat list-plugins``, ``molplat show`` and shell completion stay fast. Every
table goes through tabulate; every error a user can cause is one ``error:`` line.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from molplat import __version__
from molplat.errors import MolplatError, RunError, ValidationError
from molplat.prediction_files import (FORCE_UNITS, Frame, Predictions, full_precision, read_frames, write_csv,
                                      write_extxyz)
from molplat.scaffold import SCAFFOLD_KINDS
from molplat.specs import KINDS, PLUGIN_KINDS, Setting

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
PROG = "molplat"
#: click's shell completion is driven by this variable (``_MOLPLAT_COMPLETE=bash_source molplat``)
COMPLETE_VAR = "_MOLPLAT_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
#: suffixes ``predict -o`` writes, and the format each gets
OUTPUT_FORMATS = {".csv": "csv", ".extxyz": "extxyz", ".xyz": "extxyz"}


# -- output helpers ----------------------------------------------------------------------------
def table(rows: Sequence[Sequence[Any]], header: Sequence[str], align: Sequence[str] | None = None,
          widths: Sequence[int | None] | None = None) -> str:
    """Rows under a header in tabulate's plain layout: header, a line of dashes, rows.

    Cells are printed as given (no number parsing, so ``1e-3`` stays ``1e-3``); callers
    format numbers themselves. ``widths`` wraps long columns (help texts).
    """
    return tabulate([list(r) for r in rows], headers=list(header), tablefmt="simple", disable_numparse=True,
                    colalign=tuple(align) if align else None, maxcolwidths=list(widths) if widths else None)




def _number(value: Any) -> str:
    """A metric for reading: five significant digits; '-' where it is undefined (R² of constant values)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.5g}"




def _with_units(name: str, units: str | None) -> str:
    """A column or row label: ``gap [eV]``."""
    return f"{name} [{units}]" if units else name


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


# -- plugin commands ----------------------------------------------------------------------------
def _plugin_commands(core: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The plugins' CommandSpecs ``molplat NAME`` can run, and why the others cannot (see PluginManager.commands)."""
    from molplat.plugins import get_plugin_manager

    return get_plugin_manager().commands(reserved=core)


class PluginCommand(click.Command):
    """A plugin's command, listed from its CommandSpec and imported only when it runs.

    ``molplat --help`` shows the spec's summary; running it (or its own ``--help``) imports
    the factory, and a factory that does not import or is no click command is one error line.
    """

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name, help=spec.summary, short_help=spec.summary, add_help_option=False)
        self.spec = spec

    def load(self) -> click.Command:
        spec = self.spec
        fix = f"reinstall it (`molplat install {spec.plugin}`) or turn it off with MOLPLAT_DISABLE_PLUGINS={spec.plugin}"
        try:
            command = spec.load()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise RunError(f"`molplat {spec.name}` of plugin {spec.plugin} cannot be loaded: {spec.factory} fails to "
                           f"import ({type(exc).__name__}: {first}); {fix}") from exc
        if not isinstance(command, click.Command):
            raise RunError(f"`molplat {spec.name}` of plugin {spec.plugin} cannot be loaded: {spec.factory} is a "
                           f"{type(command).__name__}, not a click command; {fix}")
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self.load().make_context(info_name, args, parent=parent, **extra)


class MolplatGroup(click.Group):
    """The core's commands plus those plugins add through ``molplat_commands`` (the core's names win)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        core = super().list_commands(ctx)
        try:
            usable, _ = _plugin_commands(core)
        except Exception:  # --help and completion must work whatever the plugins do
            return core
        return sorted(set(core) | set(usable))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        usable, refused = _plugin_commands(super().list_commands(ctx))
        if cmd_name in refused:
            raise ValidationError(refused[cmd_name])
        return PluginCommand(usable[cmd_name]) if cmd_name in usable else None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MolplatError, click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a plugin command's bug is one line naming the plugin, never a traceback
            name = ctx.invoked_subcommand
            if name is None or name in self.commands:
                raise
            plugin = getattr(self.get_command(ctx, name), "spec", None)
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise RunError(f"`molplat {name}` of plugin {getattr(plugin, 'plugin', '?')} failed: "
                           f"{type(exc).__name__}: {first}") from exc


# -- the group and main ------------------------------------------------------------------------
@click.group(cls=MolplatGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> int:
    """Machine learning on molecules, crystals and MOFs; every component is a plugin.

    Exit codes: 0 success, 2 invalid input (nothing ran), 1 failure while running.
    Shell completion: `molplat completion --help`.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (default ``sys.argv[1:]``) and return its exit code.

    A user's mistake becomes ``error:`` lines on stderr, never a traceback.
    """
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name=PROG, complete_var=COMPLETE_VAR,
                        standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else PROG
        message = " ".join(exc.format_message().split()).rstrip(".")
        click.echo(f"error: {where}: {message}; see `{where} --help`", err=True)
        return EXIT_INVALID
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except click.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
        click.echo("interrupted; a run continues from its last checkpoint with "
                   "`molplat run PIPELINE --resume RUN_DIR`", err=True)
        return EXIT_FAILED
    except ValidationError as exc:
        for line in str(exc).splitlines():
            click.echo(f"error: {line}", err=True)
        return EXIT_INVALID
    except MolplatError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_FAILED
    return EXIT_OK if code is None else int(code)


# -- completion helpers --------------------------------------------------------------------------
def _complete_component(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Component names, bare and qualified, for `molplat show <TAB>`."""
    try:
        from molplat.plugins import get_plugin_manager

        manager = get_plugin_manager()
        names: set[str] = set()
        for kind in KINDS:
            components = manager.components(kind)
            names |= set(components) | {spec.qualified_name for spec in components.values()}
    except Exception:  # completion must never print a traceback into the shell
        return []
    return sorted(n for n in names if n.startswith(incomplete))


def _complete_checkpoint(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """best and last (other names are files in RUN_DIR/checkpoints)."""
    return [name for name in ("best", "last") if name.startswith(incomplete)]


@cli.command()
@click.argument("shell", required=False, type=click.Choice(SHELLS))
def completion(shell: str | None) -> int:
    """Print the shell completion script for SHELL (default: the shell in $SHELL).

    \b
    bash:  eval "$(molplat completion bash)"     (add it to ~/.bashrc)
    zsh:   eval "$(molplat completion zsh)"      (add it to ~/.zshrc)
    fish:  molplat completion fish > ~/.config/fish/completions/molplat.fish

    It completes commands, options, component names and file paths.
    """
    from click.shell_completion import get_completion_class

    if shell is None:
        shell = Path(os.environ.get("SHELL", "")).name
        if shell not in SHELLS:
            raise ValidationError(f"completion: cannot tell the shell from $SHELL ({shell or 'not set'}); "
                                  f"name it: `molplat completion bash`, `zsh` or `fish`")
    completer = get_completion_class(shell)
    click.echo(completer(cli, {}, PROG, COMPLETE_VAR).source())
    return EXIT_OK


# -- list-plugins and show ---------------------------------------------------------------------
@cli.command("list-plugins")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {name, version, status, error, components, warnings}.")
@click.option("--kind", type=click.Choice(PLUGIN_KINDS),
              help="Only plugins that provide a component of this kind (or a logger).")
@click.option("--available", is_flag=True, help="The plugin catalog (registry.toml) beside what is installed.")
def list_plugins(as_json: bool, kind: str | None, available: bool) -> int:
    """Installed plugins: version, status (loaded, failed, disabled, incompatible) and components.

    Imports no plugin code beyond the plugins' registration modules (no torch).
    """
    if available:
        from molplat.catalog import print_available

        return print_available(kind=kind, as_json=as_json)
    from molplat.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for name, source, hint in manager.unknown_disabled():
        _warn(f"{source} names {name!r}, which is no installed plugin{hint}")
    plugins = [p for p in manager.plugins if not kind or kind in p.components]
    if as_json:
        import json

        click.echo(json.dumps([p.as_dict() for p in plugins], indent=2))
        return EXIT_OK
    rows = []
    for p in plugins:
        kinds = [k for k in PLUGIN_KINDS if k in p.components and (not kind or k == kind)]
        components = "; ".join(f"{k}: {', '.join(p.components[k])}" for k in kinds) or "-"
        rows.append([p.name, p.version, p.status if not p.error else f"{p.status} ({p.error})", components])
    click.echo(table(rows, ["plugin", "version", "status", "components"]))
    notes = [f"warning: {p.name}: {message}" for p in plugins for message in p.warnings]
    _, refused = manager.commands(reserved=cli.commands)
    notes += [f"warning: {message}" for name, message in refused.items() if name in cli.commands]
    if notes:
        click.echo("\n" + "\n".join(notes))
    return EXIT_OK


def _allowed(setting: Setting) -> str:
    """What values a setting takes: its choices, or its range."""
    if setting.choices is not None:
        return ", ".join(map(repr, setting.choices))
    low = None if setting.minimum is None else f"{setting.minimum:g}"
    high = None if setting.maximum is None else f"{setting.maximum:g}"
    if low is not None and high is not None:
        return f"{'(' if setting.exclusive_minimum else '['}{low}, {high}{')' if setting.exclusive_maximum else ']'}"
    if low is not None:
        return f"{'>' if setting.exclusive_minimum else '>='} {low}"
    if high is not None:
        return f"{'<' if setting.exclusive_maximum else '<='} {high}"
    if setting.type == "path":
        return "must exist" if setting.must_exist else "created when missing"
    return ""


def _dataset_targets(spec: Any) -> None:
    """The targets a dataset declares on its class (molplat.structure.Target), as a table."""
    from molplat.structure import Target

    try:
        factory = spec.load()
    except Exception as exc:  # show must work beside a dataset whose dependencies are broken
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"\ntargets: cannot be listed; {spec.factory} does not import ({type(exc).__name__}: {first})")
        return
    targets = {k: v for k, v in (getattr(factory, "targets", None) or {}).items() if isinstance(v, Target)}
    if not targets:
        click.echo("\ntargets: read from the data when the dataset is built")
        return
    rows = [[t.name, t.units or "-", t.level, "yes" if t.extensive else "no", "yes" if t.usable else "no",
             t.description] for t in targets.values()]
    click.echo("\n" + table(rows, ["target", "units", "level", "extensive", "usable", "description"],
                            widths=[None, None, None, None, None, 60]))
    default = getattr(factory, "default_target", "")
    if default:
        click.echo(f"default target: {default}")


@cli.command()
@click.argument("name", shell_complete=_complete_component)
@click.option("--kind", type=click.Choice(KINDS), help="Only the component of this kind (when kinds share a name).")
def show(name: str, kind: str | None) -> int:
    """A component's summary, kind, plugin, qualified name, citation and settings.

    NAME is a component name (schnet) or a qualified one (molplat-schnet:schnet).
    For a dataset it also lists every target with its units, level, whether it is
    extensive and whether a model can learn it.
    """
    from molplat.plugins import close_match, get_plugin_manager

    manager = get_plugin_manager()
    found = [s for s in manager.find(name) if not kind or s.kind == kind]
    if not found:
        names = sorted({n for k in KINDS for n in manager.components(k)})
        of_kind = f" of kind {kind}" if kind else ""
        raise ValidationError(f"no component named {name!r}{of_kind}{close_match(name, names)} "
                              f"(see `molplat list-plugins`)")
    for position, spec in enumerate(found):
        if position:
            click.echo("")
        click.echo(f"{spec.name}  ({spec.kind}, plugin {spec.plugin})")
        click.echo(f"  qualified name: {spec.qualified_name}")
        if spec.summary:
            click.echo(f"  {spec.summary}")
        if spec.accepts:
            click.echo(f"  accepts representations: {', '.join(spec.accepts)}")
        if spec.outputs:
            click.echo(f"  outputs: {', '.join(spec.outputs)}")
        click.echo(f"  cite: {spec.citation}" if spec.citation else "  cite: (no citation given)")
        if spec.settings:
            rows = [[s.name, s.type, "(required)" if s.required else repr(s.default), _allowed(s), s.help]
                    for s in spec.settings]
            click.echo("\n" + table(rows, ["setting", "type", "default", "allowed", "help"],
                                    widths=[None, None, 30, 30, 60]))
        else:
            click.echo("  no settings")
        if spec.kind == "dataset":
            _dataset_targets(spec)
        if spec.kind == "trainer_backend":  # keys the core adds to every backend's [trainer] table
            from molplat.builtin import TRAINER_COMMON

            click.echo("\n  [trainer] keys of every backend: " + "; ".join(
                f"{s.name} ({s.type}, default {s.default!r}, {_allowed(s)}): {s.help}" for s in TRAINER_COMMON))
    return EXIT_OK


# -- validate, preprocess, run -----------------------------------------------------------------
PIPELINE_ARGUMENT = click.argument("pipeline", type=click.Path(dir_okay=False))


@cli.command()
@PIPELINE_ARGUMENT
def validate(pipeline: str) -> int:
    """Check PIPELINE (a TOML file) without running anything: tables, keys, values, components."""
    from molplat.pipeline.config import Pipeline

    loaded = Pipeline.load(pipeline)
    parts = [f"{t}={c.spec.name}" for t, c in loaded.components.items()]
    for stage, choices in (("explain", loaded.explainers), ("simulate", loaded.simulators)):
        if choices:
            parts.append(f"{stage}={'+'.join(c.spec.name for c in choices)}")
    click.echo(f"{pipeline}: valid ({', '.join(parts)})")
    return EXIT_OK


@cli.command()
@PIPELINE_ARGUMENT
@click.option("--format", "store_format", default=None, metavar="NAME",
              help="Store backend to write (default: [data] store_format, else molplat); e.g. adios with "
                   "molplat-adios installed. Runs read it when their [data] store_format says the same.")
def preprocess(pipeline: str, store_format: str | None) -> int:
    """Validate PIPELINE, then featurise its whole dataset once into the store under [data] store.

    Runs of the same dataset, representation and targets then read the store's
    samples in place instead of featurising again. A store that is complete
    and intact is left as it is.
    """
    from molplat.pipeline.config import Pipeline

    loaded = Pipeline.load(pipeline)
    if store_format is not None:
        loaded.manager.get("store_backend", store_format, where="--format")
        loaded.data["store_format"] = store_format
    if not loaded.data.get("store"):
        raise ValidationError("[data] store: not set, so there is nothing to preprocess; add a [data] table with "
                              "store = \"FOLDER\" (the featurised shards go there)", source=loaded.source)
    from molplat.pipeline.prepare import build_dataset, open_or_build_store

    dataset = build_dataset(loaded)
    heads = loaded.heads(getattr(dataset, "targets", {}), getattr(dataset, "default_target", ""))
    representation = loaded.components["representation"].build()
    said: list[str] = []

    def echo(message: str) -> None:
        said.append(message)
        click.echo(message)

    progress = bool(loaded.components["trainer"].settings.get("progress_bar", True))
    store = open_or_build_store(loaded, dataset, representation, heads, echo, progress)
    labelled = int(store.labelled.sum())
    state = "wrote" if said else "up to date:"
    click.echo(f"{state} {store.folder} ({len(store)} structures, {labelled} with every target of "
               f"{', '.join(heads.names)})")
    return EXIT_OK


def run_report(summary: dict[str, Any]) -> str:
    """The tables `molplat run` ends with: metrics per target (with its units) and split, baselines, forces."""
    regression: list[list[str]] = []
    classification: list[list[str]] = []
    for name, entry in summary.get("tasks", {}).items():
        label = _with_units(name, entry.get("units"))
        if entry.get("loss") == "bce" or "baseline_accuracy" in entry:
            for split in ("val", "test"):
                metrics = entry.get(split) or {}
                classification.append([label, split, _number(metrics.get("accuracy")),
                                       _number(metrics.get("roc_auc"))])
            classification.append([label, "test, predicting the majority class",
                                   _number(entry.get("baseline_accuracy")), ""])
            continue
        for split in ("val", "test"):
            metrics = entry.get(split) or {}
            regression.append([label, split, _number(metrics.get("mae")), _number(metrics.get("rmse")),
                               _number(metrics.get("r2"))])
        regression.append([label, f"test, predicting the {entry.get('baseline', 'training mean')}",
                           _number(entry.get("baseline_mae")), "", ""])
    forces = summary.get("forces")
    if forces:
        label = _with_units("forces", forces.get("units", FORCE_UNITS))
        for split in ("val", "test"):
            metrics = forces.get(split) or {}
            regression.append([label, split, _number(metrics.get("mae")), _number(metrics.get("rmse")), ""])
        if "baseline_mae" in forces:
            regression.append([label, f"test, predicting {forces.get('baseline', 'zero forces')}",
                               _number(forces["baseline_mae"]), "", ""])
    parts = []
    spread = _ensemble_rows(summary)
    if regression:
        parts.append(table(regression, ["target", "split", "MAE", "RMSE", "R²"],
                           align=["left", "left", "right", "right", "right"]))
    if classification:
        parts.append(table(classification, ["target", "split", "accuracy", "ROC-AUC"],
                           align=["left", "left", "right", "right"]))
    if spread:
        size = (summary.get("ensemble") or {}).get("size")
        parts.append(f"ensemble of {size} (test split; the MAE above is the mean's):\n" + table(
            spread, ["target", "members' MAE", "Spearman |error| vs std", "within 1 std", "miscalibration area"],
            align=["left", "left", "right", "right", "right"]))
    return "\n\n".join(parts)


def _ensemble_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Per target (and forces) of an ensemble run: its members' test MAE and how well its spread is calibrated."""
    entries = [(_with_units(n, e.get("units")), e) for n, e in summary.get("tasks", {}).items()]
    if summary.get("forces"):
        entries.append((_with_units("forces", summary["forces"].get("units")), summary["forces"]))
    rows = []
    for label, entry in entries:
        calibration = (entry.get("calibration") or {}).get("test")
        members = (entry.get("members") or {}).get("test_mae")
        if calibration is None or not members:
            continue
        rows.append([label, f"{_number(min(members))} to {_number(max(members))}", _number(calibration["spearman"]),
                     _number(calibration["within_1_std"]), _number(calibration["miscalibration_area"])])
    return rows


@cli.command()
@PIPELINE_ARGUMENT
@click.option("--resume", metavar="RUN_DIR", type=click.Path(),
              help="Continue the interrupted run in RUN_DIR from its last checkpoint (same pipeline).")
def run(pipeline: str, resume: str | None) -> int:
    """Validate PIPELINE, then run it: data, training, evaluation and the optional stages.

    Ends with a table of metrics per target on the validation and test splits beside
    the baseline, and the run directory it wrote.
    """
    from molplat.pipeline.config import Pipeline

    loaded = Pipeline.load(pipeline)  # invalid input exits 2 before anything runs
    from molplat.pipeline.runner import run_pipeline

    try:
        summary = run_pipeline(loaded, resume=resume, echo=click.echo)
    except KeyboardInterrupt:  # before training (which reports its own interruption as a RunError)
        if resume:
            click.echo(f"\ninterrupted; continue with `molplat run {pipeline} --resume {resume}`", err=True)
        else:
            click.echo(f"\ninterrupted; if a run directory was printed above, continue with `molplat run "
                       f"{pipeline} --resume RUN_DIR`; otherwise nothing was written", err=True)
        return EXIT_FAILED
    if summary.get("rank", 0) != 0:  # another process of a multi-process run: rank 0 reports
        return EXIT_OK
    click.echo("\n" + run_report(summary))
    for message in summary.get("warnings") or []:
        _warn(message)
    click.echo(f"\nrun directory: {summary['run_dir']}")
    return EXIT_OK


# -- predict ------------------------------------------------------------------------------------
def _print_predictions(frames: list[Frame], predictions: Predictions) -> None:
    import numpy as np

    heads = predictions.heads
    header = ["file", "index", "formula"] + [_with_units(h.name, h.units) for h in heads.graph]
    if predictions.ensemble:  # an ensemble's spread beside each mean
        header = header[:3] + [name for h in heads.graph for name in (_with_units(h.name, h.units), f"{h.name}_std")]
    rows = []
    for k, frame in enumerate(frames):
        row = [frame.file, str(frame.index), frame.formula]
        for h in heads.graph:
            row.append(full_precision(predictions.graph[h.name][k]))
            if predictions.ensemble:
                row.append(_number(float(predictions.graph_std[h.name][k])))
        if predictions.forces is not None:
            row.append(_number(float(np.linalg.norm(predictions.forces[k], axis=1).max())))
        rows.append(row)
    if predictions.forces is not None:
        header.append(_with_units("max |F|", FORCE_UNITS))
    click.echo(table(rows, header))
    per_atom = [h.name for h in heads.atom] + (["forces"] if predictions.forces is not None else [])
    if per_atom:
        click.echo(f"\nper-atom predictions ({', '.join(per_atom)}): write them with -o OUT.csv or -o OUT.extxyz")


def reference_errors(frames: list[Frame], predictions: Predictions) -> list[list[str]]:
    """MAE and RMSE against the reference values the input files carry: per target, and of the forces."""
    import numpy as np

    from molplat.metrics import regression_metrics, vector_metrics

    heads = predictions.heads
    rows = []
    for head in heads.graph:
        pairs = [(frame.reference[head.name], float(predictions.graph[head.name][k]))
                 for k, frame in enumerate(frames) if head.name in frame.reference]
        if pairs and not head.classification:
            true, pred = np.array(pairs).T
            m = regression_metrics(true, pred)
            rows.append([_with_units(head.name, head.units), f"{len(pairs)} structures", _number(m["mae"]),
                         _number(m["rmse"])])
    for head in heads.atom:
        known = [(frame.atom_reference[head.name], predictions.atom[head.name][k])
                 for k, frame in enumerate(frames) if head.name in frame.atom_reference]
        if known and not head.classification:
            true, pred = np.concatenate([t for t, _ in known]), np.concatenate([p for _, p in known])
            m = regression_metrics(true, pred)
            rows.append([_with_units(head.name, head.units), f"{len(true)} atoms", _number(m["mae"]),
                         _number(m["rmse"])])
    if predictions.forces is not None:
        known = [(frame.reference_forces, predictions.forces[k]) for k, frame in enumerate(frames)
                 if frame.reference_forces is not None]
        if known:
            true, pred = np.concatenate([t for t, _ in known]), np.concatenate([p for _, p in known])
            m = vector_metrics(true, pred)
            rows.append([_with_units("forces", FORCE_UNITS), f"{len(true)} atoms", _number(m["mae"]),
                         _number(m["rmse"])])
    return rows


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the predictions to OUTPUT instead of printing a table: a .csv (a row per structure and "
                   "target, every digit; per-atom targets and forces in OUTPUT.atoms.csv) or an .extxyz/.xyz "
                   "(the structures with predicted energy, forces and targets, readable by ase.io.read).")
@click.option("--checkpoint", default="best", show_default=True, shell_complete=_complete_checkpoint,
              help="Which checkpoint: best, last, or the name of a file in RUN_DIR/checkpoints.")
def predict(run_dir: str, files: tuple[str, ...], output: str | None, checkpoint: str) -> int:
    """Predict with the trained run in RUN_DIR for every structure in FILES (any ASE-readable file).

    Energy models also predict forces (eV/Å). When a file carries reference values
    (extxyz energy= and forces, a calculator's results, or an info key named like a
    target), the MAE and RMSE against them are printed.
    """
    out_format = None
    if output is not None:
        out_format = OUTPUT_FORMATS.get(Path(output).suffix.lower())
        if out_format is None:
            raise ValidationError(f"-o {output}: give a file ending in .csv, .extxyz or .xyz")
    for path in files:
        if not Path(path).is_file():
            raise ValidationError(f"{path}: file not found")
    from molplat.predict import TrainedModel

    model = TrainedModel.from_run(run_dir, checkpoint=checkpoint)
    heads = model.heads
    frames = read_frames(files, heads)
    for path in dict.fromkeys(files):
        mine = [f.structure for f in frames if f.file == path]
        for message in model.check(mine, where=f"{path}: "):
            _warn(f"{path}: {message}")
    try:
        with warnings.catch_warnings():  # the unseen-element warnings were printed above, per file
            warnings.filterwarnings("ignore", message="elements .* never occurred in training")
            result = model.predict([f.structure for f in frames], forces=True if heads.forces else None)
    except MolplatError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunError(f"predicting with {run_dir} failed: {type(exc).__name__}: {first[:300]}") from exc
    predictions = Predictions.of(result, heads)
    if out_format is None:
        _print_predictions(frames, predictions)
    else:
        writer = write_csv if out_format == "csv" else write_extxyz
        written = writer(Path(output), frames, predictions)
        click.echo(f"wrote predictions for {len(frames)} structures to {', '.join(map(str, written))}")
    errors = reference_errors(frames, predictions)
    if errors:
        click.echo("\nerrors against the reference values in the input:")
        click.echo(table(errors, ["target", "compared", "MAE", "RMSE"], align=["left", "left", "right", "right"]))
    return EXIT_OK


# -- plugins: new-plugin and install -----------------------------------------------------------
@cli.command("new-plugin")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(SCAFFOLD_KINDS),
              help="The kind of component the plugin provides.")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(),
              help="Folder to create the plugin distribution in.")
def new_plugin(name: str, kind: str, directory: str) -> int:
    """Render a new, tested plugin distribution molplat-NAME of one kind from the template."""
    from molplat.scaffold import new_plugin as render

    render(name, kind=kind, directory=directory, echo=click.echo)
    return EXIT_OK


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--dry-run", is_flag=True, help="Print the pip command instead of running it.")
@click.option("--upgrade", is_flag=True, help="Upgrade installed plugins to the newest release the catalog allows.")
@click.option("--no-build-isolation", is_flag=True,
              help="Build local plugins with the setuptools already installed (offline, faster).")
def install(names: tuple[str, ...], dry_run: bool, upgrade: bool, no_build_isolation: bool) -> int:
    """pip-install plugins from the catalog (registry.toml) by name; an unknown name installs nothing."""
    from molplat.catalog import install as pip_install

    return pip_install(list(names), dry_run=dry_run, upgrade=upgrade, build_isolation=not no_build_isolation)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
