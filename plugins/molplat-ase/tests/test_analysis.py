"""The analyses on structures whose answers are known, without a model."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from molplat_ase import analysis


def test_ethanol_has_its_eight_bonds_and_thirteen_angles():
    topo = analysis.topology(molecule("CH3CH2OH"))
    assert sorted(topo.bond_types) == sorted(["C-C", "C-O", "H-O"] + ["C-H"] * 5)
    # angles: C(methyl) 3 H + 1 C -> 6; C(methylene) 2 H + C + O -> 6; O: C + H -> 1
    assert len(topo.angles) == 13 and topo.angle_types.count("C-O-H") == 1


def test_bond_lengths_and_angles_of_water():
    water = molecule("H2O")
    topo = analysis.topology(water)
    bonds, angles = analysis.geometry_samples([water, water], topo)
    assert bonds["H-O"] == pytest.approx([water.get_distance(0, 1)] * 4)
    assert angles["H-O-H"] == pytest.approx([water.get_angle(1, 0, 2)] * 2)


def test_periodic_bonds_use_the_nearest_image():
    copper = bulk("Cu", "fcc", a=3.61)  # one atom: every bond is to an image of itself
    cell = copper.repeat((2, 2, 2))
    bonds, _ = analysis.geometry_samples([cell], analysis.topology(cell))
    assert bonds["Cu-Cu"] == pytest.approx(3.61 / np.sqrt(2))


def test_the_wasserstein_distance_is_zero_for_equal_samples_and_the_shift_for_shifted_ones():
    rng = np.random.default_rng(0)
    sample = rng.normal(1.5, 0.05, size=2000)
    distances = analysis.distribution_distances({"C-C": sample, "C-H": sample}, {"C-C": sample, "C-H": sample + 0.1,
                                                                                  "O-H": sample})
    assert distances == {"C-C": pytest.approx(0.0), "C-H": pytest.approx(0.1)}


def test_the_rdf_of_fcc_copper_peaks_at_the_nearest_neighbour_distance():
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    r, g, rmax = analysis.radial_distribution([cell], 6.0, 200)
    assert analysis.first_peak(r, g) == pytest.approx(3.61 / np.sqrt(2), abs=0.03)
    assert rmax <= 3 * 3.61 / 2
    assert (g[r < 2.3] == 0).all()  # no pair closer than the nearest neighbours
    second = (r > 3.4) & (r < 3.8)  # the second shell, at the lattice constant
    assert g[second].max() > 1.0


def test_a_molecule_rdf_counts_its_pairs():
    water = molecule("H2O")
    r, g, _ = analysis.radial_distribution([water], 3.0, 300)
    assert analysis.first_peak(r, g) == pytest.approx(water.get_distance(0, 1), abs=0.02)
    assert (g[r > 2.0] == 0).all()


def test_the_drift_is_the_slope_per_atom():
    series = analysis.Series(time_fs=[0.0, 500.0, 1000.0], potential=[-10.0, -10.0, -10.0], kinetic=[1.0, 1.5, 2.0])
    drift = analysis.energy_drift(series, n_atoms=4)
    assert drift["drift_eV_per_atom_per_ps"] == pytest.approx(0.25)
    assert drift["fluctuation_eV_per_atom"] == pytest.approx(0.0, abs=1e-12)
    assert drift["simulated_ps"] == pytest.approx(1.0)
