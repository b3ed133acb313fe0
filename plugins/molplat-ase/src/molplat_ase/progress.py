"""A progress bar over the steps of a simulation (tqdm, on stderr), or nothing when turned off."""
from __future__ import annotations

from types import TracebackType
from typing import Any


class StepProgress:
    """``step()`` after each MD or optimizer step; ``skip(n)`` for steps a converged relaxation never took."""

    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self._bar: Any = None
        if enabled and total > 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=f"simulate {label}", unit="step", dynamic_ncols=True, leave=False)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def skip(self, count: int) -> None:
        if self._bar is not None and count > 0:
            self._bar.update(count)

    def __enter__(self) -> "StepProgress":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
