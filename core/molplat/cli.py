"""The ``molplat`` command. Exit codes: 0 success, 2 invalid input, 1 failure while running.

Heavy modules (torch, Lightning) are imported inside the commands that need them,
so ``molplat list-plugins`` and ``molplat show`` stay fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from molplat.errors import MolplatError, ValidationError
from molplat.specs import KINDS

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def cmd_list_plugins(args: argparse.Namespace) -> int:
    from molplat.plugins import get_plugin_manager

    if args.available:
        from molplat.catalog import print_available

        return print_available(kind=args.kind, as_json=args.json)
    manager = get_plugin_manager()
    plugins = manager.plugins
    if args.kind:
        plugins = [p for p in plugins if args.kind in p.components]
    if args.json:
        print(json.dumps([p.as_dict() for p in plugins], indent=2))
        return EXIT_OK
    rows = []
    for p in plugins:
        kinds = [k for k in KINDS if k in p.components and (not args.kind or k == args.kind)]
        comps = "; ".join(f"{k}: {', '.join(p.components[k])}" for k in kinds) or "-"
        status = p.status if not p.error else f"{p.status} ({p.error})"
        rows.append([p.name, p.version, status, comps])
    print(_table(rows, ["plugin", "version", "status", "components"]))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from molplat.plugins import get_plugin_manager

    manager = get_plugin_manager()
    found = manager.find(args.name)
    if args.kind:
        found = [s for s in found if s.kind == args.kind]
    if not found:
        import difflib

        names = sorted({n for k in KINDS for n in manager.components(k)})
        close = difflib.get_close_matches(args.name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValidationError(f"no component named {args.name!r}{hint} (see `molplat list-plugins`)")
    for spec in found:
        print(f"{spec.name}  ({spec.kind}, plugin {spec.plugin})")
        if spec.summary:
            print(f"  {spec.summary}")
        if spec.accepts:
            print(f"  accepts representations: {', '.join(spec.accepts)}")
        if spec.outputs:
            print(f"  outputs: {', '.join(spec.outputs)}")
        if spec.citation:
            print(f"  cite: {spec.citation}")
        if spec.settings:
            rows = [[s.name, s.type, repr(s.default) if not s.required else "(required)",
                     ", ".join(map(repr, s.choices)) if s.choices else "", s.help] for s in spec.settings]
            print(_table(rows, ["setting", "type", "default", "choices", "help"]))
        else:
            print("  no settings")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from molplat.pipeline.config import Pipeline

    pipeline = Pipeline.load(args.pipeline)
    parts = [f"{t}={c.spec.name}" for t, c in pipeline.components.items()]
    print(f"{args.pipeline}: valid ({', '.join(parts)})")
    return EXIT_OK


def _print_summary(summary: dict[str, Any]) -> None:
    units = summary.get("units", "")
    rows = []
    for split in ("val", "test"):
        m = summary[split]
        rows.append([split, f"{m['mae']:.4f}", f"{m['rmse']:.4f}", f"{m['r2']:.3f}"])
    rows.append(["mean of train (test)", f"{summary['baseline_mae']:.4f}", "", ""])
    print(f"\n{summary['target']} [{units}]")
    print(_table(rows, ["split", "MAE", "RMSE", "R2"]))
    print(f"\nrun directory: {summary['run_dir']}")


def cmd_run(args: argparse.Namespace) -> int:
    from molplat.pipeline.config import Pipeline

    pipeline = Pipeline.load(args.pipeline)  # validation errors exit 2 before anything runs
    from molplat.pipeline.runner import run_pipeline

    try:
        summary = run_pipeline(pipeline, resume=args.resume)
    except ValidationError:
        raise
    except MolplatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print_summary(summary)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from molplat.predict import TrainedModel

    model = TrainedModel.from_run(args.run_dir, checkpoint=args.checkpoint)
    import ase.io

    rows: list[list[str]] = []
    structures, labels = [], []
    for path in args.files:
        if not Path(path).is_file():
            raise ValidationError(f"{path}: file not found")
        try:
            images = ase.io.read(path, index=":")
        except Exception as exc:
            raise ValidationError(f"{path}: ASE cannot read it ({type(exc).__name__}: {exc}); "
                                  f"pass an ASE-readable file such as .xyz, .extxyz or .cif") from None
        for i, atoms in enumerate(images):
            structures.append(atoms)
            labels.append((path, i, atoms.get_chemical_formula()))
    result = model.predict(structures)
    for (path, i, formula), value in zip(labels, result["y"]):
        rows.append([path, str(i), formula, f"{value:.6g}", result["units"]])
    header = ["file", "index", "formula", result["target"], "units"]
    if args.output:
        import csv
        import io

        from molplat.files import atomic_write_text

        out = io.StringIO()
        csv.writer(out).writerows([header] + rows)
        atomic_write_text(Path(args.output), out.getvalue())
        print(f"wrote {len(rows)} predictions to {args.output}")
    else:
        print(_table(rows, header))
    return EXIT_OK


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from molplat.scaffold import new_plugin

    new_plugin(args.name, kind=args.kind, directory=args.dir)
    return EXIT_OK


def cmd_install(args: argparse.Namespace) -> int:
    from molplat.catalog import install

    return install(args.names, dry_run=args.dry_run, upgrade=args.upgrade,
                   build_isolation=not args.no_build_isolation)


def build_parser() -> argparse.ArgumentParser:
    from molplat import __version__

    parser = argparse.ArgumentParser(prog="molplat", description="Machine learning on molecules, crystals and MOFs.")
    parser.add_argument("--version", action="version", version=f"molplat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list-plugins", help="installed plugins, their status and components")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--kind", choices=KINDS, help="only plugins providing this kind")
    p.add_argument("--available", action="store_true",
                   help="the catalog (registry.toml) beside what is installed")
    p.set_defaults(func=cmd_list_plugins)

    p = sub.add_parser("show", help="a component's summary and settings")
    p.add_argument("name")
    p.add_argument("--kind", choices=KINDS)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("validate", help="check a pipeline file without running it")
    p.add_argument("pipeline")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="validate, then run a pipeline")
    p.add_argument("pipeline")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("predict", help="predict with a trained run on ASE-readable files")
    p.add_argument("run_dir")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", help="write a CSV here instead of printing")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a file in checkpoints/")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("new-plugin", help="render a new plugin distribution from a template")
    p.add_argument("name", help="plugin name, such as my-model; the distribution becomes molplat-NAME")
    p.add_argument("--kind", required=True, choices=KINDS, help="the kind of component it provides")
    p.add_argument("--dir", default=".", help="folder to create the plugin in (default: the current one)")
    p.set_defaults(func=cmd_new_plugin)

    p = sub.add_parser("install", help="pip-install catalog plugins by name into this environment")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--dry-run", action="store_true", help="print the pip command instead of running it")
    p.add_argument("--upgrade", action="store_true",
                   help="upgrade installed plugins to the newest release in the catalog's range")
    p.add_argument("--no-build-isolation", action="store_true",
                   help="build local plugins with the setuptools already installed (offline, faster)")
    p.set_defaults(func=cmd_install)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_INVALID
    except MolplatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
