"""One run's offline Weights & Biases run, in RUN/wandb; `wandb sync RUN/wandb/offline-run-*` uploads it.

Offline means no network and no login: wandb writes a transaction log
(``offline-run-*/run-ID.wandb``) and media files. wandb also keeps logs, caches and
settings in the user's home and the working folder by default; every one of those
folders is pointed into RUN/wandb while the run's wandb service starts, and the
service is stopped when the run ends, so each molplat run gets its own.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import wandb

from molplat.metrics import summary_metrics

FOLDER = "wandb"
PROJECT = "molplat"


def wandb_environment(folder: Path) -> dict[str, str]:
    """wandb's own folders (logs, artifact cache, settings, staging), all inside ``folder``."""
    return {
        "WANDB_CACHE_DIR": str(folder / "cache"),
        "WANDB_CONFIG_DIR": str(folder / "config"),
        "WANDB_DATA_DIR": str(folder / "data"),
        "WANDB_ARTIFACT_DIR": str(folder / "artifacts"),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ while wandb starts its service (which reads them), then as before."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class WandbLog:
    """The resolved pipeline as the run's config, metrics per epoch (step = epoch), the final
    metrics in the run summary and the parity plots as images."""

    def __init__(self, run_dir: str | Path, pipeline: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir).resolve()
        folder = self.run_dir / FOLDER
        folder.mkdir(exist_ok=True)
        settings = wandb.Settings(mode="offline", root_dir=str(self.run_dir), silent=True, console="off",
                                  disable_git=True, save_code=False, x_disable_stats=True,
                                  x_disable_machine_info=True, x_save_requirements=False)
        with environment(wandb_environment(folder)):
            self.run = wandb.init(project=PROJECT, name=self.run_dir.name, dir=str(self.run_dir), config=pipeline,
                                  settings=settings, reinit="create_new")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.run.log({name: value for name, value in metrics.items() if isinstance(value, (int, float))},
                     step=epoch)

    def evaluated(self, summary: dict[str, Any]) -> None:
        self.run.summary.update(summary_metrics(summary))
        plots = {plot.stem: wandb.Image(str(plot)) for plot in sorted(self.run_dir.glob("parity*.png"))}
        if plots:
            self.run.log(plots)

    def close(self, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Finish the run (exit code 1 when it failed or was dropped unfinished; the error in its summary)
        and stop this process's wandb service."""
        if error is not None:
            self.run.summary["molplat_error"] = error
        self.run.finish(exit_code=0 if summary is not None else 1)
        wandb.teardown()
