"""The umap explainer on a real trained toy run: files, splits, colours, and a reproducible map."""
from __future__ import annotations

import csv

import numpy as np
import pytest

import molplat
from molplat.results import Explanation, run_stage_component
from molplat_sdk.context import context_copy
from molplat_umap.explainer import UMAPExplainer


def run_umap(context, folder, **settings):
    copy = context_copy(context, folder)
    result = run_stage_component(UMAPExplainer(**{"n_neighbors": 5, **settings}), "explainer", "umap", copy)
    rows = list(csv.DictReader((copy.run_dir / "explain/umap/umap.csv").open()))
    return result, rows, copy


def test_the_map_has_every_split_coloured_by_the_target(toy_run_context, tmp_path):
    result, rows, copy = run_umap(toy_run_context, tmp_path / "run")
    assert isinstance(result, Explanation)
    assert result.files == ["explain/umap/umap.csv", "explain/umap/umap.png"]
    sizes = {name: len(toy_run_context.splits[name]) for name in ("train", "val", "test")}
    assert result.metrics == {f"{name}_structures": float(n) for name, n in sizes.items()}
    assert [r["split"] for r in rows] == [name for name in ("train", "val", "test") for _ in range(sizes[name])]
    expected = {s.id: s.targets["energy"] for name in sizes for s in toy_run_context.splits[name]}
    assert {r["id"]: float(r["energy"]) for r in rows} == pytest.approx(expected)
    assert np.isfinite([[float(r["umap_1"]), float(r["umap_2"])] for r in rows]).all()
    assert (copy.run_dir / "explain/umap/umap.png").read_bytes().startswith(b"\x89PNG")


def test_the_same_seed_gives_the_same_map_and_another_seed_another(toy_run_context, tmp_path):
    def coordinates(folder, seed):
        _, rows, _ = run_umap(toy_run_context, tmp_path / folder, seed=seed)
        return np.array([[float(r["umap_1"]), float(r["umap_2"])] for r in rows])

    first, again, other = coordinates("a", 7), coordinates("b", 7), coordinates("c", 8)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_close_embeddings_stay_close_on_the_map():
    from molplat_umap.explainer import umap_coordinates

    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (30, 8)), rng.normal(5, 0.1, (30, 8))])
    xy = umap_coordinates(blobs, n_neighbors=10, min_dist=0.1, metric="euclidean", seed=0)
    within = max(np.ptp(xy[:30], axis=0).max(), np.ptp(xy[30:], axis=0).max())
    between = np.linalg.norm(xy[:30].mean(axis=0) - xy[30:].mean(axis=0))
    assert between > 2 * within


def test_an_unknown_target_and_an_empty_run_are_one_clear_error(toy_run_context, tmp_path):
    copy = context_copy(toy_run_context, tmp_path / "run")
    with pytest.raises(molplat.RunError, match=r"target 'gap' is not one the run predicts; use one of \['energy'\]"):
        UMAPExplainer(target="gap").run(copy)
    copy.splits = {}
    with pytest.raises(molplat.RunError, match="no train, val or test structures to map"):
        UMAPExplainer().run(copy)
