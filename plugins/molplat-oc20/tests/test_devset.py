"""The EMT dev set: OC20's layout and referencing, forces that are minus the energy gradient,
relaxations that go downhill, seeded and cached generation, and slabs periodic in x and y only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molplat_oc20 import devset
from molplat_oc20.datasets import OC20S2EF, _cache_file


def emt_atoms(structure):
    from ase.calculators.emt import EMT

    atoms = structure.to_atoms()
    atoms.calc = EMT()
    return atoms


def test_layout_like_oc20(s2ef, is2re) -> None:
    assert len(is2re) == 8 and len(s2ef) > len(is2re)
    for i in range(len(s2ef)):
        s, tags, fixed = s2ef[i], s2ef.tags(i), s2ef.fixed(i)
        assert s.pbc.tolist() == [True, True, False] and s.cell[2, 2] > 20.0  # 8 Å of vacuum each side
        assert (fixed == (tags == 0)).all() and fixed.sum() == 8  # two fixed bottom layers of a 2x2 cell
        assert set(s.numbers[tags == 2]) <= {1, 6, 7, 8} and (tags == 2).sum() in (1, 2)
        assert set(s.numbers[tags < 2]) < {28, 29, 46, 78, 79} and len(set(s.numbers[tags < 2])) == 1
        assert np.isfinite(s.forces).all() and np.isfinite(list(s.targets.values())).all()
    # IS2RE: the first frame of each relaxation, labelled with its last frame's adsorption energy
    systems = [s2ef.system(i) for i in range(len(s2ef))]
    for k in range(len(is2re)):
        frames = [i for i, name in enumerate(systems) if name == is2re.ids[k]]
        assert frames == list(range(frames[0], frames[-1] + 1))
        np.testing.assert_array_equal(is2re[k].positions, s2ef[frames[0]].positions)
        assert is2re[k].targets["relaxed_energy"] == s2ef[frames[-1]].targets["adsorption_energy"]
        assert is2re[k].forces is None


def test_energies_are_emt_and_referenced_like_oc20(s2ef) -> None:
    from ase.calculators.emt import EMT

    references = devset.gas_references()
    for i in (0, len(s2ef) // 2, len(s2ef) - 1):
        s = s2ef[i]
        atoms = emt_atoms(s)
        assert atoms.get_potential_energy() == pytest.approx(s.targets["total_energy"], abs=1e-9)
        # reference = relaxed clean slab + gas references of the adsorbate's atoms (H2/2, H2O - H2, CO - O, N2/2)
        slab = devset._slab(devset.System(*_system_of(s2ef.system(i))))
        slab.calc = EMT()
        clean = devset._relax(slab, 200)
        gas = sum(references[atoms[j].symbol] for j in np.flatnonzero(s2ef.tags(i) == 2))
        assert s.targets["total_energy"] - s.targets["adsorption_energy"] == pytest.approx(clean + gas, abs=1e-9)
    assert references["H"] == pytest.approx(devset._relax(_molecule("H2", 0.74), 200) / 2)


def _molecule(formula: str, bond: float):
    from ase import Atoms
    from ase.calculators.emt import EMT

    atoms = Atoms(formula, positions=[(0, 0, 0), (0, 0, bond)])
    atoms.calc = EMT()
    return atoms


def _system_of(name: str) -> tuple[str, str, str, str]:
    """'Cu111-O-fcc-003' -> ('Cu', 'fcc111', 'O', 'fcc')."""
    slab, adsorbate, site, _ = name.split("-")
    return slab[:2], "fcc" + slab[2:], adsorbate, site


def test_forces_are_minus_the_energy_gradient_on_every_atom(s2ef) -> None:
    """Fixed atoms included: the stored forces are EMT's, before FixAtoms zeroes them."""
    s = s2ef[3]
    atoms = emt_atoms(s)
    h = 1e-4
    for atom in (0, int(np.flatnonzero(s2ef.tags(3) == 1)[0]), len(s) - 1):  # fixed, surface, adsorbate
        for axis in range(3):
            energies = []
            for step in (h, -h):
                moved = atoms.copy()
                moved.calc = atoms.calc.__class__()
                moved.positions[atom, axis] += step
                energies.append(moved.get_potential_energy())
            numeric = -(energies[0] - energies[1]) / (2 * h)
            assert s.forces[atom, axis] == pytest.approx(numeric, abs=1e-5)
    assert np.abs(s.forces[s2ef.fixed(3)]).max() > 1e-3  # not zeroed by the constraint


