"""`molplat md17 generate MOLECULE --out FILE.npz`: the MD17-layout generator as a molplat subcommand.

The options, checks and exit codes are those of ``python -m molplat_md17 generate``
(``molplat_md17.__main__``): 0 written, 2 invalid input (one ``error:`` line), 1 the
generation failed. ``molplat md17 generate --help`` lists them.
"""
from __future__ import annotations

import click


@click.group(name="md17", help="MD17 data made here: GFN2-xTB Langevin trajectories in the MD17 .npz layout.")
def md17() -> None:
    """The ``molplat md17`` group."""


@md17.command(name="generate", add_help_option=False,
              context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def generate(ctx: click.Context, args: tuple[str, ...]) -> None:
    """MOLECULE --out FILE.npz [--frames N ...]: an MD17-style trajectory at 500 K (see --help)."""
    from molplat_md17.__main__ import main

    ctx.exit(main(["generate", *args], prog="molplat md17"))
