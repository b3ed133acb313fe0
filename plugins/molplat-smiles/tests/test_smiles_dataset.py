"""Reading the published layouts, featurisation, units, the QM9 dev set and bad input."""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import MolplatError, ValidationError
from molplat_smiles.dataset import MolecularStructure, SmilesCSV, structure_from_smiles
from molplat_smiles.reading import HARTREE_EV, KCAL_PER_MOL_EV
from molplat_smiles.representation import MolecularGraph

# PCQM4Mv2's raw/data.csv.gz: idx,smiles,homolumogap (eV); the test rows' gap is empty.
PCQM_ROWS = [
    ("0", "O=C1[N]c2ccncc2[CH]C(=O)N1", "3.0476751256"),
    ("1", "COc1cc(OC)ccc1/C=C/N(C(=O)C)C", "4.4111089974"),
    ("2", "C=CCN(C(=O)C)/C=C/c1ccccc1", "4.6392186004"),
    ("3", "C1CC(", "5.1"),  # invalid SMILES: line 5
    ("4", "c1ccccc1O", "6.2"),
    ("5", "CCO", ""),  # a test row: no gap
    ("6", "CC(=O)O", ""),
]


def write_pcqm(folder: Path, rows=PCQM_ROWS) -> Path:
    path = folder / "pcqm4m-v2" / "raw" / "data.csv.gz"
    path.parent.mkdir(parents=True)
    text = "idx,smiles,homolumogap\n" + "".join(",".join(r) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_pcqm4mv2_layout_gzip_invalid_and_unlabelled_rows(tmp_path: Path, caplog) -> None:
    path = write_pcqm(tmp_path)
    with caplog.at_level(logging.WARNING):
        data = SmilesCSV(path=str(path), cache_dir=str(tmp_path / "cache"))
    assert len(data) == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "left out 1 of 7 rows" in warnings[0] and "line 5 'C1CC('" in warnings[0]
    assert data.ids == ["0", "1", "2", "4", "5", "6"]
    first = data[0]
    assert isinstance(first, MolecularStructure)
    assert first.targets == {"gap": pytest.approx(3.0476751256)}  # eV already
    assert data.targets["gap"].units == "eV"
    assert data[4].targets == {} and data[5].targets == {}  # test rows: unlabelled, left out of training
    assert np.isnan(data.values("gap")[4])
    # cached: a second build reads the cache and gives the same molecules
    again = SmilesCSV(path=str(path), cache_dir=str(tmp_path / "cache"))
    assert np.array_equal(again[2].numbers, data[2].numbers)


def test_aisd_layout_plain_csv_and_unit_conversion(tmp_path: Path) -> None:
    # AISD HOMO-LUMO: a smiles column and a gap column; the header is a setting (unconfirmed here)
    path = tmp_path / "aisd.csv"
    path.write_text("smiles,homo_lumo_gap\nCCO,0.25\nc1ccccc1,0.2\n")
    data = SmilesCSV(path=str(path), units="hartree", cache_dir=str(tmp_path / "c"))
    assert data[0].targets["gap"] == pytest.approx(0.25 * 27.211386245988)
    assert HARTREE_EV == pytest.approx(27.211386, abs=1e-6)
    kcal = SmilesCSV(path=str(path), units="kcal/mol", target_columns=["homo_lumo_gap"], cache_dir=str(tmp_path / "c"))
    assert kcal[1].targets["gap"] == pytest.approx(0.2 * 0.0433641)
    assert KCAL_PER_MOL_EV == pytest.approx(4.184 / 96.485332, rel=1e-5)


def test_other_target_columns_keep_their_names(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("name,SMILES,homo,lumo\na,CCO,-7.1,1.2\nb,CCN,-6.5,1.5\n")
    data = SmilesCSV(path=str(path), smiles_column="SMILES", target_columns=["homo", "lumo"],
                     cache_dir=str(tmp_path / "c"))
    assert data[1].targets == {"homo": -6.5, "lumo": 1.5}
    assert set(data.targets) == {"homo", "lumo"} and data.targets["homo"].units == "eV"


def test_graph_mode_features_of_ethanol_and_benzene() -> None:
    ethanol = structure_from_smiles("CCO")
    assert ethanol.numbers.tolist() == [6, 6, 8]  # heavy atoms; hydrogens are counts
    f = MolecularGraph().featurize(ethanol)
    assert f["edge_index"].shape == (2, 4)  # two bonds, both directions
    assert {tuple(p) for p in f["edge_index"].T.tolist()} == {(0, 1), (1, 0), (1, 2), (2, 1)}
    atoms = f["atom_features"]
    assert atoms[:, 0].tolist() == [6, 6, 8]  # element
    assert atoms[:, 1].tolist() == [1, 2, 1]  # heavy-atom degree
    assert atoms[:, 5].tolist() == [3, 2, 1]  # hydrogens
    assert atoms[:, 3].tolist() == [4, 4, 4]  # sp3
    assert (f["bond_features"][:, 0] == 1).all()  # single bonds
    benzene = MolecularGraph().featurize(structure_from_smiles("c1ccccc1"))
    assert (benzene["bond_features"] == [4, 1, 1]).all()  # aromatic, conjugated, in a ring
    assert (benzene["atom_features"][:, 4] == 1).all() and (benzene["atom_features"][:, 6] == 1).all()


def test_3d_mode_is_a_relaxed_seeded_conformer() -> None:
    ethanol = structure_from_smiles("CCO", mode="3d", seed=3)
    assert sorted(ethanol.numbers.tolist()) == [1] * 6 + [6, 6, 8]
    d = np.linalg.norm(ethanol.positions[:, None] - ethanol.positions[None], axis=-1)
    assert d[0, 1] == pytest.approx(1.51, abs=0.03)  # C-C, Å (MMFF94)
    assert d[1, 2] == pytest.approx(1.42, abs=0.03)  # C-O
    again = structure_from_smiles("CCO", mode="3d", seed=3)
    assert np.allclose(again.positions, ethanol.positions)
    f = MolecularGraph().featurize(ethanol)
    assert f["edge_index"].shape == (2, 16)  # 8 bonds with the hydrogens


def test_qm9_dev_draw_is_seeded_and_in_ev(smiles_cache: Path) -> None:
    data = SmilesCSV(size=300, cache_dir=str(smiles_cache))
    assert len(data) >= 295  # a few QM9 SMILES may not parse
    gaps = data.values("gap")
    assert 1.0 < gaps.min() and gaps.max() < 20.0 and 5.0 < gaps.mean() < 8.5  # QM9 gaps, eV
    assert all(s.startswith("dsgdb9nsd_") for s in data.ids[:5])
    assert SmilesCSV(size=300, cache_dir=str(smiles_cache)).ids == data.ids


# -- bad input: one clear error each ---------------------------------------------------------------
@pytest.mark.parametrize("content, match", [
    (b"\xff\xfesmiles,gap\n", "not UTF-8"),
    (b"", "empty"),
    (b"idx,smi,homolumogap\n0,C,1.0\n", "no column 'smiles'"),
    (b"idx,smiles,energy\n0,C,1.0\n", "none of the gap columns"),
    (b"idx,smiles,homolumogap\n0,C,1.0\n1,CC,abc\n", "'abc' on line 3"),
    (b"idx,smiles,homolumogap\n0,C,nan\n", "'nan' on line 2"),
    (b"idx,smiles,homolumogap\n0,C1CC(,1.0\n1,xyz,2.0\n", "RDKit reads none"),
])
def test_bad_csv_is_one_clear_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError, match=match):
        SmilesCSV(path=str(path), cache_dir=str(tmp_path / "c"))


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        SmilesCSV(path=str(tmp_path / "absent.csv.gz"), cache_dir=str(tmp_path / "c"))
    path = write_pcqm(tmp_path)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValidationError, match=r"data.csv.gz: the gzip stream is damaged or truncated"):
        SmilesCSV(path=str(path), cache_dir=str(tmp_path / "c"))


def test_missing_target_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("smiles,gap\nC,1\n")
    with pytest.raises(ValidationError, match="no column 'homo'"):
        SmilesCSV(path=str(path), target_columns=["homo"], cache_dir=str(tmp_path / "c"))


def test_errors_are_molplat_errors() -> None:
    assert issubclass(ValidationError, MolplatError)


def test_a_cage_etkdg_cannot_embed_loads_in_graph_mode_and_is_left_out_in_3d(tmp_path: Path, caplog) -> None:
    cage = "C1C2CC3C4COC13C24"  # a QM9 molecule whose 2-D drawing overlaps atoms and ETKDG cannot embed
    s = structure_from_smiles(cage)
    d = np.linalg.norm(s.positions[:, None] - s.positions[None], axis=-1)[np.triu_indices(len(s), 1)]
    assert d.min() >= 0.5
    path = tmp_path / "c.csv"
    path.write_text(f"smiles,gap\nCCO,7.0\n{cage},8.0\n")
    with caplog.at_level(logging.WARNING):
        data = SmilesCSV(path=str(path), mode="3d", cache_dir=str(tmp_path / "c"))
    assert len(data) == 1 and "line 3" in caplog.text and "ETKDG finds no conformer" in caplog.text
