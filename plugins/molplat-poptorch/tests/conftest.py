"""Fixtures: the PopTorch test double in sys.modules, one torch thread."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # poptorch_test_double lives beside the tests

import poptorch_test_double  # noqa: E402


@pytest.fixture
def poptorch_double(monkeypatch):
    """``import poptorch`` gives the test double (never the real SDK) for this test."""
    monkeypatch.setitem(sys.modules, "poptorch", poptorch_test_double)
    poptorch_test_double.CREATED_OPTIONS.clear()
    poptorch_test_double.CREATED_EXECUTORS.clear()
    yield poptorch_test_double


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only waits on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
