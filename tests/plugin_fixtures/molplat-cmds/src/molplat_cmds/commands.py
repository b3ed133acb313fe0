"""The commands of the fixture plugin; importing this module leaves a mark the tests look for."""
import os

import click

if os.environ.get("MOLPLAT_CMDS_MARK"):  # lets a test tell whether --help imported this module
    open(os.environ["MOLPLAT_CMDS_MARK"], "w").close()


@click.command()
@click.argument("name")
@click.option("--shout", is_flag=True, help="Upper case.")
def hello(name: str, shout: bool) -> int:
    """Greet NAME."""
    text = f"hello {name}"
    click.echo(text.upper() if shout else text)
    return 0


def plain_function() -> None:
    """Not a click command."""


@click.command()
def crash() -> int:
    """Fails with a bug of its own."""
    raise ZeroDivisionError("the plugin divided by zero")
