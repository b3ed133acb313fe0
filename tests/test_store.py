"""Data larger than memory: the store, featurisation in workers, and index-only splits give the same run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import molplat
from molplat.data import make_sample
from molplat.data.store import STORED_TYPES, SampleStore
from molplat.pipeline.prepare import build_dataset

PIPELINE = {
    "dataset": {"name": "qm9", "size": 120, "split": [0.5, 0.25, 0.25], "target": ["gap", "u0"]},
    "representation": {"name": "adjacency_list", "cutoff": 3.5},
    "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "cutoff": 3.5},
    "trainer": {"max_epochs": 2, "batch_size": 16, "progress_bar": False},
    "output": {"plots": False},
}


def run(tmp_path: Path, name: str, **data) -> dict:
    raw = {**PIPELINE, "output": {**PIPELINE["output"], "dir": str(tmp_path / "runs"), "name": name}}
    if data:
        raw["data"] = data
    return molplat.load_pipeline(raw).run(echo=lambda message: None)


@pytest.fixture(scope="module")
def modes(tmp_path_factory) -> dict[str, dict]:
    tmp_path = tmp_path_factory.mktemp("modes")
    return {
        "memory": run(tmp_path, "memory"),
        "workers": run(tmp_path, "workers", num_workers=2),
        "on-the-fly": run(tmp_path, "fly", in_memory=False, num_workers=2),
        "store": run(tmp_path, "store", store=str(tmp_path / "store")),
        "store-again": run(tmp_path, "store2", store=str(tmp_path / "store"), num_workers=2),
        "root": {"path": tmp_path},
    }


@pytest.mark.parametrize("mode", ["workers", "on-the-fly", "store", "store-again"])
def test_every_way_of_feeding_data_trains_the_same_model(modes, mode):
    """Same samples in the same order: identical metrics, to the last digit."""
    reference, other = modes["memory"], modes[mode]
    assert other["tasks"] == reference["tasks"]
    assert other["training"]["best_val_loss"] == reference["training"]["best_val_loss"]


def test_the_store_is_built_once_and_holds_exactly_what_featurisation_gives(modes):
    root = modes["root"]["path"] / "store"
    (folder,) = [p for p in root.iterdir() if p.is_dir()]  # the second run reused it
    pipeline = molplat.load_pipeline({**PIPELINE, "data": {"store": str(root)}})
    dataset = build_dataset(pipeline)
    representation = pipeline.components["representation"].build()
    heads = pipeline.heads(dataset.targets, dataset.default_target)
    info = json.loads((folder / "store.json").read_text())
    store = SampleStore(folder, info)
    assert len(store) == len(dataset) == 120 and store.elements == sorted({1, 6, 7, 8, 9} & set(store.elements))
    for i in (0, 17, 119):
        expected, stored = make_sample(dataset[i], representation, heads), store[i]
        assert stored.id == expected.id
        assert set(stored.features) == set(expected.features)
        for key, value in expected.features.items():
            assert stored.features[key].dtype == value.dtype and np.array_equal(stored.features[key], value), key
        assert np.array_equal(stored.y, expected.y)
    # integers are kept small on disk (edge indices of molecules fit int8) and come back as int64
    row = np.fromfile(folder / "shard-00000" / "index.bin", dtype=np.int64, count=store.width)
    position = 1 + sum(1 + entry["ndim"] for name, entry in store.layout.items()
                       if list(store.layout).index(name) < list(store.layout).index("edge_index"))
    assert STORED_TYPES[int(row[position])] == np.dtype("i1") and store[0].features["edge_index"].dtype == np.int64


@pytest.mark.parametrize("damage", ["truncate", "flip", "unfinished"])
def test_a_damaged_store_is_noticed_and_rebuilt(tmp_path, capsys, damage):
    store_root = tmp_path / "store"
    first = run(tmp_path, "a", store=str(store_root))
    (folder,) = [p for p in store_root.iterdir() if p.is_dir()]
    target = folder / "shard-00000" / "records.bin"
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        target.write_bytes(bytes(data[:-8]))
    elif damage == "flip":
        data[100] ^= 0x01
        target.write_bytes(bytes(data))
    else:
        (folder / "shard-00000" / "meta.json").unlink()
    capsys.readouterr()
    second = run(tmp_path, "b", store=str(store_root))
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if line.startswith("notice: store")]
    assert len(notices) == 1 and "rebuilding it" in notices[0]
    assert second["tasks"] == first["tasks"]


def test_preprocess_builds_the_store_that_run_then_reads(tmp_path, molplat_cli):
    import tomli_w

    path = tmp_path / "p.toml"
    raw = {**PIPELINE, "data": {"store": "store"}, "output": {**PIPELINE["output"], "dir": "runs"}}
    path.write_text(tomli_w.dumps(raw))
    proc = molplat_cli("preprocess", str(path), cwd=tmp_path.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = [p for p in (tmp_path / "store").iterdir() if p.is_dir()]  # relative to the pipeline's folder
    built = (folder / "store.json").stat().st_mtime_ns
    proc = molplat_cli("run", str(path), cwd=tmp_path.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (folder / "store.json").stat().st_mtime_ns == built and "building the store" not in proc.stdout
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_energy_forces_from_a_store_whose_structures_lack_forces_is_refused(tmp_path):
    """The store path refuses what the in-memory path refuses: an energy+forces run on frames without forces."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(8):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy()}
        if k != 5:  # one frame carries its energy only
            results["forces"] = atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    raw = {"dataset": {"name": "atoms_file", "path": str(tmp_path / "cu.extxyz"), "split": [0.5, 0.25, 0.25]},
           "representation": {"name": "adjacency_list", "cutoff": 3.0},
           "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "cutoff": 3.0},
           "trainer": {"task": "energy_forces", "max_epochs": 1, "progress_bar": False},
           "data": {"store": str(tmp_path / "store")}, "output": {"dir": str(tmp_path / "runs")}}
    with pytest.raises(molplat.ValidationError, match=r"'energy_forces' needs forces, but 1 structures of dataset "
                                                      r"'atoms_file' have none \(first: 'cu.extxyz:5'\)"):
        molplat.load_pipeline(raw).run(echo=lambda message: None)
    assert not (tmp_path / "runs").exists()


def test_a_store_folder_that_cannot_be_written_is_one_line(tmp_path, molplat_cli):
    import tomli_w

    (tmp_path / "store").write_text("a file where the store folder should be")
    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps({**PIPELINE, "data": {"store": "store"},
                                   "output": {**PIPELINE["output"], "dir": "runs"}}))
    proc = molplat_cli("run", str(path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "[data] store: cannot write" in line and "choose a writable folder" in line
    assert not (tmp_path / "runs").exists()
