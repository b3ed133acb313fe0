"""Checkpoints and metrics that survive a kill at any moment: write to a temporary file, then rename."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from molplat.files import atomic_write_bytes, atomic_write_text


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that never leaves a half-written ``.ckpt`` behind."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())


class MetricsTable:
    """metrics.csv with one row per epoch, rewritten atomically on every append."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            with open(self.path, newline="") as fh:
                self.rows = list(csv.DictReader(fh))

    def truncate(self, before_epoch: int) -> None:
        """Forget epochs that a resumed run is about to train again."""
        self.rows = [r for r in self.rows if int(r["epoch"]) < before_epoch]
        self._write()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        fields: list[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, out.getvalue())
