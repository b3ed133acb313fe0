"""The run directory: the contract between every trainer backend and ``load_model``/``predict``.

A run directory holds::

    pipeline.toml        the resolved pipeline (every default, qualified component names, plugin versions)
    data.json            dataset, targets with units and levels, split sizes
    metrics.csv          one row per finished epoch
    checkpoints/best.ckpt, checkpoints/last.ckpt
    predictions.csv      test-split predictions at full precision
    parity.png           and other plots
    summary.json         strict JSON: metrics per target, baselines, warnings, plugin versions

A checkpoint is a ``torch.save`` of a dict that ``torch.load(weights_only=True)`` reads
(tensors, numbers, strings, lists and dicts only; nothing that runs code), with

    "state_dict": the parameters and buffers of molplat's task: "model.*" and "scaler.*"
    "molplat":    {"format": 1, "heads": ..., "statistics": ..., "epoch": int, "val_loss": float | None}

and whatever else a backend needs to resume (Lightning keeps its loops and optimiser
states beside them). Any backend that writes these files (``write_checkpoint`` does it
without Lightning) produces runs that ``molplat predict`` and ``--resume`` accept.
``last.ckpt`` is rewritten at the end of every epoch, ``best.ckpt`` when the validation
loss improves; both atomically. A process holds ``.lock`` while it writes the directory.

An ensemble run (``[trainer] ensemble = N``) keeps ``metrics.csv`` and ``checkpoints/``
of each member in ``members/K/`` and lists them in ``ensemble.json``; see
``molplat.ensemble``. With ``ensemble = 1`` the layout is the one above.
"""
from __future__ import annotations

import io
import json
import math
import os
import socket
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molplat.errors import RunError, ValidationError
from molplat.files import atomic_write_bytes, atomic_write_text, remove_temporaries

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from molplat.data.statistics import TrainingStatistics
    from molplat.models.heads import Heads

PIPELINE_FILE = "pipeline.toml"
DATA_FILE = "data.json"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.csv"
CHECKPOINT_DIR = "checkpoints"
BEST = "best.ckpt"
LAST = "last.ckpt"
LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"
CHECKPOINT_FORMAT = 1


