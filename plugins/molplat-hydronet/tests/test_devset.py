"""The dev set's physics: GFN2-xTB minima with small forces, intact waters, hydrogen-bond distances,
bound clusters, and stored forces that are minus the gradient of the stored energies."""
from __future__ import annotations

import numpy as np
import pytest
from hydronet_files import TINY

from molplat.errors import ValidationError
from molplat_hydronet import devset
from molplat_hydronet.dataset import HydroNet


def _minima(dev) -> list:
    return [dev[i] for i in range(len(dev)) if dev.ids[i].endswith("-0")]


def test_layout_ids_and_units(dev) -> None:
    sizes = range(TINY["min_waters"], TINY["max_waters"] + 1)
    assert len(dev) == len(sizes) * TINY["clusters_per_size"] * TINY["frames_per_cluster"]
    assert dev.ids[0] == "dev-W3-0-0" and dev.ids[-1] == "dev-W4-3-2"
    for s in dev.structures():
        assert s.numbers.tolist() == [8, 1, 1] * (len(s) // 3)
        assert s.forces is not None and s.forces.shape == s.positions.shape
        assert s.cell is None or not s.periodic
    energy = dev.values("energy")
    per_water = energy / np.array([len(s) // 3 for s in dev.structures()])
    # GFN2-xTB total energy of a water is about -5.07 Hartree = -138 eV: eV, not Hartree or kcal/mol
    assert np.all((per_water > -140.0) & (per_water < -136.0)), per_water
    assert -140.0 < dev.monomer < -136.0


def test_minima_have_small_forces(dev) -> None:
    minima = _minima(dev)
    assert len(minima) == 4
    for s in minima:
        assert np.abs(s.forces).max() < 0.05, s.id  # BFGS stops below FMAX = 0.03 eV/Å (per-atom norm)
    frames = [dev[i] for i in range(len(dev)) if not dev.ids[i].endswith("-0")]
    assert np.mean([np.abs(s.forces).max() for s in frames]) > 0.2  # MD frames at 300 K are far from minima


def test_waters_stay_intact_and_hydrogen_bonded(dev) -> None:
    for s in dev.structures():
        waters = s.positions.reshape(-1, 3, 3)
        oh = np.linalg.norm(waters[:, 1:] - waters[:, :1], axis=2)
        assert oh.min() > 0.9 and oh.max() < 1.1, (s.id, oh)
    for s in _minima(dev):
        waters = s.positions.reshape(-1, 3, 3)
        oh = np.linalg.norm(waters[:, 1:] - waters[:, :1], axis=2)
        assert 0.95 < oh.min() and oh.max() < 1.0, (s.id, oh)  # GFN2-xTB O-H of bonded waters: 0.96-0.99 Å
        oxygens = waters[:, 0]
        distance = np.linalg.norm(oxygens[:, None] - oxygens[None], axis=2) + 10 * np.eye(len(oxygens))
        nearest = distance.min(axis=1)
        assert np.all((nearest > 2.5) & (nearest < 3.1)), (s.id, nearest)  # every water hydrogen-bonded
        hoh = np.degrees(np.arccos(np.einsum("ij,ij->i", waters[:, 1] - waters[:, 0], waters[:, 2] - waters[:, 0])
                                   / oh.prod(axis=1)))
        assert np.all((hoh > 100.0) & (hoh < 112.0)), (s.id, hoh)


def test_clusters_are_bound(dev) -> None:
    binding = np.array([s.targets["binding_energy_per_water"] for s in _minima(dev)])
    assert np.all((binding > -0.6) & (binding < -0.1)), binding  # eV per water; TTM2.1-F W3: -0.23
    s = dev[0]
    assert s.targets["binding_energy_per_water"] == pytest.approx((s.targets["energy"] - 3 * dev.monomer) / 3)


def test_forces_are_minus_the_gradient_of_the_energy(dev) -> None:
    """On the generator's calculator: the stored frame's energy and forces, and central differences."""
    from ase import Atoms

    frame = dev[1]  # an MD frame of a W3 cluster
    limit = devset.one_thread()
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions)
    atoms.calc = devset.calculator()
    # a fresh SCF (the MD reused the previous step's wavefunction) agrees to its convergence threshold
    assert atoms.get_potential_energy() == pytest.approx(frame.targets["energy"], abs=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), frame.forces, atol=3e-4)
    step = 1e-3  # Å
    for atom, axis in ((0, 0), (1, 2), (5, 1), (8, 0)):
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            moved.calc = devset.calculator()
            energies.append(moved.get_potential_energy())
        numerical = -(energies[0] - energies[1]) / (2 * step)
        assert numerical == pytest.approx(frame.forces[atom, axis], abs=2e-3), (atom, axis)
    limit.restore_original_limits()


def test_generation_is_reproducible_and_cached(dev, hydronet_cache, monkeypatch) -> None:
    with devset.one_thread():  # as generate() runs it: tblite's sums differ in the last bits across thread counts
        again = devset.generate_cluster(3, 1, 300.0, seed=0, index=0)
    np.testing.assert_allclose(again.positions[0], dev[0].positions, atol=1e-8)
    monkeypatch.setattr(devset, "generate", lambda *a, **k: pytest.fail("the dev set should come from the cache"))
    cached = HydroNet(**TINY, cache_dir=str(hydronet_cache))
    assert cached.ids == dev.ids
    np.testing.assert_array_equal(cached.values("energy"), dev.values("energy"))


def test_starting_arrangements_are_clash_free() -> None:
    for n in (3, 8, 20):
        positions = devset.starting_arrangement(n, np.random.default_rng(n))
        distance = np.linalg.norm(positions[:, None] - positions[None], axis=2)
        same = np.kron(np.eye(n), np.ones((3, 3))).astype(bool)
        assert distance[~same].min() >= devset.H_CLOSEST - 1e-9
        oxygens = positions[::3]
        nearest = (np.linalg.norm(oxygens[:, None] - oxygens[None], axis=2) + 10 * np.eye(n)).min(axis=1)
        assert np.all((nearest >= devset.OO_CLOSEST - 1e-9) & (nearest <= devset.OO_BOND + 1e-9))


def test_splits_keep_each_cluster_whole(dev) -> None:
    splits = dev.splits((0.5, 0.25, 0.25), seed=3)
    assert all(len(v) for v in splits.values())
    cluster = {name: {i.rsplit("-", 1)[0] for i in np.array(dev.ids)[idx]} for name, idx in splits.items()}
    assert not (cluster["train"] & cluster["val"]) and not (cluster["train"] & cluster["test"])
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(len(dev)))


def test_bad_settings_are_clear(tmp_path) -> None:
    with pytest.raises(ValidationError, match="max_waters: 3 is below min_waters = 5"):
        HydroNet(min_waters=5, max_waters=3, cache_dir=str(tmp_path))
    with pytest.raises(ValidationError, match="temperature"):
        HydroNet(temperature=float("nan"), cache_dir=str(tmp_path))
    with pytest.raises(ValidationError, match="clusters_per_size: 0"):
        HydroNet(clusters_per_size=0, cache_dir=str(tmp_path))
