"""The ADIOS store holds exactly what the core's store holds, reads rank shards alone, and trains a pipeline."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import molplat
from molplat.cli import main
from molplat.data import make_sample
from molplat.data.store import SampleStoreBackend, shard_bounds
from molplat.errors import ValidationError
from molplat.pipeline.prepare import build_dataset
from molplat_adios.store import INDEX, AdiosBackend, _Part
from molplat_sdk.checks.store import sample_difference
from molplat_sdk.damage import flip_a_byte, truncate

PIPELINE = {
    "dataset": {"name": "qm9", "size": 120, "split": [0.5, 0.25, 0.25], "target": ["gap", "u0"]},
    "representation": {"name": "adjacency_list", "cutoff": 3.5},
    "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "cutoff": 3.5},
    "trainer": {"max_epochs": 2, "batch_size": 16, "progress_bar": False},
    "output": {"plots": False},
}


@pytest.fixture(scope="module")
def dev_samples(qm9_cache: Path) -> list:
    """The QM9 dev set (about 1,000 molecules) as adjacency_list samples with the gap and U0."""
    spec = {**PIPELINE, "dataset": {"name": "qm9", "subset": "dev", "cache_dir": str(qm9_cache),
                                    "target": ["gap", "u0"]}}
    pipeline = molplat.load_pipeline(spec)
    dataset = build_dataset(pipeline)
    heads = pipeline.heads(dataset.targets, dataset.default_target)
    representation = pipeline.components["representation"].build()
    return [make_sample(dataset[i], representation, heads) for i in range(len(dataset))]


@pytest.fixture(scope="module")
def stores(dev_samples, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("stores")
    core = SampleStoreBackend().build(root / "core", dev_samples, "k")
    adios = AdiosBackend(part_size=300).build(root / "adios", iter(dev_samples), "k", workers=2)
    return {"core": core, "adios": adios, "root": root}


def test_the_dev_set_reads_back_as_the_core_store_gives_it(stores, dev_samples):
    core, adios = stores["core"], AdiosBackend().open(stores["root"] / "adios", "k")
    assert adios is not None and len(adios) == len(core) == len(dev_samples) > 900
    assert [p["name"] for p in adios.info["parts"]] == [f"part-{k:05d}.bp" for k in range(4)]
    for i in range(len(core)):
        assert sample_difference(core[i], adios[i]) is None, i
    assert np.array_equal(adios.labelled, core.labelled) and adios.elements == core.elements == [1, 6, 7, 8, 9]
    assert adios.without_forces == core.without_forces == (len(core), core[0].id)


def test_the_file_holds_hydragnn_style_global_arrays(stores, dev_samples):
    from adios2 import FileReader

    with FileReader(str(stores["root"] / "adios" / "part-00001.bp")) as reader:
        names = set(reader.available_variables())
        counts = reader.read("features/numbers/variable_count")
        offsets = reader.read("features/numbers/variable_offset")
        numbers = reader.read("features/numbers")
        edges = reader.read("features/edge_index/variable_shape")
    assert {"features/positions", "features/edge_index", "labels/y", "id", "labelled"} <= names
    assert len(counts) == 300 and offsets[0] == 0 and np.array_equal(offsets[1:], np.cumsum(counts)[:-1])
    assert numbers.dtype == np.int8 and len(numbers) == counts.sum()  # atomic numbers fit int8
    molecule = dev_samples[300 + 7]
    assert np.array_equal(numbers[offsets[7]: offsets[7] + counts[7]], molecule.features["numbers"])
    assert tuple(edges[7]) == molecule.features["edge_index"].shape


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_the_shards_of_the_ranks_partition_the_set_and_read_only_their_graphs(stores, dev_samples, world,
                                                                                monkeypatch):
    store = AdiosBackend().open(stores["root"] / "adios", "k")
    selections: list[tuple[str, int]] = []
    values = _Part.values

    def recording(self, name, start, count):
        selections.append((name, int(count)))
        return values(self, name, start, count)

    monkeypatch.setattr(_Part, "values", recording)
    seen = []
    for rank in range(world):
        selections.clear()
        shard = store.shard(rank, world)
        start, stop = shard_bounds(len(store), rank, world)
        atoms = sum(len(dev_samples[i].features["numbers"]) for i in range(start, stop))
        assert sum(count for name, count in selections if name == "features/numbers") == atoms
        for i in range(len(shard)):
            assert sample_difference(dev_samples[start + i], shard[i]) is None
        seen += [shard[i].id for i in range(len(shard))]
    assert seen == [s.id for s in dev_samples]


def run(tmp_path: Path, name: str, **data) -> dict:
    raw = {**PIPELINE, "output": {**PIPELINE["output"], "dir": str(tmp_path / "runs"), "name": name}, "data": data}
    return molplat.load_pipeline(raw).run(echo=lambda message: None)


def test_a_pipeline_trains_from_the_adios_store_as_from_the_core_store(tmp_path):
    core = run(tmp_path, "core", store=str(tmp_path / "store"))
    adios = run(tmp_path, "adios", store=str(tmp_path / "store"), store_format="adios", num_workers=2)
    again = run(tmp_path, "again", store=str(tmp_path / "store"), store_format="adios")
    assert adios["tasks"] == core["tasks"] == again["tasks"]  # the same samples in the same order
    assert adios["training"]["best_val_loss"] == core["training"]["best_val_loss"]
    data = json.loads((Path(adios["run_dir"]) / "data.json").read_text())
    folder = Path(data["store"])
    info = json.loads((folder / INDEX).read_text())
    assert info["backend"] == "adios" and info["count"] == 120 and (folder / "part-00000.bp").is_dir()
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == sorted(
        [folder.name, Path(json.loads((Path(core["run_dir"]) / "data.json").read_text())["store"]).name])


def test_preprocess_writes_the_format_it_is_told(tmp_path, capsys, qm9_cache):
    path = tmp_path / "p.toml"
    path.write_text(f'[dataset]\nname = "qm9"\nsize = 60\ntarget = "gap"\ncache_dir = "{qm9_cache}"\n'
                    '[representation]\nname = "adjacency_list"\ncutoff = 3.0\n[model]\nname = "schnet"\ncutoff = 3.0\n'
                    '[trainer]\nprogress_bar = false\n[data]\nstore = "store"\n')
    assert main(["preprocess", str(path), "--format", "adios"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "(60 structures, 60 with every target of gap)" in out
    (folder,) = (tmp_path / "store").iterdir()
    assert json.loads((folder / INDEX).read_text())["backend"] == "adios"
    assert main(["preprocess", str(path), "--format", "adios"]) == 0
    assert "up to date:" in capsys.readouterr().out


def small(tmp_path: Path, dev_samples: list, **options) -> Path:
    AdiosBackend(part_size=10).build(tmp_path / "s", iter(dev_samples[:25]), "k", **options)
    return tmp_path / "s"


@pytest.mark.parametrize("damage", [truncate, flip_a_byte], ids=["truncated", "flipped-byte"])
@pytest.mark.parametrize("file", ["data.0", "md.0", "md.idx"])
def test_a_damaged_part_is_noticed_and_rebuilt(tmp_path, dev_samples, capsys, damage, file):
    folder = small(tmp_path, dev_samples)
    damage(folder / "part-00001.bp" / file)
    assert AdiosBackend().open(folder, "k") is None
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"notice: ADIOS store {folder} cannot be used (part-00001.bp/{file} ") and "rebuilding" in line
    small(tmp_path, dev_samples)
    assert sample_difference(dev_samples[13], AdiosBackend().open(folder, "k")[13]) is None


@pytest.mark.parametrize("problem", ["no index", "bad index", "other key", "missing part"])
def test_an_unfinished_or_foreign_store_is_not_opened(tmp_path, dev_samples, capsys, problem):
    folder = small(tmp_path, dev_samples)
    if problem == "no index":
        (folder / INDEX).unlink()
    elif problem == "bad index":
        (folder / INDEX).write_text("{not json")
    elif problem == "missing part":
        import shutil

        shutil.rmtree(folder / "part-00002.bp")
    assert AdiosBackend().open(folder, "other" if problem == "other key" else "k") is None
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_build_that_fails_leaves_nothing_behind(tmp_path, dev_samples):
    def failing():
        yield from dev_samples[:15]
        raise ValueError("featurisation failed")

    with pytest.raises(ValueError, match="featurisation failed"):
        AdiosBackend(part_size=4).build(tmp_path / "s", failing(), "k", workers=2)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "s.partial-999").mkdir()  # a killed build's leftovers go with the next build
    small(tmp_path, dev_samples)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_samples_with_other_fields_are_refused(tmp_path, dev_samples):
    odd = dev_samples[1].__class__(dev_samples[1].id, {"numbers": dev_samples[1].features["numbers"]},
                                   dev_samples[1].y)
    with pytest.raises(ValueError, match="featurize must return the same fields"):
        AdiosBackend().build(tmp_path / "s", [dev_samples[0], odd], "k")


@pytest.mark.parametrize("value, message", [
    ("adio", "[data] store_format: unknown store_backend 'adio'; did you mean 'adios'?"),
    (3, "[data] store_format"),
])
def test_a_bad_store_format_is_one_line(value, message):
    with pytest.raises(ValidationError) as caught:
        molplat.load_pipeline({**PIPELINE, "data": {"store": "store", "store_format": value}})
    (problem,) = caught.value.problems
    assert problem.startswith(message)


# --------------------------------------------------------------------------- reading parts whole
def shuffled(n: int) -> list[int]:
    return np.random.default_rng(0).permutation(n).tolist()


@pytest.mark.parametrize("cache_mb", [0, 1, 1024])
def test_parts_read_whole_or_per_graph_give_the_same_samples(stores, dev_samples, cache_mb):
    store = AdiosBackend(cache_mb=cache_mb).open(stores["root"] / "adios", "k")
    for i in shuffled(len(store)):
        assert sample_difference(dev_samples[i], store[i]) is None, i
    whole = [number for number, part in store._parts.items() if part.whole is not None]
    assert store.held_bytes <= cache_mb * 2**20
    if cache_mb == 0:
        assert whole == []
    elif cache_mb == 1024:
        assert sorted(whole) == [0, 1, 2, 3]
    else:  # 1 MB holds some of the four parts; the others are read a graph at a time
        assert 0 < len(whole) < 4


def count_reads(monkeypatch) -> list[tuple[str, bool]]:
    """(variable, whether a selection was given) for every read of an ADIOS file by name."""
    import adios2

    reads: list[tuple[str, bool]] = []

    class Recording(adios2.FileReader):
        def read(self, name, *args, **kwargs):
            if isinstance(name, str):
                reads.append((name, bool(args or kwargs)))
            return super().read(name, *args, **kwargs)

    monkeypatch.setattr(adios2, "FileReader", Recording)
    return reads


def test_a_part_held_whole_is_read_once_per_field(stores, monkeypatch):
    store = AdiosBackend(cache_mb=1024).open(stores["root"] / "adios", "k")
    reads = count_reads(monkeypatch)
    for i in range(300):  # every graph of part 0
        store[i]
    fields = [name for name in store.layout]
    values = [name for name, _ in reads if name in fields]
    assert sorted(values) == sorted(name for name in fields if name in store._parts[0].present)
    assert not any(selected for name, selected in reads if name in fields)  # whole arrays, no selections
    store = AdiosBackend(cache_mb=0).open(stores["root"] / "adios", "k")
    reads.clear()
    for i in range(300):
        store[i]
    assert sum(1 for name, _ in reads if name == "features/positions") == 300  # one selection per graph


def test_a_sample_never_aliases_the_part_held_in_memory(stores, dev_samples):
    store = AdiosBackend().open(stores["root"] / "adios", "k")
    first = store[5]
    first.features["positions"][:] = 0.0
    first.y[:] = -1.0
    assert sample_difference(dev_samples[5], store[5]) is None


def test_dataloader_workers_hold_their_own_parts(stores, dev_samples):
    import torch

    store = AdiosBackend(cache_mb=1).open(stores["root"] / "adios", "k")
    store[0]  # the parent holds a part; the workers start with none
    loader = torch.utils.data.DataLoader(store, batch_size=50, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0), collate_fn=list)
    got = {sample.id: sample for batch in loader for sample in batch}
    assert len(got) == len(dev_samples)
    for expected in dev_samples:
        assert sample_difference(expected, got[expected.id]) is None
