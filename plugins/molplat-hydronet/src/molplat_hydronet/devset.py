"""The offline dev set: water clusters relaxed and sampled with GFN2-xTB (tblite).

HydroNet's clusters are minima and low-lying networks of a water potential. Its data cannot
be downloaded at run time, so the dev set imitates them from first principles: for each size n,
n rigid waters are grown into a compact hydrogen-bonding cluster (each new oxygen 2.8 Å from a
random earlier one, no closer than 2.55 Å to any other, random orientations that keep hydrogens
1.6 Å from other molecules), relaxed with BFGS on GFN2-xTB to a force below ``FMAX``, and then
sampled by Langevin MD at the chosen temperature. A cluster contributes its minimum (frame 0,
forces near zero, like HydroNet's minima) and MD frames (forces far from zero, to learn them).

Everything follows from the settings and the seed: each cluster has its own generator seeded
with (seed, n, k), so a cluster does not change when others are added.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: gas-phase water geometry used for the starting arrangements
OH_BOND, HOH_ANGLE = 0.9572, np.radians(104.52)
#: oxygen-oxygen distance of a hydrogen bond (Å), and the closest two oxygens may start
OO_BOND, OO_CLOSEST = 2.8, 2.55
#: closest a hydrogen may start to an atom of another molecule (Å)
H_CLOSEST = 1.6
#: relaxation: stop below this largest force (eV/Å) or after RELAX_STEPS; BFGS step cap (Å)
FMAX, RELAX_STEPS, MAX_STEP = 0.03, 400, 0.2
#: MD: time step (fs), steps between frames, friction (1/fs)
TIMESTEP_FS, STEPS_PER_FRAME, FRICTION_PER_FS = 0.5, 8, 0.02
METHOD = "GFN2-xTB"


@dataclass
class Cluster:
    """The frames of one generated cluster: positions [f, atoms, 3] Å, energies [f] eV, forces [f, atoms, 3] eV/Å."""

    waters: int
    numbers: np.ndarray
    positions: np.ndarray
    energies: np.ndarray
    forces: np.ndarray


def one_thread():  # noqa: ANN201 - a context manager
    """A context in which OpenMP (tblite's) and BLAS run one thread: clusters of tens of atoms gain nothing
    from more, and threads spinning while they wait slow a busy machine down many times over."""
    import tblite.ase  # noqa: F401 - load tblite's OpenMP runtime first, so that the limit reaches it
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)  # OpenMP and BLAS


def calculator():  # noqa: ANN201 - an ASE calculator; tblite imported only when generating
    """GFN2-xTB through tblite's ASE calculator (eV and eV/Å), quiet."""
    from tblite.ase import TBLite

    return TBLite(method=METHOD, verbosity=0)


def _water(rng: np.random.Generator) -> np.ndarray:
    """O, H, H of one water at the origin, randomly rotated (uniform over rotations)."""
    half = HOH_ANGLE / 2
    local = np.array([[0.0, 0.0, 0.0],
                      [OH_BOND * np.sin(half), 0.0, OH_BOND * np.cos(half)],
                      [-OH_BOND * np.sin(half), 0.0, OH_BOND * np.cos(half)]])
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return local @ rotation.T


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def starting_arrangement(waters: int, rng: np.random.Generator, tries: int = 2000) -> np.ndarray:
    """Positions [3 * waters, 3] (O H H per molecule) of a compact, clash-free cluster."""
    oxygens = [np.zeros(3)]
    centre_pull = 0.5  # prefer anchors near the centre so clusters grow compact, not as chains
    for _ in range(1, waters):
        for _ in range(tries):
            current = np.array(oxygens)
            distance = np.linalg.norm(current - current.mean(axis=0), axis=1)
            weights = np.exp(-centre_pull * distance)
            anchor = current[rng.choice(len(current), p=weights / weights.sum())]
            candidate = anchor + OO_BOND * _unit(rng)
            if np.linalg.norm(current - candidate, axis=1).min() >= OO_CLOSEST:
                oxygens.append(candidate)
                break
        else:  # pragma: no cover - 2000 tries always suffice for n <= 30
            raise RuntimeError(f"could not place {waters} waters")
    atoms: list[np.ndarray] = []
    for oxygen in oxygens:
        for _ in range(tries):
            molecule = oxygen + _water(rng)
            if not atoms:
                break
            others = np.concatenate(atoms)
            if np.linalg.norm(others[None, :, :] - molecule[1:, None, :], axis=2).min() >= H_CLOSEST and \
                    np.linalg.norm(others - molecule[0], axis=1).min() >= H_CLOSEST:
                break
        atoms.append(molecule)
    positions = np.concatenate(atoms)
    return positions - positions.mean(axis=0)


def generate_cluster(waters: int, frames: int, temperature: float, seed: int, index: int) -> Cluster:
    """One cluster: its GFN2-xTB minimum, then ``frames - 1`` Langevin MD frames from it."""
    from ase import Atoms, units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.optimize import BFGS

    rng = np.random.default_rng([seed, waters, index])
    atoms = Atoms(numbers=[8, 1, 1] * waters, positions=starting_arrangement(waters, rng))
    atoms.calc = calculator()
    BFGS(atoms, maxstep=MAX_STEP, logfile=None).run(fmax=FMAX, steps=RELAX_STEPS)
    positions, energies, forces = [atoms.positions.copy()], [atoms.get_potential_energy()], [atoms.get_forces()]
    if frames > 1:
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
        ZeroRotation(atoms)
        dynamics = Langevin(atoms, timestep=TIMESTEP_FS * units.fs, temperature_K=temperature,
                            friction=FRICTION_PER_FS / units.fs, rng=rng)
        for _ in range(frames - 1):
            dynamics.run(STEPS_PER_FRAME)
            positions.append(atoms.positions.copy())
            energies.append(atoms.get_potential_energy())  # the calculator's results for these positions
            forces.append(atoms.get_forces())
    return Cluster(waters, atoms.numbers.astype(np.int16), np.array(positions), np.array(energies),
                   np.array(forces))


def monomer_energy() -> float:
    """GFN2-xTB energy (eV) of one relaxed isolated water: the zero of the binding energies."""
    from ase import Atoms
    from ase.optimize import BFGS

    atoms = Atoms(numbers=[8, 1, 1], positions=_water(np.random.default_rng(0)))
    atoms.calc = calculator()
    BFGS(atoms, maxstep=MAX_STEP, logfile=None).run(fmax=1e-3, steps=RELAX_STEPS)
    return float(atoms.get_potential_energy())


def generate(sizes: range, clusters_per_size: int, frames: int, temperature: float, seed: int,
             progress: bool = True) -> tuple[list[Cluster], float]:
    """Every cluster of the dev set, smallest first, and the monomer energy (eV)."""
    from tqdm.auto import tqdm

    jobs = [(n, k) for n in sizes for k in range(clusters_per_size)]
    clusters = []
    with one_thread(), tqdm(total=len(jobs), desc=f"{METHOD} water clusters (once, then cached)",
                            unit="cluster", disable=not progress) as bar:
        for n, k in jobs:
            bar.set_postfix(n=n)
            clusters.append(generate_cluster(n, frames, temperature, seed, k))
            bar.update()
        return clusters, monomer_energy()
