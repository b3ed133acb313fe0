"""A real run on the QM9 dev set with [[explain]] tables: CSV and drawings per target; bad settings exit 2."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import molplat
from molplat.errors import ValidationError

pytest.importorskip("molplat_qm9")
pytest.importorskip("molplat_schnet")

TARGETS = ["gap", "homo"]


def pipeline(cache: Path, runs: Path, explain: list[dict]) -> dict:
    return {
        "dataset": {"name": "qm9", "target": TARGETS, "cache_dir": str(cache)},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 16, "num_filters": 16,
                  "num_interactions": 2, "num_gaussians": 16, "readout": "mean"},
        "trainer": {"max_epochs": 2, "batch_size": 64, "lr": 3e-3, "progress_bar": False, "num_threads": 1},
        "output": {"dir": str(runs), "name": "explained", "plots": False},
        "explain": explain,
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    explain = [{"name": "saliency", "num_structures": 3, "num_drawings": 1},
               {"name": "integrated_gradients", "num_structures": 2, "num_drawings": 1, "n_steps": 24,
                "positions_baseline_scale": 0.5},
               {"name": "grad_cam", "num_structures": 2, "num_drawings": 1, "split": "val"}]
    loaded = molplat.load_pipeline(pipeline(tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("runs"), explain))
    return loaded.run(echo=lambda message: None)


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_explainer_writes_one_map_per_target_and_input(run: dict) -> None:
    run_dir = Path(run["run_dir"])
    expected = {"saliency": (3, {"numbers", "positions"}), "integrated_gradients": (2, {"numbers", "positions"}),
                "grad_cam": (2, {"numbers"})}
    for name, (count, inputs) in expected.items():
        result = run["explain"][name]
        rows = read(run_dir / f"explain/{name}/attributions.csv")
        structures = sorted({r["structure"] for r in rows})
        assert len(structures) == count and result["metrics"]["structures"] == count
        assert {(r["target"], r["input"]) for r in rows} == {(t, i) for t in TARGETS for i in inputs}
        for sid in structures:
            atoms = len(result["per_atom"][sid])
            for target in TARGETS:
                for kind in inputs:
                    mine = [r for r in rows if (r["structure"], r["target"], r["input"]) == (sid, target, kind)]
                    assert [int(r["atom"]) for r in mine] == list(range(atoms))
                    assert all(float(r["attribution"]) == float(r["attribution"]) for r in mine)  # no NaN
        pngs = [f for f in result["files"] if f.endswith(".png")]
        assert len(pngs) == 1
        assert (run_dir / pngs[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {r["split"] for r in read(run_dir / "explain/grad_cam/attributions.csv")} == {"val"}
    assert all(float(r["attribution"]) >= 0 for r in read(run_dir / "explain/saliency/attributions.csv"))


def test_integrated_gradients_are_complete_on_the_trained_model(run: dict) -> None:
    assert run["explain"]["integrated_gradients"]["metrics"]["completeness_relative_error_max"] < 0.02


def test_the_drawing_is_a_molecule_with_a_colour_bar(run: dict) -> None:
    import matplotlib.image

    run_dir = Path(run["run_dir"])
    png = next(f for f in run["explain"]["saliency"]["files"] if f.endswith(".png"))
    image = matplotlib.image.imread(run_dir / png)
    assert image.shape[1] > 3 * image.shape[0]  # four panels side by side: 2 targets x (numbers, positions)
    assert image[..., :3].std() > 0.1  # not blank


@pytest.mark.parametrize("entry, message", [
    ({"name": "grad_cam", "inputs": ["numbers", "positions"]}, "grad_cam attributes through the model's embedding"),
    ({"name": "saliency", "num_structures": 2, "num_drawings": 3}, "set num_drawings <= num_structures"),
    ({"name": "saliency", "inputs": []}, "the list is empty"),
    ({"name": "saliency", "inputs": ["charges"]}, "inputs: in list: 'charges' is not allowed"),
    ({"name": "integrated_gradients", "n_steps": 1}, "n_steps: 1 is below the minimum 2"),
    ({"name": "integrated_gradients", "positions_baseline_scale": -1.0}, "is below the minimum 0.0"),
    ({"name": "cam", "split": "validation"}, "split: 'validation' is not allowed"),
    ({"name": "saliency", "num_structures": 0}, "num_structures: 0 is below the minimum 1"),
])
def test_bad_settings_are_one_validation_error(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        molplat.load_pipeline(pipeline(tmp_path, tmp_path, [entry]))


def test_a_method_listed_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="saliency is listed 2 times"):
        molplat.load_pipeline(pipeline(tmp_path, tmp_path, [{"name": "saliency"}, {"name": "saliency", "split": "val"}]))


def test_molplat_validate_exits_2_naming_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "explain.toml"
    path.write_text(f"""
[dataset]
name = "qm9"
target = "gap"
cache_dir = "{tmp_path / 'cache'}"

[representation]
name = "adjacency_list"

[model]
name = "schnet"

[[explain]]
name = "grad_cam"
inputs = ["positions"]
""")
    proc = subprocess.run([sys.executable, "-m", "molplat.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[[explain]] grad_cam inputs" in proc.stderr and 'set inputs = ["numbers"]' in proc.stderr
