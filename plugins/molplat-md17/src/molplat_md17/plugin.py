"""Hook implementations of molplat-md17.

Only light modules are imported here: numpy-heavy reading, RDKit and tblite load when the
``md17`` dataset is built, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import CommandSpec, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "S. Chmiela, A. Tkatchenko, H. E. Sauceda, I. Poltavsky, K. T. Schütt, K.-R. Müller, Machine learning of "
    "accurate energy-conserving molecular force fields, Sci. Adv. 3, e1603015 (2017) [MD17]; A. S. Christensen, "
    "O. A. von Lilienfeld, On the role of gradients for machine learning of molecular energies and forces, "
    "Mach. Learn.: Sci. Technol. 1, 045018 (2020) [rMD17]; generated sets: C. Bannwarth, S. Ehlert, S. Grimme, "
    "GFN2-xTB, J. Chem. Theory Comput. 15, 1652 (2019)"
)

#: named molecules the generator knows (SMILES in molplat_md17.generate.MOLECULES; kept here so listing
#: plugins imports nothing else)
MOLECULE_NAMES = ("ethanol", "uracil", "naphthalene", "n-propanol", "iso-propanol", "pyrimidine", "aspirin",
                  "benzene", "malonaldehyde", "salicylic-acid", "toluene", "paracetamol", "azobenzene")
#: frames of the largest MD17 file (ethanol: 555,092), and a ceiling for generated ones
MAX_FRAMES = 1_000_000

SETTINGS = (
    Setting("path", "path", None, "an MD17 (.npz from sgdml.org: z, R, E, F) or rMD17 file (nuclear_charges, "
            "coords, energies, forces), relative to the pipeline file; the layout is told by its keys. Unset: "
            "generate a GFN2-xTB trajectory with the settings below"),
    Setting("molecule", "str", "ethanol", "molecule to generate when path is unset", choices=MOLECULE_NAMES),
    Setting("smiles", "str", None, "any molecule to generate, as SMILES (overrides molecule)"),
    Setting("temperature", "float", 500.0, "Langevin thermostat temperature in K (MD17: 500 K)", minimum=1.0,
            maximum=3000.0),
    Setting("frames", "int", 300, "frames to generate", minimum=1, maximum=MAX_FRAMES),
    Setting("interval", "int", 10, "MD steps between two recorded frames", minimum=1, maximum=100_000),
    Setting("timestep", "float", 0.5, "MD time step in fs (MD17: 0.5 fs)", minimum=0.0, maximum=5.0,
            exclusive_minimum=True),
    Setting("friction", "float", 0.01, "Langevin friction in 1/fs", minimum=0.0, maximum=1.0),
    Setting("equilibration", "int", 200, "MD steps run before the first recorded frame", minimum=0,
            maximum=1_000_000),
    Setting("seed", "int", 0, "seeds the 3D embedding, the initial velocities, the thermostat's noise and the "
            "size draw", minimum=0, maximum=2**32 - 1),
    Setting("size", "int", None, "use this many frames drawn at random (with seed) instead of all", minimum=1,
            maximum=MAX_FRAMES),
    Setting("progress", "bool", True, "show a progress bar while generating"),
    Setting("cache_dir", "path", None, "folder where generated trajectories are cached, created when missing "
            "(default: $MOLPLAT_CACHE or ~/.cache/molplat; the plugin uses its md17/ subfolder)", must_exist=False),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="md17",
            kind="dataset",
            factory="molplat_md17.dataset:MD17",
            summary="MD17 / rMD17 molecular dynamics frames with energies (eV) and forces (eV/Å) from a downloaded "
                    ".npz, or a GFN2-xTB trajectory at 500 K generated here (dev set: ethanol); data licence: that of the "
                    "page you download MD17/rMD17 from (nothing is shipped)",
            settings=SETTINGS,
            citation=CITATION,
        )
    ]


@hookimpl
def molplat_commands() -> list[CommandSpec]:
    return [CommandSpec("md17", "molplat_md17.cli:md17",
                        "md17 generate MOLECULE --out FILE.npz: an MD17-style GFN2-xTB trajectory at 500 K")]
