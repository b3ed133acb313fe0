"""The event hooks of a logger plugin, written once: one open log per run in progress.

A logger plugin supplies how to open its log for a run (``open_log(run_dir, pipeline)``,
importing its library there, so listing plugins stays cheap) and exposes the hooks of a
``RunLogs`` at module level::

    logs = RunLogs("tensorboard", open_tensorboard_log)
    molplat_loggers = logs.molplat_loggers
    molplat_run_started = logs.molplat_run_started
    molplat_epoch_finished = logs.molplat_epoch_finished    # ... and the other molplat_* methods

The log is any object with ``epoch(epoch, metrics)``, ``evaluated(summary)`` and
``close(summary, error)`` (``RunLog``). This module imports no torch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from molplat.hookspecs import hookimpl

__all__ = ["RunLog", "RunLogs"]


class RunLog(Protocol):
    """One run's open log in a logging library."""

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """One metrics.csv row."""

    def evaluated(self, summary: dict[str, Any]) -> None:
        """The evaluation summary (final metrics; plots are in the run directory by now)."""

    def close(self, summary: dict[str, Any] | None, error: str | None) -> None:
        """The run finished (``summary``), failed (``error``), or neither: the log was dropped
        unfinished (a run resumed in this process, or this log's own failure)."""


class RunLogs:
    """The logs of the runs in progress in this process, by run directory, and the hooks that feed them.

    When one of its hooks raises, the core stops calling the plugin for that run, so the
    log is closed and dropped here first: nothing stays open behind a muted plugin.
    """

    def __init__(self, name: str, open_log: Callable[[str, dict[str, Any]], RunLog]) -> None:
        self.name = name
        self.open_log = open_log
        self.open: dict[str, RunLog] = {}

    def _with_log(self, run_dir: str, action: Callable[[RunLog], None]) -> None:
        log = self.open[run_dir]
        try:
            action(log)
        except Exception:
            self.open.pop(run_dir, None)
            try:
                log.close(None, None)
            except Exception:  # the first error is the one to report
                pass
            raise

    @hookimpl
    def molplat_loggers(self) -> list[str]:
        return [self.name]

    @hookimpl
    def molplat_run_started(self, run_dir: str, pipeline: dict[str, Any]) -> None:
        earlier = self.open.pop(run_dir, None)
        if earlier is not None:  # a run resumed in this process
            earlier.close(None, None)
        self.open[run_dir] = self.open_log(run_dir, pipeline)

    @hookimpl
    def molplat_epoch_finished(self, run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
        self._with_log(run_dir, lambda log: log.epoch(epoch, metrics))

    @hookimpl
    def molplat_stage_finished(self, run_dir: str, stage: str, result: dict[str, Any]) -> None:
        if stage == "evaluate":
            self._with_log(run_dir, lambda log: log.evaluated(result))

    @hookimpl
    def molplat_run_finished(self, run_dir: str, summary: dict[str, Any]) -> None:
        self.open.pop(run_dir).close(summary, None)

    @hookimpl
    def molplat_run_failed(self, run_dir: str, error: str) -> None:
        log = self.open.pop(run_dir, None)
        if log is not None:  # None: dropped already, after a failure of its own
            log.close(None, error)

