"""The dataset contract, samples and their labels, training statistics and the on-disk store.

``Dataset`` and the statistics import no torch; the sample and store names load on
first use, so a dataset plugin stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

from molplat.data.dataset import Dataset, seeded_split
from molplat.data.statistics import TargetStatistics, TrainingStatistics, compute_statistics

_LAZY = {
    "Sample": "molplat.data.samples",
    "SampleCollator": "molplat.data.samples",
    "SampleList": "molplat.data.samples",
    "is_labelled": "molplat.data.samples",
    "labels_of": "molplat.data.samples",
    "make_sample": "molplat.data.samples",
}

__all__ = ["Dataset", "TargetStatistics", "TrainingStatistics", "compute_statistics", "seeded_split", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'molplat.data' has no attribute {name!r}")
