"""Generate an MD17-style trajectory here: RDKit 3D structure, then Langevin dynamics on GFN2-xTB.

MD17 ran ab initio molecular dynamics at 500 K with PBE+vdW-TS DFT; DFT is out of reach on a
laptop's CPU in seconds, so the dev set stands in GFN2-xTB (Bannwarth, Ehlert and Grimme 2019)
from tblite for it: the same kind of data (thermal frames of one molecule with their energies and
forces), at a cheaper level of theory. The steps:

1. RDKit builds the molecule from SMILES with hydrogens, embeds it in 3D with ETKDG (fixed
   seed) and relaxes it with MMFF94;
2. ASE's Langevin integrator (temperature, timestep, friction, seeded random forces) runs
   ``equilibration`` steps, then records one frame every ``interval`` steps, with the
   energy and forces tblite's calculator returns for it (eV and eV/Å through ASE).

Same settings and library versions on the same machine give the same frames; the dataset
caches them keyed by every setting and both library versions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from molplat.errors import MolplatError, ValidationError
from molplat_md17.layout import Trajectory

#: the molecules of MD17 and of Park et al.'s transferability set, by name -> SMILES
MOLECULES: dict[str, str] = {
    # Park et al.'s set (and MD17's ethanol, uracil, naphthalene)
    "ethanol": "CCO",
    "uracil": "O=C1C=CNC(=O)N1",
    "naphthalene": "c1ccc2ccccc2c1",
    "n-propanol": "CCCO",
    "iso-propanol": "CC(C)O",
    "pyrimidine": "c1cncnc1",
    # the rest of MD17 and rMD17
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "benzene": "c1ccccc1",
    "malonaldehyde": "O=CC=CO",
    "salicylic-acid": "O=C(O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "azobenzene": "c1ccc(cc1)/N=N/c1ccccc1",
}
METHOD = "GFN2-xTB"
THEORY = "GFN2-xTB (tblite), standing in for MD17's PBE+vdW-TS DFT"
#: bump when the generation procedure changes, so older caches are not reused
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class MDSettings:
    """How a trajectory is generated; every field is part of the cache key."""

    temperature: float = 500.0  # K, as MD17
    frames: int = 300
    interval: int = 10  # MD steps between recorded frames
    timestep: float = 0.5  # fs, as MD17
    friction: float = 0.01  # 1/fs, Langevin friction
    equilibration: int = 200  # MD steps before the first frame
    seed: int = 0


def smiles_of(molecule: str | None, smiles: str | None) -> tuple[str, str]:
    """(label, SMILES) of a named molecule, or of a SMILES given directly (which wins)."""
    if smiles:
        return "smiles", smiles
    if molecule not in MOLECULES:
        raise ValidationError(f"[dataset] molecule: {molecule!r} is not a known molecule ({', '.join(MOLECULES)}); "
                              "name one of those, or give any molecule as smiles = \"...\"")
    return molecule, MOLECULES[molecule]


def _import_rdkit():
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import AllChem
    except ImportError:
        raise MolplatError("generating an MD17-style set needs RDKit, which is not installed; install it with: "
                           "pip install rdkit") from None
    RDLogger.DisableLog("rdApp.*")  # its warnings go to stderr; failures are reported below
    return Chem, AllChem


def _xtb_calculator(charge: int, multiplicity: int, accuracy: float = 1.0):
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise MolplatError("generating an MD17-style set needs tblite (GFN2-xTB), which is not installed; install it "
                           "with: pip install tblite") from None
    return TBLite(method=METHOD, charge=charge, multiplicity=multiplicity, accuracy=accuracy, verbosity=0)


def xtb_calculator(charge: int = 0, multiplicity: int = 1, accuracy: float = 1.0):
    """The GFN2-xTB calculator the generator labels frames with (tblite's default accuracy, 1.0); tests
    check its forces by finite differences of energies converged tighter (a smaller accuracy)."""
    return _xtb_calculator(charge, multiplicity, accuracy)


def embed(smiles: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(atomic numbers, positions in Å, total charge, spin multiplicity) of an MMFF-relaxed 3D structure."""
    Chem, AllChem = _import_rdkit()
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValidationError(f"[dataset] smiles: RDKit cannot read {smiles!r} as SMILES; check the string "
                              "(e.g. ethanol is 'CCO')")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) % 2**31
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True  # ETKDG's fallback for awkward ring systems
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise MolplatError(f"RDKit could not embed {smiles!r} in 3D (ETKDG, seed {seed}); try another seed")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    else:  # elements MMFF94 lacks: UFF instead
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    numbers = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()], dtype=np.int64)
    positions = np.array(mol.GetConformer().GetPositions(), dtype=np.float64)
    charge = int(Chem.GetFormalCharge(mol))
    unpaired = sum(atom.GetNumRadicalElectrons() for atom in mol.GetAtoms())
    return numbers, positions, charge, unpaired + 1


