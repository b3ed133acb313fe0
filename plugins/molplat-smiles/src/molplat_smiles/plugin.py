"""Hook implementations of molplat-smiles.

Only light modules are imported here: RDKit, pandas and torch load when a pipeline
builds the dataset, the representation or the model, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

PCQM_CITATION = (
    "W. Hu, M. Fey, H. Ren, M. Nakata, Y. Dong, J. Leskovec, OGB-LSC: A Large-Scale Challenge for Machine "
    "Learning on Graphs, NeurIPS 2021 Datasets and Benchmarks Track, arXiv:2103.09430 (PCQM4Mv2)"
)
AISD_CITATION = "A. E. Blanchard et al., AISD HOMO-LUMO dataset, Oak Ridge National Laboratory (ORNL)"
QM9_CITATION = (
    "R. Ramakrishnan, P. O. Dral, M. Rupp, O. A. von Lilienfeld, Quantum chemistry structures and "
    "properties of 134 kilo molecules, Sci. Data 1, 140022 (2014)"
)
RDKIT_CITATION = "RDKit: Open-source cheminformatics, https://www.rdkit.org"
CITATION = f"{PCQM_CITATION}; {AISD_CITATION}; dev set: {QM9_CITATION}; featurisation: {RDKIT_CITATION}"
GIN_CITATION = (
    "K. Xu, W. Hu, J. Leskovec, S. Jegelka, How Powerful are Graph Neural Networks?, ICLR 2019, "
    "arXiv:1810.00826; with edge features (GINE): W. Hu, B. Liu, J. Gomes, M. Zitnik, P. Liang, V. Pande, "
    "J. Leskovec, Strategies for Pre-training Graph Neural Networks, ICLR 2020, arXiv:1905.12265"
)

#: rows of QM9 (the dev set's source)
QM9_SIZE = 130831

DATASET_SETTINGS = (
    Setting("path", "path", None, "CSV file (plain or .gz) with one SMILES per row, e.g. PCQM4Mv2's "
            "pcqm4m-v2/raw/data.csv.gz or the AISD HOMO-LUMO CSV; left out: the QM9 SMILES of `subset`"),
    Setting("subset", "str", "qm9-dev", "without `path`: 'qm9-dev' (2,000 QM9 molecules drawn with a fixed seed) "
            "or 'qm9' (all 130,831), SMILES and HOMO-LUMO gap from the qm9pack package",
            choices=("qm9-dev", "qm9")),
    Setting("size", "int", None, "without `path`: draw this many QM9 molecules with a fixed seed (overrides "
            "subset)", minimum=1, maximum=QM9_SIZE),
    Setting("smiles_column", "str", "smiles", "header of the SMILES column (PCQM4Mv2 and AISD: 'smiles')"),
    Setting("target_columns", "list[str]", None, "headers of the target columns; default: the first of "
            "'homolumogap' (PCQM4Mv2), 'homo_lumo_gap', 'gap', 'HOMO-LUMO gap' present, offered as target 'gap'"),
    Setting("units", "str", "eV", "units of the target columns in the file, converted to eV "
            "(1 Hartree = 27.211386 eV, 1 kcal/mol = 0.0433641 eV)", choices=("eV", "hartree", "kcal/mol")),
    Setting("mode", "str", "graph", "'graph': heavy atoms and bonds from the SMILES (hydrogens as counts), "
            "positions a 2-D layout that no geometric model should use; '3d': all atoms with an ETKDG conformer "
            "relaxed with MMFF94, for geometric models", choices=("graph", "3d")),
    Setting("seed", "int", 0, "seed of the ETKDG conformers (3d mode) and of the QM9 draw", minimum=0,
            maximum=2**31 - 1),
    Setting("num_workers", "int", None, "processes featurising the SMILES (default: the CPU count, at most 8; "
            "0: in this process); sets under 1,000 molecules always run in this process", minimum=0, maximum=256),
    Setting("cache_dir", "path", None, "folder where featurised molecules are cached, created when missing "
            "(default: $MOLPLAT_CACHE or ~/.cache/molplat)", must_exist=False),
)

REPRESENTATION_SETTINGS = (
    Setting("bond_tolerance", "float", 1.2, "for structures without a SMILES (other datasets): atoms i, j are "
            "bonded when closer than this times the sum of their covalent radii", minimum=1.0, maximum=2.0),
)

MODEL_SETTINGS = (
    Setting("hidden_channels", "int", 64, "width of the atom states and of the bond embeddings", minimum=1,
            maximum=4096),
    Setting("num_layers", "int", 3, "GINE message-passing layers", minimum=1, maximum=32),
    Setting("readout", "str", "mean", "pool the atom states: mean (intensive: gaps) or sum (extensive)",
            choices=("mean", "sum")),
    Setting("dropout", "float", 0.0, "dropout before the output MLP", minimum=0.0, maximum=0.9),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="smiles_csv",
            kind="dataset",
            factory="molplat_smiles.dataset:SmilesCSV",
            summary="Molecules from a SMILES CSV (PCQM4Mv2, AISD HOMO-LUMO layouts; QM9 SMILES as the dev set), "
                    "bond graphs or ETKDG conformers by RDKit, gaps in eV; data licences: PCQM4Mv2 CC BY 4.0, QM9 CC0, "
                    "AISD that of its download page",
            settings=DATASET_SETTINGS,
            citation=CITATION,
        )
    ]


@hookimpl
def molplat_representations() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="molecular_graph",
            kind="representation",
            factory="molplat_smiles.representation:MolecularGraph",
            summary="Bond graph (not a radius graph): RDKit atom and bond features, both bond directions",
            settings=REPRESENTATION_SETTINGS,
            citation=RDKIT_CITATION,
        )
    ]


@hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="gine",
            kind="model",
            factory="molplat_smiles.model:GINE",
            summary="GIN with bond features (GINE): a 2-D graph model of atom and bond types; reads no positions",
            settings=MODEL_SETTINGS,
            accepts=("molecular_graph",),
            outputs=("property",),
            citation=GIN_CITATION,
        )
    ]
