"""One run's TensorBoard event files: RUN/tensorboard, read by `tensorboard --logdir RUN/tensorboard`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from molplat.metrics import summary_metrics
from molplat.rundir import PIPELINE_FILE

FOLDER = "tensorboard"


class TensorBoardLog:
    """Scalars per epoch (step = epoch), the resolved pipeline as text, final metrics and parity plots.

    Each event is flushed at once, so a run that is killed keeps every epoch it finished.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir / FOLDER))
        pipeline = (self.run_dir / PIPELINE_FILE).read_text(encoding="utf-8")
        # TensorBoard renders text as Markdown: indenting by four spaces keeps the TOML verbatim.
        self.writer.add_text("pipeline", "\n".join("    " + line for line in pipeline.splitlines()))
        self.writer.flush()

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{name}", float(value), global_step=epoch)
        self.writer.flush()

    def evaluated(self, summary: dict[str, Any]) -> None:
        """The test-split metrics (and val, baselines) as scalars at step 0, the parity PNGs as images."""
        for name, value in summary_metrics(summary).items():
            self.writer.add_scalar(name, value, global_step=0)
        for plot in sorted(self.run_dir.glob("parity*.png")):
            with Image.open(plot) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image(plot.stem, pixels, global_step=0, dataformats="HWC")
        self.writer.flush()

    def close(self, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Close the writer; a run that failed keeps ``error`` as text, so the board says why it ends."""
        if error is not None:
            self.writer.add_text("error", error)
        self.writer.close()
