"""ROGI through the authors' `rogi` package (Aldeghi et al. 2022).

The definition: min-max normalise the property; cluster the structures by complete
linkage on their distances (scaled to [0, 1]); at each merge threshold t, sigma(t) is
twice the size-weighted standard deviation of the cluster means; ROGI = sigma(0) minus
the area under sigma(t) for t in [0, 1]. The package integrates with the trapezoid rule
through the merge thresholds (at least ``min_dt`` apart); tests/test_roughness.py checks
it against a hand calculation and against the exact area of the step function.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Roughness:
    """A ROGI score with the curve it came from: sigma(t) at each distance threshold t."""

    rogi: float
    thresholds: np.ndarray
    sigmas: np.ndarray
    n: int


def roughness_index(values: np.ndarray, *, features: np.ndarray | None = None, fingerprints: list[Any] | None = None,
                    distances: np.ndarray | None = None, metric: str = "euclidean", min_dt: float = 0.01) -> Roughness:
    """ROGI of ``values`` over one of: ``features`` (``[n, F]``, ``metric`` distance scaled by the
    diagonal of their bounding box), RDKit bit-vector ``fingerprints`` (Tanimoto distance), or a
    square ``distances`` matrix already in [0, 1]."""
    from rogi import RoughnessIndex

    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError("ROGI needs at least two finite property values")
    if features is not None:
        kwargs: dict[str, Any] = {"X": np.asarray(features, dtype=float), "metric": metric}
        if np.ptp(kwargs["X"], axis=0).max(initial=0.0) == 0.0:  # every point at one place: one cluster from t = 0
            kwargs = {"X": np.zeros((len(values), len(values))), "metric": "precomputed"}
    elif fingerprints is not None:
        kwargs = {"fps": list(fingerprints)}
    elif distances is not None:
        kwargs = {"X": np.asarray(distances, dtype=float), "metric": "precomputed"}
    else:
        raise ValueError("give features, fingerprints or distances")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        index = RoughnessIndex(Y=values, verbose=False, **kwargs)
        score = float(index.compute_index(min_dt=min_dt))
    return Roughness(score, np.asarray(index.distance_thresholds, dtype=float),
                     np.asarray(index.property_moments, dtype=float), len(values))
