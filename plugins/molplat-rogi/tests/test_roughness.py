"""ROGI as science: the package agrees with the definition, and rough landscapes score higher."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from molplat_rogi.roughness import roughness_index


def exact_rogi(x: np.ndarray, y: np.ndarray) -> float:
    """The definition, integrated exactly: sigma(t) is a step function that changes at each merge."""
    y = (y - y.min()) / (y.max() - y.min())
    distances = pdist(x)
    distances /= np.sqrt((np.ptp(x, axis=0) ** 2).sum())  # the bounding box's diagonal, as the package scales
    tree = linkage(distances, method="complete")

    def sigma(t: float) -> float:
        labels = fcluster(tree, t=t, criterion="distance")
        means = np.array([y[labels == c].mean() for c in labels])  # each structure carries its cluster's mean
        return 2 * means.std()

    steps = np.concatenate([[0.0], np.unique(tree[:, 2]), [1.0]])
    area = sum(sigma(low) * (high - low) for low, high in zip(steps[:-1], steps[1:]) if high > low)
    return 2 * y.std() - area


def test_hand_case_matches_the_trapezoid_rule_through_the_merges():
    # four points on a line; complete linkage merges {0, 0.1} at t = 0.1, {0.6, 1} at 0.4, all at 1.0
    x = np.array([[0.0], [0.1], [0.6], [1.0]])
    y = np.array([0.0, 10.0, 0.0, 10.0])  # min-max normalised to 0, 1, 0, 1
    sigma0 = 2 * 0.5  # every structure its own cluster: 2 x std of 0, 1, 0, 1
    sigma1 = 2 * np.sqrt((2 * 0.0 + 0.25 + 0.25) / 4)  # means 0.5 (2 structures), 0, 1
    by_hand = sigma0 - (0.1 * (sigma0 + sigma1) / 2 + 0.3 * (sigma1 + 0.0) / 2)
    result = roughness_index(y, features=x)
    assert result.rogi == pytest.approx(by_hand, abs=1e-12)
    assert result.sigmas[0] == pytest.approx(sigma0) and result.sigmas[1] == pytest.approx(sigma1)
    np.testing.assert_allclose(result.thresholds[:4], [0.0, 0.1, 0.4, 1.0])
    # the definition's exact area of the step function, for this tiny case, is larger than the trapezoid's
    assert exact_rogi(x, y) == pytest.approx(sigma0 - (0.1 * sigma0 + 0.3 * sigma1), abs=1e-12)


def test_the_package_converges_to_the_exact_definition_on_many_points():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(300, 3))
    y = np.sin(4 * x[:, 0]) + x[:, 1] + 0.3 * rng.normal(size=300)
    assert roughness_index(y, features=x, min_dt=0.0).rogi == pytest.approx(exact_rogi(x, y), abs=0.01)


def test_a_smooth_linear_property_scores_lower_than_a_shuffled_one():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(250, 2))
    smooth = x[:, 0] + 2 * x[:, 1]
    shuffled = rng.permutation(smooth)
    low, high = roughness_index(smooth, features=x).rogi, roughness_index(shuffled, features=x).rogi
    assert 0 <= low < high <= 1
    assert high > 2 * low, (low, high)  # 0.13 against 0.39 with this seed


def test_a_constant_property_is_perfectly_smooth_and_a_point_cloud_at_one_place_is_rough():
    x = np.random.default_rng(2).uniform(size=(20, 2))
    assert roughness_index(np.full(20, 3.0), features=x).rogi == pytest.approx(0.0)
    y = np.arange(20.0)
    assert roughness_index(y, features=np.zeros((20, 2))).rogi == pytest.approx(2 * np.std(y / 19))


def test_too_few_or_missing_values_are_refused():
    with pytest.raises(ValueError, match="at least two finite"):
        roughness_index(np.array([1.0, np.nan]), features=np.zeros((2, 1)))
