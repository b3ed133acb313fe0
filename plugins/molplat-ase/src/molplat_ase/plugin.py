"""Registers the ASE simulators with molplat. Imports neither ASE nor torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

ASE = ("A. H. Larsen et al., The atomic simulation environment - a Python library for working with atoms, "
       "J. Phys.: Condens. Matter 29, 273002 (2017)")
VERLET = "L. Verlet, Phys. Rev. 159, 98 (1967); W. C. Swope et al., J. Chem. Phys. 76, 637 (1982) (velocity Verlet)"
BERENDSEN = "H. J. C. Berendsen et al., J. Chem. Phys. 81, 3684 (1984)"
LANGEVIN = "N. Grønbech-Jensen, O. Farago, Mol. Phys. 111, 983 (2013) (the Langevin integrator ASE uses)"
MTK = ("G. J. Martyna, M. E. Tuckerman, D. J. Tobias, M. L. Klein, Mol. Phys. 87, 1117 (1996); "
       "M. E. Tuckerman et al., J. Phys. A 39, 5629 (2006) (MTK barostat with Nose-Hoover chains)")
BFGS_FIRE = ("E. Bitzek, P. Koskinen, F. Gähler, M. Moseler, P. Gumbsch, Phys. Rev. Lett. 97, 170201 (2006) "
             "(FIRE); J. Nocedal, S. J. Wright, Numerical Optimization (BFGS); the Frechet cell filter: ASE 3.23")
ANALYSES = ("Park et al. (bond-length and bond-angle distributions of ML-driven MD against the reference); "
            "Bilbrey et al., arXiv:2211.04598 (NVT with the Berendsen thermostat)")

#: the longest simulation a setting allows; longer runs belong in a user's own ASE script
MAX_STEPS = 10_000_000
#: starting structures one simulator may take
MAX_STRUCTURES = 1000

STARTING = (
    Setting("split", "str", "test", "split whose structures start the simulations", choices=("train", "val", "test")),
    Setting("structures_file", "path", None, "ASE-readable file of starting structures (extxyz, xyz, traj, cif, "
            "POSCAR, pdb), relative to the pipeline file; replaces split"),
    Setting("max_structures", "int", 1, "simulate the first N starting structures", minimum=1,
            maximum=MAX_STRUCTURES),
    Setting("dtype", "str", "float32", "precision of the model while simulating (float64 where the calculator "
            "supports it)", choices=("float32", "float64")),
    Setting("force", "bool", False, "simulate even a model not trained on forces (its forces are then the gradient "
            "of whatever it learnt)"),
    Setting("progress", "bool", True, "show a progress bar over the steps"),
)
ANALYSIS = (
    Setting("reference", "str", "dataset", "reference frames for the bond, angle and RDF distributions: the "
            "dataset's own frames of the same composition, or none", choices=("dataset", "none")),
    Setting("reference_file", "path", None, "ASE-readable trajectory to compare with instead (extxyz, xyz, traj), "
            "relative to the pipeline file"),
    Setting("bond_scale", "float", 1.2, "two atoms are bonded within this multiple of the sum of their covalent "
            "radii (in the first frame)", minimum=0.5, maximum=2.0),
    Setting("rdf_rmax", "float", 6.0, "largest distance of the radial distribution function (Å); clipped to what a "
            "periodic cell allows", minimum=0.5, maximum=20.0, exclusive_minimum=False),
    Setting("rdf_bins", "int", 120, "bins of the radial distribution function", minimum=10, maximum=10_000),
)


def _dynamics(steps_default: int) -> tuple[Setting, ...]:
    return (
        Setting("steps", "int", steps_default, "MD steps per starting structure", minimum=1, maximum=MAX_STEPS),
        Setting("timestep", "float", 0.5, "time step (fs)", minimum=0.0, maximum=10.0, exclusive_minimum=True),
        Setting("temperature", "float", 300.0, "temperature (K): of the starting Maxwell-Boltzmann velocities, and "
                "the thermostat's target", minimum=0.0, maximum=10_000.0),
        Setting("interval", "int", 10, "write a frame (and record energies) every N steps", minimum=1,
                maximum=MAX_STEPS),
        Setting("seed", "int", 0, "seed of the starting velocities and of the Langevin noise", minimum=0,
                maximum=2**32 - 1),
    )


TAUT = Setting("taut", "float", 100.0, "thermostat time constant (fs)", minimum=0.0, maximum=1e7,
               exclusive_minimum=True)


def _spec(name: str, factory: str, summary: str, settings: tuple[Setting, ...], citation: str,
          analysis: tuple[Setting, ...] = ANALYSIS) -> ComponentSpec:
    return ComponentSpec(name=name, kind="simulator", factory=f"molplat_ase.simulators:{factory}", summary=summary,
                         settings=settings + STARTING + analysis, citation=f"{citation}; {ASE}; {ANALYSES}")


@molplat.hookimpl
def molplat_simulators() -> list[ComponentSpec]:
    return [
        _spec("nve", "NVE", "NVE molecular dynamics (velocity Verlet): energy drift per atom per ps, temperature, "
              "bond/angle/RDF distributions", _dynamics(1000), VERLET),
        _spec("nvt_berendsen", "NVTBerendsen", "NVT molecular dynamics with the Berendsen thermostat",
              _dynamics(1000) + (TAUT,), BERENDSEN),
        _spec("nvt_langevin", "NVTLangevin", "NVT molecular dynamics with a Langevin thermostat",
              _dynamics(1000) + (Setting("friction", "float", 0.01, "Langevin friction (1/fs)", minimum=0.0,
                                         maximum=10.0),), LANGEVIN),
        _spec("npt", "NPT", "NPT molecular dynamics of periodic cells (Berendsen or MTK barostat)",
              _dynamics(1000) + (
                  TAUT,
                  Setting("barostat", "str", "berendsen", "berendsen (ASE's NPTBerendsen: rescales the cell) or mtk "
                          "(ASE's isotropic MTK with Nose-Hoover chains)", choices=("berendsen", "mtk")),
                  Setting("pressure", "float", 0.0, "external pressure (GPa)", minimum=-100.0, maximum=1000.0),
                  Setting("taup", "float", 1000.0, "barostat time constant (fs)", minimum=0.0, maximum=1e7,
                          exclusive_minimum=True),
                  Setting("compressibility", "float", 0.01, "compressibility the Berendsen barostat assumes "
                          "(1/GPa; copper: 0.007, water: 0.46)", minimum=0.0, maximum=100.0, exclusive_minimum=True),
              ), f"{BERENDSEN}; {MTK}"),
        _spec("relax", "Relax", "geometry relaxation (BFGS or FIRE), fixed cell or with ASE's Frechet cell filter",
              (Setting("optimizer", "str", "bfgs", "ASE optimizer", choices=("bfgs", "fire")),
               Setting("fmax", "float", 0.05, "converged when every force is below this (eV/Å)", minimum=0.0,
                       maximum=100.0, exclusive_minimum=True),
               Setting("steps", "int", 500, "most optimizer steps per structure", minimum=1, maximum=MAX_STEPS),
               Setting("cell_filter", "bool", False, "relax the cell too (periodic structures; ASE's "
                       "FrechetCellFilter, needs the calculator's stress)"),
               Setting("pressure", "float", 0.0, "external pressure with cell_filter (GPa)", minimum=-100.0,
                       maximum=1000.0),
               Setting("interval", "int", 1, "write a frame every N steps", minimum=1, maximum=MAX_STEPS)),
              BFGS_FIRE, analysis=()),
    ]
