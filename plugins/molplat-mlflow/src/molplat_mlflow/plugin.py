"""molplat hook implementations of molplat-mlflow.

A logger: it acts only in runs whose ``[output] loggers`` names ``mlflow``. This
module imports neither torch nor mlflow, so listing plugins stays cheap; the
writer is imported when a run starts.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import molplat

if TYPE_CHECKING:  # pragma: no cover
    from molplat_mlflow.log import MlflowLog

MOLPLAT_API = ">=1.0,<2"
LOGGER = "mlflow"

#: the open log of each run in progress in this process, by run directory
_open: dict[str, "MlflowLog"] = {}


@molplat.hookimpl
def molplat_loggers() -> list[str]:
    return [LOGGER]


@molplat.hookimpl
def molplat_run_started(run_dir: str, pipeline: dict[str, Any]) -> None:
    from molplat_mlflow.log import MlflowLog

    earlier = _open.pop(run_dir, None)
    if earlier is not None:  # a resumed run in the same process
        earlier.close()
    _open[run_dir] = MlflowLog(run_dir, pipeline)


def _with_log(run_dir: str, action: Callable[["MlflowLog"], None]) -> None:
    """Run ``action`` on the run's log; when it raises, the core stops calling this plugin for the
    run, so the log is closed and dropped here before the error goes on."""
    log = _open[run_dir]
    try:
        action(log)
    except Exception:
        _open.pop(run_dir, None)
        try:
            log.close(None)
        except Exception:  # the first error is the one to report
            pass
        raise


@molplat.hookimpl
def molplat_epoch_finished(run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
    _with_log(run_dir, lambda log: log.epoch(epoch, metrics))


@molplat.hookimpl
def molplat_stage_finished(run_dir: str, stage: str, result: dict[str, Any]) -> None:
    if stage == "evaluate":
        _with_log(run_dir, lambda log: log.evaluated(result))


@molplat.hookimpl
def molplat_run_finished(run_dir: str, summary: dict[str, Any]) -> None:
    _open.pop(run_dir).close(summary)


@molplat.hookimpl
def molplat_run_failed(run_dir: str, error: str) -> None:
    log = _open.pop(run_dir, None)
    if log is not None:  # None: the log was already dropped after a failure of its own
        log.close(None, error=error)
