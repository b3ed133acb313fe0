"""What a trajectory says: energy drift, temperature, bond and angle distributions, radial distribution.

Each function returns plain numbers (and the arrays the plots need); nothing here draws.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import pi
from typing import Any

import numpy as np


@dataclass
class Series:
    """Energies and temperature recorded along a run: time (fs), per-frame values (eV, K, Å³)."""

    time_fs: list[float] = field(default_factory=list)
    potential: list[float] = field(default_factory=list)
    kinetic: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)
    fmax: list[float] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) for k, v in self.__dict__.items()}


def energy_drift(series: Series, n_atoms: int) -> dict[str, float]:
    """Slope of the total energy against time, per atom (eV/atom/ps), and the spread around that line.

    A least-squares line over every recorded frame: an integrator that conserves energy has
    a slope near zero; a time step too long or a rough potential shows up as a slope or a spread.
    """
    a = series.arrays()
    total = a["potential"] + a["kinetic"]
    time_ps = a["time_fs"] / 1000.0
    if len(total) < 2 or np.ptp(time_ps) == 0:
        return {"drift_eV_per_atom_per_ps": float("nan"), "fluctuation_eV_per_atom": float("nan")}
    slope, intercept = np.polyfit(time_ps, total, 1)
    residual = total - (slope * time_ps + intercept)
    return {"drift_eV_per_atom_per_ps": float(slope / n_atoms),
            "abs_drift_eV_per_atom_per_ps": float(abs(slope) / n_atoms),
            "fluctuation_eV_per_atom": float(residual.std() / n_atoms),
            "total_energy_change_eV_per_atom": float((total[-1] - total[0]) / n_atoms),
            "simulated_ps": float(time_ps[-1] - time_ps[0])}


def temperature_summary(series: Series, target: float | None = None) -> dict[str, float]:
    """Mean and spread of the temperature over the second half of the run (after equilibration)."""
    temperature = series.arrays()["temperature"]
    if len(temperature) == 0:
        return {}
    half = temperature[len(temperature) // 2:]
    out = {"temperature_mean_K": float(half.mean()), "temperature_std_K": float(half.std()),
           "temperature_start_K": float(temperature[0])}
    if target is not None:
        out["temperature_error_K"] = float(abs(half.mean() - target))
    return out


# -- bonds and angles ---------------------------------------------------------------------------
@dataclass
class Topology:
    """Bonds (i, j) and angles (i, j, k: j in the middle) of a structure, named by their elements."""

    bonds: np.ndarray
    bond_types: list[str]
    angles: np.ndarray
    angle_types: list[str]


def topology(atoms: Any, scale: float = 1.2) -> Topology:
    """Bonds where two atoms are closer than ``scale`` x the sum of their covalent radii (ASE's
    natural cutoffs), and every angle between two bonds sharing an atom."""
    from ase.neighborlist import NeighborList, natural_cutoffs

    cutoffs = natural_cutoffs(atoms, mult=scale)
    neighbours = NeighborList(cutoffs, skin=0.0, self_interaction=False, bothways=True)
    neighbours.update(atoms)
    symbols = atoms.get_chemical_symbols()
    bonds, angles = [], []
    for j in range(len(atoms)):
        partners = sorted({int(i) for i in neighbours.get_neighbors(j)[0]})
        bonds += [(j, i) for i in partners if i > j]
        angles += [(i, j, k) for a, i in enumerate(partners) for k in partners[a + 1:]]
    bond_types = ["-".join(sorted((symbols[i], symbols[j]))) for i, j in bonds]
    angle_types = ["-".join((min(symbols[i], symbols[k]), symbols[j], max(symbols[i], symbols[k])))
                   for i, j, k in angles]
    return Topology(np.asarray(bonds, dtype=int).reshape(-1, 2), bond_types,
                    np.asarray(angles, dtype=int).reshape(-1, 3), angle_types)


def geometry_samples(frames: list[Any], topo: Topology) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Bond lengths (Å) and angles (degrees) of every frame, pooled by type."""
    lengths: dict[str, list[np.ndarray]] = defaultdict(list)
    angles: dict[str, list[np.ndarray]] = defaultdict(list)
    bond_types, angle_types = np.asarray(topo.bond_types), np.asarray(topo.angle_types)
    for atoms in frames:
        periodic = bool(any(atoms.pbc))
        if len(topo.bonds):
            vectors = atoms.positions[topo.bonds[:, 1]] - atoms.positions[topo.bonds[:, 0]]
            if periodic:
                from ase.geometry import find_mic

                vectors, _ = find_mic(vectors, atoms.cell, atoms.pbc)
            distances = np.linalg.norm(vectors, axis=1)
            for name in set(topo.bond_types):
                lengths[name].append(distances[bond_types == name])
        if len(topo.angles):
            values = atoms.get_angles(topo.angles, mic=periodic)
            for name in set(topo.angle_types):
                angles[name].append(values[angle_types == name])
    return ({k: np.concatenate(v) for k, v in lengths.items()}, {k: np.concatenate(v) for k, v in angles.items()})


def distribution_distances(simulated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """The 1-Wasserstein (earth mover's) distance between simulated and reference samples, per type
    both have (in the samples' units: Å for bonds, degrees for angles)."""
    from scipy.stats import wasserstein_distance

    return {name: float(wasserstein_distance(simulated[name], reference[name]))
            for name in sorted(set(simulated) & set(reference)) if len(simulated[name]) and len(reference[name])}


# -- radial distribution ------------------------------------------------------------------------
def radial_distribution(frames: list[Any], rmax: float, bins: int) -> tuple[np.ndarray, np.ndarray, float]:
    """g(r) averaged over ``frames`` with ASE's get_rdf; returns (r, g, the rmax used).

    Periodic cells use their volume and rmax is clipped to what the cell allows. A cluster or a
    molecule has no cell: its volume is taken as the sphere around its centre that holds every
    atom (plus half the largest distance binned), so g(r) is a normalised pair-distance histogram.
    """
    from ase.geometry.rdf import get_rdf

    first = frames[0]
    if all(first.pbc):
        rmax = allowed_rmax(frames, rmax)
        g, r = get_rdf(frames, rmax, bins)
        return r, g, rmax
    centre = first.positions.mean(axis=0)
    radius = float(np.linalg.norm(first.positions - centre, axis=1).max()) + 0.5 * rmax
    volume = 4.0 / 3.0 * pi * radius ** 3
    images = []
    for atoms in frames:  # a non-periodic copy: ASE's neighbour list must not wrap a molecule's box
        copy = atoms.copy()
        copy.pbc = False
        images.append(copy)
    g, r = get_rdf(images, rmax, bins, volume=volume)
    return r, g, rmax


def allowed_rmax(frames: list[Any], rmax: float) -> float:
    """``rmax`` clipped to what every periodic cell among ``frames`` allows (a cell smaller than
    twice rmax would count a neighbour twice)."""
    from ase.geometry.rdf import get_recommended_r_max

    for atoms in frames:
        if all(atoms.pbc):
            rmax = min(rmax, 0.999 * get_recommended_r_max(atoms.cell, atoms.pbc))
    return rmax


def first_peak(r: np.ndarray, g: np.ndarray) -> float:
    return float(r[int(np.argmax(g))]) if len(g) and np.max(g) > 0 else float("nan")
