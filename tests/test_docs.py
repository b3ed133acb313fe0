"""docs/writing-plugins.md cannot rot: its ```bash blocks run, in order, as one script.

The script runs in an empty folder with a throwaway venv first on PATH. The venv reads this
interpreter's site-packages (molplat, torch, pytest, molplat-sdk, the first-party plugins), so
the tutorial's "Before you start" holds, and nothing is installed into this environment. pip
works offline: no index, no build isolation (setuptools comes from here too).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from molplat.catalog import OPTIONAL_KEYS, REQUIRED_KEYS

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The commands the tutorial assumes on PATH, as the venv's own python runs them.
COMMANDS = {"molplat": "-m molplat.cli", "pytest": "-m pytest", "pip": "-m pip"}


def bash_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```bash block, in order."""
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def with_commands(python: Path) -> Path:
    """Put the tutorial's commands (molplat, pytest, pip) beside the venv's python; returns bin/."""
    bin_dir = python.parent
    for command, module in COMMANDS.items():
        script = bin_dir / command
        script.write_text(f'#!/bin/sh\nexec "{python}" {module} "$@"\n')
        script.chmod(0o755)
    return bin_dir


def test_the_tutorial_runs_as_written(tmp_path, overlay_venv):
    if shutil.which("patch") is None:
        pytest.skip("the tutorial applies its change with `patch`, which this machine lacks")
    blocks = bash_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the tutorial lost its ```bash blocks"
    script = "set -euo pipefail\n" + "".join(f"echo '### {DOC.name} line {line}'\n{code}" for line, code in blocks)
    bin_dir = with_commands(overlay_venv(tmp_path / "venv"))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MOLPLAT_DISABLE_PLUGINS", "MOLPLAT_REGISTRY", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(bin_dir.parent),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_BUILD_ISOLATION="0")  # sic: pip reads this variable inverted; "0" turns isolation off
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    last = re.findall(r"### .*", output)
    assert proc.returncode == 0, f"failed after {last[-1] if last else 'the start'}:\n{output[-6000:]}"
    assert "Successfully installed molplat-my-model" in output
    assert re.search(r"\d+ passed", output) and not re.search(r"\d+ failed", output)
    assert re.search(r"molplat-my-model\s+0\.1\.0\s+loaded\s+model: my_model", output)
    assert "readout" in output  # molplat show lists the setting the tutorial added
    assert "gap [eV]" in output and list(work.glob("molplat-my-model/examples/runs/pipeline-*/summary.json"))
    assert re.search(r"my-model\s+molplat-my-model\s+0\.1\.0\s+0\.1\.0\s+installed\s+model: my_model", output)


def test_the_catalog_keys_it_documents_are_the_catalogs():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 6."):text.index("## Other kinds")]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert documented == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