def test_relaxations_go_downhill(s2ef) -> None:
    systems = np.array([s2ef.system(i) for i in range(len(s2ef))])
    first, last = [], []
    for name in np.unique(systems):
        frames = np.flatnonzero(systems == name)
        energies = [s2ef[i].targets["total_energy"] for i in frames]
        assert energies[-1] < energies[0]
        free = ~s2ef.fixed(frames[-1])
        first.append(np.linalg.norm(s2ef[frames[0]].forces[free], axis=1).max())
        last.append(np.linalg.norm(s2ef[frames[-1]].forces[free], axis=1).max())
        # fixed atoms never move
        np.testing.assert_array_equal(s2ef[frames[-1]].positions[~free], s2ef[frames[0]].positions[~free])
    assert np.median(last) < 0.5 * np.median(first)


def test_seeded_reproducible_and_cached(tmp_path: Path, oc20_cache: Path, small: dict, capsys) -> None:
    a = devset.generate(3, seed=5, max_steps=4, progress=False)
    b = devset.generate(3, seed=5, max_steps=4, progress=False)
    c = devset.generate(3, seed=6, max_steps=4, progress=False)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.ids.tolist() == b.ids.tolist() and a.ids.tolist() != c.ids.tolist()
    # a damaged cache is noticed, deleted and rebuilt
    import ase

    key = f"dev|{devset.VERSION}|{small['systems']}|{small['seed']}|{small['max_steps']}|ase {ase.__version__}"
    cached = _cache_file(str(oc20_cache), "dev", key)
    assert cached.is_file()
    folder = tmp_path / "cache"
    (folder / "oc20").mkdir(parents=True)
    copy = folder / "oc20" / cached.name
    copy.write_bytes(cached.read_bytes()[:-100])
    ds = OC20S2EF(cache_dir=str(folder), **small)
    assert "is damaged" in capsys.readouterr().err
    assert copy.read_bytes() != cached.read_bytes()[:-100] and len(ds) == len(OC20S2EF(cache_dir=str(oc20_cache),
                                                                                         **small))
    assert not list((folder / "oc20").glob(".*.tmp"))


def test_mixed_pbc_neighbours_match_ase(s2ef) -> None:
    """adjacency_list on slabs periodic in x and y only: the same pairs as ASE's neighbour list,
    and no image across the vacuum even when the vacuum is thinner than the cutoff."""
    from ase.neighborlist import neighbor_list

    from molplat.representations import AdjacencyList
    from molplat.structure import Structure

    rep = AdjacencyList(cutoff=5.0)
    s = s2ef[0]
    thin = Structure(s.numbers, s.positions - [0, 0, s.positions[:, 2].min() - 0.5],
                     cell=np.r_[s.cell[:2], [[0, 0, np.ptp(s.positions[:, 2]) + 2.0]]], pbc=s.pbc, id="thin")
    for structure in (s, thin):
        features = rep.featurize(structure)
        ours = {(int(i), int(j), *map(int, o)) for (i, j), o in zip(features["edge_index"].T,
                                                                     features["cell_offsets"])}
        i, j, shifts = neighbor_list("ijS", structure.to_atoms(), 5.0)
        assert ours == {(int(a), int(b), *map(int, o)) for a, b, o in zip(i, j, shifts)}
        assert all(o[4] == 0 for o in ours)  # no image along z
    periodic = Structure(thin.numbers, thin.positions, thin.cell, pbc=True, id="3d")
    assert any(o[2] != 0 for o in rep.featurize(periodic)["cell_offsets"])  # the thin cell would couple along z
