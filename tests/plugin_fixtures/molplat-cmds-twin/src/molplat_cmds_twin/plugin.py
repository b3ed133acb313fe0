"""A plugin whose command name another plugin (molplat-cmds) also uses."""
import molplat
from molplat import CommandSpec

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_commands():
    return [CommandSpec("twin", "molplat_cmds_twin.plugin:nothing", "Also added by molplat-cmds")]
