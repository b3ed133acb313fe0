"""The dev set shipped in the package: n = 3 to 12 waters, real GFN2-xTB numbers, read without generating."""
from __future__ import annotations

import numpy as np
import pytest

from molplat_hydronet import devset
from molplat_hydronet.dataset import SHIPPED, HydroNet, load_shipped


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> HydroNet:
    return HydroNet(cache_dir=str(tmp_path_factory.mktemp("empty-cache")), progress=False)


def test_the_default_dev_set_is_the_shipped_file_and_generates_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(devset, "generate", lambda *a, **k: pytest.fail("the default dev set is shipped"))
    data = HydroNet(cache_dir=str(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing cached: read from the package
    assert SHIPPED.stat().st_size < 2_000_000
    packed, monomer, key = load_shipped()
    assert key["sizes"] == [3, 13] and key["clusters"] == 3 and key["frames"] == 8 and data.monomer == monomer


def test_it_holds_three_clusters_of_eight_frames_for_every_n_from_3_to_12(shipped) -> None:
    waters = [len(s) // 3 for s in shipped.structures()]
    assert sorted(set(waters)) == list(range(3, 13))
    assert all(waters.count(n) == 3 * 8 for n in range(3, 13))
    for s in shipped.structures():
        assert s.numbers.tolist() == [8, 1, 1] * (len(s) // 3) and s.forces.shape == s.positions.shape


def test_its_minima_are_relaxed_intact_and_bound(shipped) -> None:
    minima = [shipped[i] for i in range(len(shipped)) if shipped.ids[i].endswith("-0")]
    assert len(minima) == 30
    largest = np.array([np.linalg.norm(s.forces, axis=1).max() for s in minima])
    # BFGS stops at FMAX = 0.03 eV/Å or after 400 steps: 26 minima converged; two W10 and two W12
    # clusters stopped at the cap, with forces of 0.04-0.14 eV/Å left (README)
    assert (largest <= devset.FMAX + 1e-9).sum() >= 26 and largest.max() < 0.15, largest
    for s in minima:
        waters = s.positions.reshape(-1, 3, 3)
        oh = np.linalg.norm(waters[:, 1:] - waters[:, :1], axis=2)
        assert 0.95 < oh.min() and oh.max() < 1.02, s.id  # a strong donor of a larger cluster: up to 1.003 Å
        oxygens = waters[:, 0]
        nearest = (np.linalg.norm(oxygens[:, None] - oxygens[None], axis=2) + 10 * np.eye(len(oxygens))).min(axis=1)
        assert np.all((nearest > 2.5) & (nearest < 3.1)), s.id
        assert -0.6 < s.targets["binding_energy_per_water"] < -0.1, s.id


def test_a_w12_frame_is_gfn2_xtb(shipped) -> None:
    """The stored energy and forces of an MD frame of a 12-water cluster, recomputed with tblite."""
    from ase import Atoms

    frame = next(shipped[i] for i in range(len(shipped)) if shipped.ids[i].startswith("dev-W12-")
                 and shipped.ids[i].endswith("-5"))
    limit = devset.one_thread()
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions)
    atoms.calc = devset.calculator()
    assert atoms.get_potential_energy() == pytest.approx(frame.targets["energy"], abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), frame.forces, atol=1e-3)
    limit.restore_original_limits()


def test_other_settings_are_generated_not_shipped(dev) -> None:
    assert len(dev) == 2 * 2 * 3  # the tests' tiny set (W3, W4) came from the generator, not the file
