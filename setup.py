"""Copies templates/ and registry.toml into the molplat package of a built wheel.

They live at the repository root (see DESIGN.md); molplat.resources reads them there in a
checkout and from these copies in an installed wheel.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "molplat"
        if (ROOT / "templates").is_dir():
            shutil.copytree(ROOT / "templates", target / "templates", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if (ROOT / "registry.toml").is_file():
            shutil.copy2(ROOT / "registry.toml", target / "registry.toml")


setup(cmdclass={"build_py": BuildPyWithResources})
