"""A plugin that adds `molplat` subcommands: one that works, and each way one can go wrong."""
import molplat
from molplat import CommandSpec

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_commands():
    return [
        CommandSpec("hello", "molplat_cmds.commands:hello", "Greet NAME (a working plugin command)"),
        CommandSpec("broken-import", "molplat_cmds.missing:command", "A command whose module does not exist"),
        CommandSpec("not-a-command", "molplat_cmds.commands:plain_function", "A factory that is no click command"),
        CommandSpec("crash", "molplat_cmds.commands:crash", "A command with a bug"),
        CommandSpec("run", "molplat_cmds.commands:hello", "Clashes with molplat's own run"),
        CommandSpec("twin", "molplat_cmds.commands:hello", "Also added by molplat-cmds-twin"),
    ]