def one_thread():
    """A context in which every loaded OpenMP runtime (tblite's) runs one thread.

    tblite parallelises its loops with OpenMP; on molecules of tens of atoms the threads cost more
    than they save, and threads spinning while they wait made ethanol's dynamics 30 times slower
    on a busy 2-core machine (6 instead of 170 steps per second). Enter it after tblite is loaded.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the frames (read from metadata, nothing imported)."""
    versions = {}
    for name in ("tblite", "rdkit", "ase"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def cache_key(label: str, smiles: str, settings: MDSettings) -> str:
    """A digest of everything that decides the frames."""
    described = {"generator": GENERATOR_VERSION, "label": label, "smiles": smiles, "method": METHOD,
                 **dataclasses.asdict(settings), **library_versions()}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def run_md(label: str, smiles: str, settings: MDSettings, progress: bool = True,
           echo: Callable[[str], None] | None = None) -> Trajectory:
    """Langevin dynamics on GFN2-xTB from an RDKit structure; frames with their energies and forces."""
    from ase import Atoms, units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md import velocitydistribution as velocities
    from tqdm.auto import tqdm

    numbers, positions, charge, multiplicity = embed(smiles, settings.seed)
    atoms = Atoms(numbers=numbers, positions=positions)
    atoms.calc = _xtb_calculator(charge, multiplicity)
    atoms.set_constraint(FixCom())  # no drift of the whole molecule
    rng = np.random.default_rng(settings.seed)
    # thermalize_momenta (ASE >= 3.29) is MaxwellBoltzmannDistribution renamed; the same draws from rng
    thermalize = getattr(velocities, "thermalize_momenta", None) or velocities.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=settings.temperature, rng=rng)
    velocities.Stationary(atoms)
    velocities.ZeroRotation(atoms)
    dynamics = Langevin(atoms, timestep=settings.timestep * units.fs, temperature_K=settings.temperature,
                        friction=settings.friction / units.fs, fixcm=False, rng=rng)

    frames = settings.frames
    R = np.empty((frames, len(numbers), 3))
    E = np.empty(frames)
    F = np.empty((frames, len(numbers), 3))
    started = time.perf_counter()
    try:
        with one_thread():
            if settings.equilibration:
                dynamics.run(settings.equilibration)
            bar = tqdm(total=frames, desc=f"GFN2-xTB dynamics of {label} at {settings.temperature:g} K",
                       unit="frame", disable=not progress, leave=False)
            with bar:
                for k in range(frames):
                    dynamics.run(settings.interval)
                    R[k] = atoms.get_positions()
                    E[k] = atoms.get_potential_energy()
                    F[k] = atoms.get_forces(apply_constraint=False)  # the calculator's own, not FixCom's
                    bar.update()
    except MolplatError:
        raise
    except Exception as exc:  # tblite raises when the SCF fails (atoms too close after a blow-up)
        raise MolplatError(f"GFN2-xTB dynamics of {label} ({smiles}) failed: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}; lower "
                           "temperature or timestep") from None
    if not (np.isfinite(R).all() and np.isfinite(E).all() and np.isfinite(F).all()):
        raise MolplatError(f"GFN2-xTB dynamics of {label} gave non-finite values; lower temperature or timestep")
    if echo is not None:
        echo(f"md17: generated {frames} GFN2-xTB frames of {label} ({smiles}) at {settings.temperature:g} K in "
             f"{time.perf_counter() - started:.1f} s")
    name = label if label != "smiles" else smiles
    return Trajectory(numbers, R, E, F, name, THEORY, "generated")


def md17_arrays(trajectory: Trajectory) -> dict[str, np.ndarray]:
    """The trajectory in the MD17 .npz layout, with its units said by sGDML's e_unit/r_unit keys."""
    return {
        "type": np.array("d"),
        "name": np.array(trajectory.name),
        "theory": np.array(trajectory.theory),
        "z": trajectory.numbers.astype(np.int64),
        "R": trajectory.positions,
        "E": trajectory.energies.reshape(-1, 1),  # [frames, 1], as MD17
        "F": trajectory.forces,
        "r_unit": np.array("Ang"),
        "e_unit": np.array("eV"),
    }