class RunDirectory:
    """One run's folder: its files by name, its lock, and safe access to its checkpoints."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock: Any = None

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- creating and opening ----------------------------------------------------------------
    @classmethod
    def create(cls, base: str | os.PathLike, name: str) -> "RunDirectory":
        """A fresh ``base/name-YYYYmmdd-HHMMSS`` folder, suffixed -2, -3, ... when taken.

        ``mkdir`` without ``exist_ok`` is the claim, so processes starting in the same
        second each get their own folder.
        """
        base = Path(base)
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in range(1, 100_000):
            path = base / (f"{name}-{stamp}" if suffix == 1 else f"{name}-{stamp}-{suffix}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)
        raise RunError(f"{base}: could not create a run directory named {name}-{stamp}-N")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDirectory":
        """An existing run directory; anything else is invalid input."""
        run = cls(path)
        if not run.path.is_dir():
            raise ValidationError(f"{run.path}: no such run directory; pass the folder that `molplat run` printed")
        if not (run.path / PIPELINE_FILE).is_file():
            raise ValidationError(f"{run.path}: not a molplat run directory (no {PIPELINE_FILE}); pass the folder "
                                  f"that `molplat run` printed")
        return run

    # -- the lock ----------------------------------------------------------------------------
    def acquire(self) -> None:
        """Hold the directory for this process; a second writer is refused with the holder named.

        The lock is an OS file lock (released by the OS when the process dies, so a
        killed run never leaves a stale lock); ``.lock-holder.json`` says who holds it.
        """
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunError(f"{self.path} is in use by {self._holder()}; wait for that run to finish or stop it, "
                           f"then try again") from None
        self._lock = lock
        atomic_write_text(self.path / HOLDER_FILE, json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        remove_temporaries(self.path)

    def release(self) -> None:
        if self._lock is not None:
            (self.path / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    @contextmanager
    def locked(self) -> Iterator["RunDirectory"]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def _holder(self) -> str:
        try:
            info = json.loads((self.path / HOLDER_FILE).read_text())
            return f"process {info['pid']} on {info['host']} (since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    # -- files -------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def checkpoint(self, name: str = "best") -> Path:
        """``best``, ``last`` or a file name in ``checkpoints/``; never a path that leaves it."""
        filename = {"best": BEST, "last": LAST}.get(name, name)
        if not filename or "/" in filename or "\\" in filename or filename in (".", "..") or "\x00" in filename:
            raise ValidationError(f"--checkpoint {name!r}: give best, last or the name of a file in "
                                  f"{self.checkpoint_dir} (no folders)")
        path = self.checkpoint_dir / filename
        try:
            path.resolve().relative_to(self.checkpoint_dir.resolve())
        except ValueError:
            raise ValidationError(f"--checkpoint {name!r}: {path} points outside {self.checkpoint_dir}; "
                                  f"give best or last") from None
        return path

    def write_pipeline(self, resolved: dict[str, Any]) -> None:
        import tomli_w

        atomic_write_text(self.path / PIPELINE_FILE, tomli_w.dumps(resolved))

    def read_pipeline(self) -> dict[str, Any]:
        path = self.path / PIPELINE_FILE
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError(f"{path}: the run's pipeline cannot be read ({type(exc).__name__}); "
                                  f"the run directory is damaged") from None

    def write_json(self, name: str, data: Any) -> Path:
        return write_json(self.path / name, data)

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{path}: cannot be read ({type(exc).__name__}); the run has not finished its "
                                  f"data stage, or the file is damaged") from None


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so the JSON is strict (no NaN, no Infinity)."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> Path:
    """Strict JSON, written atomically."""
    return atomic_write_text(path, json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n")


# -- checkpoints ---------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What ``read_checkpoint`` hands back: the task's weights and how to rebuild it."""

    path: Path
    state_dict: dict[str, Any]
    heads: "Heads"
    statistics: "TrainingStatistics | None"
    epoch: int
    val_loss: float | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


def checkpoint_metadata(heads: "Heads", statistics: "TrainingStatistics | None", epoch: int,
                        val_loss: float | None) -> dict[str, Any]:
    """The ``"molplat"`` section of a checkpoint."""
    return {
        "format": CHECKPOINT_FORMAT,
        "heads": heads.as_dict(),
        "statistics": None if statistics is None else statistics.as_dict(),
        "epoch": int(epoch),
        "val_loss": None if val_loss is None or not math.isfinite(val_loss) else float(val_loss),
    }


