"""An OC20-style dev set computed here with ASE's EMT potential: no download, real physics.

Each system is a small fcc(111) or fcc(100) slab of Cu, Pt, Ni, Pd or Au (2x2 surface
cell, 4 layers, 8 Å of vacuum on each side, periodic in x and y only) with its two bottom
layers fixed (ASE FixAtoms), and one adsorbate (H, C, N, O, OH or CO) placed with
``ase.build.add_adsorbate`` on a top, bridge or hollow site, a little off the site and
at a random height. BFGS relaxes it (fmax 0.05 eV/Å, at most ``max_steps`` steps, step
length at most 0.2 Å) and every frame along the way is kept, as OC20 keeps the frames of
its DFT relaxations:

* S2EF: every frame, with EMT's energy and forces (on every atom, fixed ones included:
  the forces are minus the gradient of the energy, before the constraint zeroes them);
* IS2RE: the initial structure of each system with the energy of its last frame.

Energies are referenced as OC20 references them: adsorption energy = E(adsorbate+slab)
- E(relaxed clean slab) - sum of gas-phase references of the adsorbate's atoms, with
H = E(H2)/2, O = E(H2O) - E(H2), C = E(CO) - E(O), N = E(N2)/2, each molecule relaxed with
EMT as well. (EMT's molecules are crude; what matters here is that every number comes
from one consistent potential.) Tags follow OC20: 0 fixed subsurface, 1 surface, 2 adsorbate.

Generation is deterministic for a seed (numpy's default_rng) and ASE version; the packed
frames are cached (see datasets.py), so it runs once.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from molplat_oc20.frames import TAG_ADSORBATE, TAG_SUBSURFACE, TAG_SURFACE, FrameBuilder, Frames

#: bump when the generated numbers change for the same settings (part of the cache key)
VERSION = "1"
METALS = ("Cu", "Pt", "Ni", "Pd", "Au")
FACETS = {"fcc111": ("ontop", "bridge", "fcc", "hcp"), "fcc100": ("ontop", "bridge", "hollow")}
ADSORBATES = ("H", "C", "N", "O", "OH", "CO")
#: starting height (Å) of the binding atom above the top layer
HEIGHTS = {"H": 1.2, "C": 1.4, "N": 1.4, "O": 1.4, "OH": 1.5, "CO": 1.6}
SIZE = (2, 2, 4)
FIXED_LAYERS = 2
VACUUM = 8.0
FMAX = 0.05
MAX_STEP = 0.2


@dataclass(frozen=True)
class System:
    metal: str
    facet: str
    adsorbate: str
    site: str

    @property
    def name(self) -> str:
        return f"{self.metal}{self.facet[3:]}-{self.adsorbate}-{self.site}"


def all_systems() -> list[System]:
    return [System(m, f, a, s) for m, (f, sites), a in itertools.product(METALS, FACETS.items(), ADSORBATES)
            for s in sites]


def draw(count: int, seed: int) -> list[System]:
    """``count`` distinct systems drawn with ``seed``."""
    systems = all_systems()
    if not 1 <= count <= len(systems):
        raise ValueError(f"systems must be 1..{len(systems)}, got {count}")
    order = np.random.default_rng(seed).permutation(len(systems))[:count]
    return [systems[i] for i in order]


def _adsorbate(name: str):
    from ase import Atoms

    if name == "OH":
        return Atoms("OH", positions=[(0, 0, 0), (0, 0, 0.97)])
    if name == "CO":
        return Atoms("CO", positions=[(0, 0, 0), (0, 0, 1.15)])
    return Atoms(name)


def _relax(atoms, max_steps: int, record=None) -> float:
    """Relax with BFGS, calling ``record(atoms)`` at every frame (the start included); the last energy."""
    from ase.optimize import BFGS

    optimizer = BFGS(atoms, logfile=None, maxstep=MAX_STEP)
    for step in range(max_steps + 1):
        energy = atoms.get_potential_energy()
        if record is not None:
            record(atoms)
        if step == max_steps or np.sqrt((atoms.get_forces() ** 2).sum(axis=1)).max() < FMAX:
            return energy
        optimizer.step()
    return energy  # pragma: no cover - the loop always returns


def gas_references(max_steps: int = 200) -> dict[str, float]:
    """Per-element gas-phase reference energies (eV) from EMT molecules, OC20's scheme."""
    from ase import Atoms
    from ase.calculators.emt import EMT

    def relaxed(molecule: Atoms) -> float:
        molecule.calc = EMT()
        return _relax(molecule, max_steps)

    h2 = relaxed(Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.74)]))
    h2o = relaxed(Atoms("OH2", positions=[(0, 0, 0), (0.76, 0, 0.59), (-0.76, 0, 0.59)]))
    co = relaxed(Atoms("CO", positions=[(0, 0, 0), (0, 0, 1.13)]))
    n2 = relaxed(Atoms("N2", positions=[(0, 0, 0), (0, 0, 1.10)]))
    oxygen = h2o - h2
    return {"H": h2 / 2, "O": oxygen, "C": co - oxygen, "N": n2 / 2}


