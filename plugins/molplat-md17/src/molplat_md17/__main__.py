"""``python -m molplat_md17 generate MOLECULE --frames N --out FILE.npz``: an MD17-layout file made here.

The file holds the MD17 keys (``z``, ``R``, ``E`` [frames, 1], ``F``, ``name``, ``theory``,
``type``) with sGDML's ``e_unit = "eV"`` and ``r_unit = "Ang"`` saying its units, so the
``md17`` dataset (``path = "FILE.npz"``) and sGDML-style tools read it back. Exit codes: 0
written, 2 invalid input (one ``error:`` line), 1 the generation failed.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from molplat.errors import MolplatError, ValidationError
from molplat.files import atomic_write
from molplat_md17 import generate
from molplat_md17.plugin import MAX_FRAMES


def _parser(prog: str = "python -m molplat_md17") -> argparse.ArgumentParser:
    defaults = generate.MDSettings()
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="run GFN2-xTB Langevin dynamics and write an MD17-layout .npz")
    gen.add_argument("molecule", help=f"a known molecule ({', '.join(generate.MOLECULES)}), or a name for --smiles")
    gen.add_argument("--smiles", help="generate this molecule (SMILES); MOLECULE is then only its name")
    gen.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    gen.add_argument("--frames", type=int, default=defaults.frames)
    gen.add_argument("--interval", type=int, default=defaults.interval, help="MD steps between frames")
    gen.add_argument("--temperature", type=float, default=defaults.temperature, help="K")
    gen.add_argument("--timestep", type=float, default=defaults.timestep, help="fs")
    gen.add_argument("--friction", type=float, default=defaults.friction, help="1/fs")
    gen.add_argument("--equilibration", type=int, default=defaults.equilibration, help="MD steps before frame 0")
    gen.add_argument("--seed", type=int, default=defaults.seed)
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check(args: argparse.Namespace) -> None:
    bounds = {"frames": (1, MAX_FRAMES), "interval": (1, 100_000), "equilibration": (0, 1_000_000),
              "temperature": (1.0, 3000.0), "friction": (0.0, 1.0), "seed": (0, 2**32 - 1)}
    for name, (low, high) in bounds.items():
        value = getattr(args, name)
        if not low <= value <= high:
            raise ValidationError(f"--{name}: {value} is outside {low}..{high}")
    if not 0.0 < args.timestep <= 5.0:
        raise ValidationError(f"--timestep: {args.timestep} must be above 0 and at most 5 fs")
    if args.out.suffix != ".npz":
        raise ValidationError(f"--out: {args.out} must end in .npz (numpy adds the suffix otherwise)")
    if not args.smiles and args.molecule not in generate.MOLECULES:
        raise ValidationError(f"MOLECULE: {args.molecule!r} is not a known molecule ({', '.join(generate.MOLECULES)}); "
                              "name one of those, or give --smiles")


def main(argv: Sequence[str] | None = None, prog: str = "python -m molplat_md17") -> int:
    """Run the command line ``argv``; ``prog`` names it in usage lines (``molplat md17`` as a subcommand)."""
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2): its message is printed already
        return int(exc.code or 0)
    try:
        _check(args)
        label, smiles = (args.molecule, args.smiles) if args.smiles else generate.smiles_of(args.molecule, None)
        settings = generate.MDSettings(temperature=args.temperature, frames=args.frames, interval=args.interval,
                                       timestep=args.timestep, friction=args.friction,
                                       equilibration=args.equilibration, seed=args.seed)
        trajectory = generate.run_md(label, smiles, settings, progress=not args.no_progress,
                                     echo=lambda m: print(m, file=sys.stderr))
        arrays = generate.md17_arrays(trajectory)
        atomic_write(args.out, lambda handle: np.savez(handle, **arrays))
    except ValidationError as exc:
        print(f"error: {str(exc).replace('[dataset] ', '')}", file=sys.stderr)
        return 2
    except MolplatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(trajectory)} frames of {trajectory.name} ({trajectory.theory}; energies in eV, forces in eV/Å) "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
