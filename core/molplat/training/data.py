"""Moved to ``molplat.data``; kept so plugins written against molplat 0.1 still import."""
from molplat.data.samples import Sample, SampleCollator, SampleList

__all__ = ["Sample", "SampleCollator", "SampleList"]
