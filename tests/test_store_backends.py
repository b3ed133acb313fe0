"""Store backends: the core's store through the backend contract, `[data] store_format`, and shards."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import molplat
from molplat.cli import main
from molplat.data.store import STORE_FORMAT, SampleStoreBackend, shard_bounds, store_key
from molplat.errors import ValidationError
from molplat.plugins import get_plugin_manager
from molplat_sdk.checks import store as store_checks
from molplat_sdk.structures import tiny_structures

PIPELINE = {
    "dataset": {"name": "qm9", "size": 40, "split": [0.5, 0.25, 0.25], "target": "gap"},
    "representation": {"name": "adjacency_list", "cutoff": 3.5},
    "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "cutoff": 3.5},
    "trainer": {"max_epochs": 1, "batch_size": 16, "progress_bar": False},
    "output": {"plots": False},
}


def test_the_core_store_is_the_default_backend_and_round_trips_samples(tmp_path):
    spec = get_plugin_manager().get("store_backend", "molplat")
    assert spec.plugin == "molplat" and molplat.load_pipeline(PIPELINE).data["store_format"] == "molplat"
    backend = spec.build()
    assert isinstance(backend, SampleStoreBackend)
    samples = store_checks.store_samples(tiny_structures() * 3)
    store_checks.check_round_trip(spec, backend, samples, tmp_path / "store", workers=0)
    store_checks.check_damage_is_noticed(spec, backend, tmp_path / "store")


def test_the_default_format_keeps_the_keys_of_existing_stores():
    parts = ({"name": "qm9"}, {"name": "adjacency_list"}, {"heads": [("gap", "graph")]})
    text = json.dumps({"format": STORE_FORMAT, "dataset": parts[0], "representation": parts[1], "heads": parts[2]},
                      sort_keys=True, default=str)
    assert store_key(*parts) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert store_key(*parts, backend="adios") != store_key(*parts)


@pytest.mark.parametrize("count", [0, 1, 5, 10, 11])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 16])
def test_rank_shards_partition_the_store_in_order(count, world):
    blocks = [shard_bounds(count, rank, world) for rank in range(world)]
    assert [i for start, stop in blocks for i in range(start, stop)] == list(range(count))
    sizes = [stop - start for start, stop in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank 2 of 2"):
        shard_bounds(10, 2, 2)


def test_an_unknown_store_format_is_one_line_with_a_close_match():
    with pytest.raises(ValidationError) as caught:
        molplat.load_pipeline({**PIPELINE, "data": {"store": "store", "store_format": "molplap"}})
    (problem,) = caught.value.problems
    assert problem.startswith("[data] store_format: unknown store_backend 'molplap'") and "'molplat'" in problem


def test_preprocess_refuses_an_unknown_format(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text('[dataset]\nname = "qm9"\nsize = 40\ntarget = "gap"\n[representation]\nname = "adjacency_list"\n'
                    '[model]\nname = "schnet"\n[data]\nstore = "store"\n')
    code = main(["preprocess", str(path), "--format", "nope"])
    assert code == 2 and "error: --format: unknown store_backend 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_store_backend_shard_reads_its_block(tmp_path):
    samples = store_checks.store_samples(tiny_structures())
    store = SampleStoreBackend().build(tmp_path / "s", samples, "k")
    shard = store.shard(1, 2)
    start, stop = shard_bounds(len(samples), 1, 2)
    assert len(shard) == stop - start and [shard[i].id for i in range(len(shard))] == [s.id for s in samples[start:stop]]
    with pytest.raises(IndexError):
        shard[len(shard)]
    assert np.array_equal(shard[0].y, samples[start].y)