def write_checkpoint(path: str | os.PathLike, state_dict: dict[str, "torch.Tensor"], heads: "Heads",
                     statistics: "TrainingStatistics | None", epoch: int, val_loss: float | None,
                     **extra: Any) -> Path:
    """Write a checkpoint in the run-directory format, atomically (for backends without Lightning)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"state_dict": dict(state_dict), "molplat": checkpoint_metadata(heads, statistics, epoch, val_loss),
                **extra}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | os.PathLike, resume: str = "") -> Checkpoint:
    """Read a checkpoint without running any code it might carry (``weights_only=True``).

    A missing, empty, truncated or foreign file, or one holding anything but tensors and
    plain data (a pickle with a ``__reduce__`` payload), is one ValidationError line.
    """
    import pickle
    import zipfile

    import torch

    from molplat.data.statistics import TrainingStatistics
    from molplat.models.heads import Heads

    path = Path(path)
    hint = resume or "train the run again, or pass --checkpoint last"
    if not path.is_file():
        raise ValidationError(f"{path}: no checkpoint; the run has not finished an epoch ({hint})")
    if path.stat().st_size == 0:
        raise ValidationError(f"{path}: the checkpoint is empty ({hint})")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"{path}: refused to load: the checkpoint holds more than tensors and plain data, "
                              f"which could run code ({first[:160]}); only load checkpoints that molplat wrote") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        raise ValidationError(f"{path}: not a readable checkpoint, it is truncated or damaged "
                              f"({type(exc).__name__}); {hint}") from None
    meta = raw.get("molplat") if isinstance(raw, dict) else None
    if not isinstance(meta, dict) or not isinstance(raw.get("state_dict"), dict):
        raise ValidationError(f"{path}: not a molplat checkpoint (no 'molplat' section or 'state_dict'); {hint}")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValidationError(f"{path}: checkpoint format {meta.get('format')!r}, this molplat reads "
                              f"{CHECKPOINT_FORMAT}; use the molplat version that wrote it")
    try:
        heads = Heads.from_dict(meta["heads"])
        statistics = None if meta.get("statistics") is None else TrainingStatistics.from_dict(meta["statistics"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{path}: the checkpoint's molplat section is damaged ({type(exc).__name__}: {exc})")
    return Checkpoint(path, raw["state_dict"], heads, statistics, int(meta.get("epoch", 0)), meta.get("val_loss"), raw)


# -- what a trainer backend receives and returns ---------------------------------------------------
@dataclass
class TrainingJob:
    """Everything a trainer backend needs to fit.

    ``train``/``val`` are sequences of ``molplat.data.Sample`` (in memory, featurised
    on the fly, or read from the store); ``collator`` batches them; ``build_model()``
    returns a fresh model for ``heads`` and ``statistics``; ``run_dir`` is where the
    backend writes metrics and checkpoints in the format above. ``num_workers`` is how
    many DataLoader processes the user asked for. ``seed``, when not None, replaces the
    backend's own seed setting: an ensemble fits member K with the trainer's seed plus K.
    After each epoch's metrics.csv row, the
    backend calls :meth:`epoch_finished` on rank 0 (``fit_with_lightning`` does), which
    tells the run's observers, such as logger plugins.
    ``reserve``, when set, holds positions in ``train`` that start in the active-sampling
    pool (``[trainer] active_pool``): a backend trains on the others and moves pool
    structures in as it goes (the core's Lightning loop does; a backend that cannot must
    refuse active_pool).
    """

    train: Any
    val: Any
    collator: Callable[[list[Any]], Any]
    build_model: Callable[[], Any]
    run_dir: Path
    heads: "Heads | None" = None
    statistics: "TrainingStatistics | None" = None
    resume: bool = False
    num_workers: int = 0
    n_outputs: int | None = None
    seed: int | None = None
    epoch_listener: Callable[[int, dict[str, float]], None] | None = field(default=None, repr=False)
    reserve: Any = None

    def __post_init__(self) -> None:
        from molplat.models.heads import Head, Heads

        self.run_dir = Path(self.run_dir)
        if self.heads is None:  # a job built by hand with only n_outputs: plain regression heads
            count = self.n_outputs or 1
            self.heads = Heads(tuple(Head("y" if count == 1 else f"y{k}") for k in range(count)))
        self.n_outputs = self.heads.n_graph

    def epoch_finished(self, epoch: int, metrics: dict[str, float]) -> None:
        """Report a finished epoch (0-based) with its metrics.csv row: train_loss, val_loss, lr, ...

        Every backend calls it, on rank 0 only, once per epoch after writing that row, so
        loggers see training as it happens whichever backend trains. It never raises for
        an observer's failure (the run's event dispatcher isolates them).
        """
        if self.epoch_listener is not None:
            self.epoch_listener(int(epoch), {str(k): v for k, v in metrics.items()})


@dataclass
class FitResult:
    """What a backend returns: its checkpoints (in ``run_dir/checkpoints``), epochs run and best loss."""

    best_checkpoint: Path
    last_checkpoint: Path
    epochs: int
    best_val_loss: float | None
    extra: dict[str, Any] = field(default_factory=dict)