def _slab(system: System):
    from ase import build
    from ase.constraints import FixAtoms

    slab = getattr(build, system.facet)(system.metal, size=SIZE, vacuum=VACUUM)
    layer = slab.get_tags().copy()  # ase.build: 1 = top layer, increasing downwards
    fixed = layer > SIZE[2] - FIXED_LAYERS
    slab.set_tags(np.where(fixed, TAG_SUBSURFACE, TAG_SURFACE))
    slab.set_constraint(FixAtoms(mask=fixed))
    return slab


def generate(count: int, seed: int, max_steps: int, progress: bool = True) -> Frames:
    """Relax ``count`` systems drawn with ``seed``; every frame, with ``total_energy``, ``reference_energy``,
    ``adsorption_energy`` and ``step``/``last`` columns (which frame of its relaxation a frame is)."""
    from ase import build
    from ase.calculators.emt import EMT
    from tqdm.auto import tqdm

    systems = draw(count, seed)
    references = gas_references()
    clean: dict[tuple[str, str], float] = {}
    builder = FrameBuilder()
    bar = tqdm(systems, desc="OC20 dev set: EMT relaxations", unit="system", disable=not progress or None,
               leave=False)
    for k, system in enumerate(bar):
        rng = np.random.default_rng([seed, k])
        if (system.metal, system.facet) not in clean:
            bare = _slab(system)
            bare.calc = EMT()
            clean[system.metal, system.facet] = _relax(bare, 200)
        atoms = _slab(system)
        adsorbate = _adsorbate(system.adsorbate)
        height = HEIGHTS[system.adsorbate] + rng.uniform(-0.2, 0.4)
        build.add_adsorbate(atoms, adsorbate, height, position=system.site)
        n_slab = len(atoms) - len(adsorbate)
        # off the ideal site, so that relaxations differ and do not sit on a saddle point
        atoms.positions[n_slab:, :2] += rng.normal(0.0, 0.15, size=2)  # adsorbate atoms are free
        fixed = np.zeros(len(atoms), dtype=bool)
        fixed[atoms.constraints[0].get_indices()] = True
        shake = rng.normal(0.0, 0.03, size=(n_slab, 3))
        positions = atoms.positions.copy()
        positions[:n_slab][~fixed[:n_slab]] += shake[~fixed[:n_slab]]
        atoms.set_positions(positions, apply_constraint=False)
        tags = atoms.get_tags()
        tags[n_slab:] = TAG_ADSORBATE
        atoms.set_tags(tags)
        atoms.calc = EMT()
        reference = clean[system.metal, system.facet] + sum(references[s] for s in adsorbate.get_chemical_symbols())
        name = f"{system.name}-{k:03d}"
        frames: list[tuple[np.ndarray, float, np.ndarray]] = []

        def record(current) -> None:
            frames.append((current.positions.copy(), float(current.get_potential_energy()),
                           current.get_forces(apply_constraint=False).copy()))

        _relax(atoms, max_steps, record)
        for step, (positions, energy, forces) in enumerate(frames):
            builder.add(f"{name}:frame{step}", name, atoms.numbers, positions, atoms.cell.array, atoms.pbc, tags,
                        fixed, forces, total_energy=energy, reference_energy=reference,
                        adsorption_energy=energy - reference, step=step, last=float(step == len(frames) - 1))
    return builder.pack()


def is2re_from(frames: Frames) -> Frames:
    """The initial frame of every system with its final frame's adsorption energy as ``relaxed_energy``."""
    first = np.flatnonzero(frames.values["step"] == 0)
    last = np.flatnonzero(frames.values["last"] == 1)
    chosen = frames.take(first)
    chosen.ids = chosen.systems.copy()
    chosen.forces = np.full_like(chosen.forces, np.nan)
    chosen.values = {"relaxed_energy": frames.values["adsorption_energy"][last]}
    return chosen
