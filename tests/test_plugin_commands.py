"""`molplat NAME` subcommands that plugins add through the molplat_commands hook.

The fixture plugins molplat-cmds and molplat-cmds-twin (tests/plugin_fixtures) add a
working command, commands that fail to load or crash, one that clashes with the core's
`run`, and one name both of them use.
"""
from __future__ import annotations

import json
import types

import pytest
import molplat as molplat_package
from molplat.plugins import PluginManager
from molplat.specs import COMMAND, PLUGIN_KINDS, CommandSpec


def test_a_plugin_command_runs_and_is_listed_in_help_without_importing_it(plugin_site, molplat_cli, tmp_path):
    mark = tmp_path / "imported"
    env_mark = {"MOLPLAT_CMDS_MARK": str(mark)}
    proc = molplat_cli("--help", site=plugin_site, **env_mark)
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout and "Greet NAME (a working plugin command)" in proc.stdout
    assert "twin" not in proc.stdout.split("Commands:")[1]  # refused: two plugins add it
    assert not mark.exists(), "--help imported the plugin command's module"
    proc = molplat_cli("hello", "world", "--shout", site=plugin_site, **env_mark)
    assert (proc.returncode, proc.stdout.strip()) == (0, "HELLO WORLD"), proc.stderr
    assert mark.exists()
    proc = molplat_cli("hello", "--help", site=plugin_site)
    assert proc.returncode == 0 and "--shout" in proc.stdout and "Upper case." in proc.stdout


def test_list_plugins_lists_commands_and_reports_clashes(plugin_site, molplat_cli):
    proc = molplat_cli("list-plugins", "--json", site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    cmds, twin = plugins["molplat-cmds"], plugins["molplat-cmds-twin"]
    assert cmds["status"] == "loaded"
    assert cmds["components"] == {COMMAND: ["hello", "broken-import", "not-a-command", "crash", "run", "twin"]}
    for entry in (cmds, twin):
        assert any("command 'twin' is also added by another plugin" in w for w in entry["warnings"])
    text = molplat_cli("list-plugins", "--kind", "command", site=plugin_site)
    assert text.returncode == 0, text.stderr
    assert "command: hello, broken-import" in text.stdout
    assert "plugin molplat-cmds adds a command 'run', which is molplat's own `molplat run`" in text.stdout


@pytest.mark.parametrize(("args", "code", "expected"), [
    (("broken-import",), 1, "`molplat broken-import` of plugin molplat-cmds cannot be loaded: molplat_cmds.missing:"
                            "command fails to import (ModuleNotFoundError"),
    (("not-a-command",), 1, "molplat_cmds.commands:plain_function is a function, not a click command"),
    (("crash",), 1, "`molplat crash` of plugin molplat-cmds failed: ZeroDivisionError: the plugin divided by zero"),
    (("twin",), 2, "command 'twin' is added by 2 plugins (molplat-cmds, molplat-cmds-twin); disable all but one"),
])
def test_a_broken_or_ambiguous_plugin_command_is_one_error_line(plugin_site, molplat_cli, args, code, expected):
    proc = molplat_cli(*args, site=plugin_site)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line


def test_the_core_command_wins_a_clash(plugin_site, molplat_cli, tmp_path):
    pipeline = tmp_path / "missing.toml"
    proc = molplat_cli("run", str(pipeline), site=plugin_site)
    assert proc.returncode == 2
    assert "hello" not in proc.stdout and "missing.toml" in proc.stderr  # the core's run read the argument


def test_the_manager_checks_what_the_hook_returns():
    good = types.ModuleType("good_commands")
    good.MOLPLAT_API = ">=1.0,<2"
    good.molplat_commands = molplat_package.hookimpl(lambda: [CommandSpec("greet", "x.y:z", "Greets")])
    bad = types.ModuleType("bad_commands")
    bad.MOLPLAT_API = ">=1.0,<2"
    bad.molplat_commands = molplat_package.hookimpl(lambda: ["greet"])
    manager = PluginManager(entry_points=[], extra={"good": good, "bad": bad})
    assert manager.plugin("good").components == {COMMAND: ["greet"]}
    assert manager.plugin("bad").status == "failed"
    assert "molplat_commands must return a list of molplat.specs.CommandSpec" in manager.plugin("bad").error
    usable, refused = manager.commands(reserved={"run"})
    assert set(usable) == {"greet"} and usable["greet"].plugin == "good" and refused == {}
    usable, refused = manager.commands(reserved={"greet"})
    assert usable == {} and "molplat's own `molplat greet`" in refused["greet"]
    assert COMMAND in PLUGIN_KINDS


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"name": "Rogi", "factory": "a.b:c", "summary": "s"}, "lowercase words joined by hyphens"),
    ({"name": "my_cmd", "factory": "a.b:c", "summary": "s"}, "lowercase words joined by hyphens"),
    ({"name": "rogi", "factory": "a.b.c", "summary": "s"}, "must look like 'package.module:command'"),
    ({"name": "rogi", "factory": "a.b:c", "summary": ""}, "one-line summary"),
])
def test_a_malformed_command_spec_is_refused(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        CommandSpec(**kwargs)




def test_shell_completion_offers_plugin_commands(plugin_site, molplat_cli):
    env = {"_MOLPLAT_COMPLETE": "bash_complete", "COMP_WORDS": "molplat hel", "COMP_CWORD": "1"}
    assert molplat_cli(site=plugin_site, **env).stdout.split() == ["plain,hello"]


def test_core_commands_names_molplat_s_own_subcommands_only():
    """The public list the SDK checks plugin command names against: the core's, never a plugin's
    (molplat-rogi, installed here, adds `molplat rogi`)."""
    from molplat.plugins import core_commands

    names = core_commands()
    assert {"run", "validate", "predict", "list-plugins"} <= names
    assert "rogi" not in names
