"""Ctrl+C during a run, remembered even where a library swallows the KeyboardInterrupt.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be. When
that is a ``__del__``, a weakref callback or a library's broad ``except``, the exception is
printed or dropped and training goes on: the run would then end with exit 0 as if nobody
had pressed Ctrl+C. While :func:`watched` is active the interrupt is also recorded, so the
trainer stops at the next batch and the runner reports the run as interrupted.
Signals are per process, so this state is too: one flag, set only by the handler.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()


def requested() -> bool:
    """Whether Ctrl+C (SIGINT) arrived since the innermost :func:`watched` began."""
    return _requested.is_set()


def _on_sigint(signum: int, frame: object) -> None:
    _requested.set()
    raise KeyboardInterrupt


@contextmanager
def watched() -> Iterator[None]:
    """Record SIGINT while the block runs (and still raise KeyboardInterrupt as Python does).

    Outside the main thread signal handlers cannot be set; the block then runs unwatched.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # started with Ctrl+C ignored (nohup, a background job): keep it so
        yield
        return
    _requested.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
