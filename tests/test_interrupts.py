"""Ctrl+C is remembered even where a library swallows the KeyboardInterrupt (exit 0 after Ctrl+C, seen in CI)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from molplat import interrupts


@pytest.fixture(autouse=True)
def ctrl_c_reaches_python():
    """As in a terminal. A shell starts background jobs (``nohup make test &``) with SIGINT ignored, and a
    process that starts so keeps it ignored: Ctrl+C then cannot reach it at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class _SwallowsInterrupts:
    """Python prints and drops an exception raised in ``__del__``: a KeyboardInterrupt there is lost."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs here, inside __del__


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped KeyboardInterrupt
def test_a_swallowed_ctrl_c_is_still_remembered():
    with interrupts.watched():
        assert not interrupts.requested()
        _SwallowsInterrupts()  # gone at once; its KeyboardInterrupt is printed and dropped
        assert interrupts.requested()


def test_ctrl_c_still_raises_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), interrupts.watched():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_new_watch_forgets_the_last_interrupt():
    with pytest.raises(KeyboardInterrupt), interrupts.watched():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    with interrupts.watched():
        assert not interrupts.requested()


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.watched():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
