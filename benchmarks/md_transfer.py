"""Park et al.'s transferability study with molplat: a model trained on ethanol runs MD on n-propanol and
iso-propanol, and its bond-length distributions are compared with GFN2-xTB's own MD.

    .venv/bin/python benchmarks/md_transfer.py [--out benchmarks/.md-transfer] [--train-frames 1000]

1. GFN2-xTB reference MD (molplat-md17's generator: Langevin at 500 K, 0.5 fs, friction 0.01/fs):
   `python -m molplat_md17 generate MOLECULE` for ethanol, n-propanol and iso-propanol, twice each
   with different seeds (the second trajectory measures how far two xTB runs of this length differ:
   the noise floor of the distances).
2. SchNet learns ethanol's energies and forces (md17 dataset, `task = "energy_forces"`).
3. molplat-ase's `nvt_langevin` runs the trained model from xTB's first frame of each molecule with
   the same thermostat and length, `reference_file` = the xTB trajectory; the 1-Wasserstein
   distance between the bond-length distributions (per bond type, Å) is the measure.

Prints one table and writes OUT/transfer.json and the PNGs under OUT/md-MOLECULE/.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MOLECULES = ("ethanol", "n-propanol", "iso-propanol")


def xtb_trajectory(molecule: str, out: Path, frames: int, seed: int) -> Path:
    """An MD17-layout file from molplat-md17's generator, converted to extxyz (energies and forces kept)."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    npz = out / f"xtb-{molecule}-seed{seed}.npz"
    if not npz.exists():
        subprocess.run([sys.executable, "-m", "molplat_md17", "generate", molecule, "--frames", str(frames),
                        "--seed", str(seed), "--out", str(npz), "--no-progress"], check=True)
    data = np.load(npz, allow_pickle=False)
    path = npz.with_suffix(".extxyz")
    images = []
    for positions, energy, forces in zip(data["R"], data["E"].reshape(-1), data["F"]):
        atoms = Atoms(numbers=data["z"], positions=positions)
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=forces)
        images.append(atoms)
    ase.io.write(path, images, format="extxyz")
    return path


def train_ethanol(out: Path, frames: int, epochs: int, minutes: float) -> tuple[object, Path]:
    import molplat

    raw = {
        "dataset": {"name": "md17", "molecule": "ethanol", "frames": frames, "target": "energy",
                    "split": [0.8, 0.1, 0.1], "progress": False, "cache_dir": str(out / "cache")},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "hidden_channels": 32, "num_filters": 32, "num_interactions": 3,
                  "num_gaussians": 25, "cutoff": 4.0, "readout": "sum"},
        "trainer": {"name": "cpu", "task": "energy_forces", "forces_weight": 10.0, "batch_size": 16,
                    "max_epochs": epochs, "max_time": minutes, "lr": 2e-3, "patience": 20, "seed": 0, "num_threads": 2,
                    "progress_bar": False},
        "output": {"dir": str(out / "runs"), "name": "ethanol"},
    }
    pipeline = molplat.load_pipeline(raw)
    summary = pipeline.run(echo=lambda message: None)
    return pipeline, Path(summary["run_dir"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".md-transfer")
    parser.add_argument("--train-frames", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget ([trainer] max_time)")
    parser.add_argument("--reference-frames", type=int, default=300, help="xTB frames (every 10 steps of 0.5 fs)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    references = {m: [xtb_trajectory(m, args.out, args.reference_frames, seed) for seed in (0, 1)]
                  for m in MOLECULES}
    generated = time.perf_counter()
    pipeline, run_dir = train_ethanol(args.out, args.train_frames, args.epochs, args.minutes)
    summary = json.loads((run_dir / "summary.json").read_text())
    trained = time.perf_counter()

    from molplat.plugins import get_plugin_manager
    from molplat.predict import TrainedModel
    from molplat.results import RunContext

    from molplat_ase.analysis import distribution_distances, geometry_samples, topology
    from molplat_ase.structures import read_frames

    model = TrainedModel.from_run(run_dir, pipeline=pipeline)
    spec = get_plugin_manager().get("simulator", "nvt_langevin")
    steps = args.reference_frames * 10
    rows, results = [], {}
    for molecule in MOLECULES:
        first, second = references[molecule]
        start = args.out / f"start-{molecule}.extxyz"
        import ase.io

        ase.io.write(start, read_frames(first, "reference")[0], format="extxyz")
        simulator = spec.build(structures_file=str(start), reference_file=str(first), steps=steps, timestep=0.5,
                               temperature=500.0, friction=0.01, interval=10, seed=0, progress=False)
        context = RunContext(pipeline, args.out / f"md-{molecule}", model, {}, {})
        try:
            result = simulator.run(context)
            metrics, failure = result.metrics, ""
        except Exception as exc:  # a model far from its data may blow up: that is a result too
            metrics, failure = {}, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        # the noise floor: a second xTB trajectory (another seed) against the first
        xtb_a, xtb_b = read_frames(first, "reference"), read_frames(second, "reference")
        bonds_a, _ = geometry_samples(xtb_a, topology(xtb_a[0]))
        bonds_b, _ = geometry_samples(xtb_b, topology(xtb_b[0]))
        floor = distribution_distances(bonds_b, bonds_a)
        results[molecule] = {"metrics": metrics, "failure": failure, "xtb_vs_xtb": floor}
        for bond in sorted(floor):
            key = f"bond_wasserstein_A[{bond}]"
            rows.append((molecule, bond, metrics.get(key, float("nan")), floor[bond],
                         metrics.get(f"bond_mean_A[{bond}]", float("nan")), float(np.mean(bonds_a[bond]))))
        results[molecule]["angle_wasserstein_deg"] = metrics.get("angle_wasserstein_deg")
    finished = time.perf_counter()

    test = summary.get("test", summary.get("metrics", {}))
    print(f"\nEthanol model: SchNet 32x3, {args.train_frames} xTB frames, {summary['training']['epochs']} epochs "
          f"({args.minutes:g} min budget); "
          f"test metrics {json.dumps(test)[:300]}")
    print(f"xTB reference: {args.reference_frames} frames x 10 steps of 0.5 fs at 500 K (Langevin 0.01/fs); model MD: "
          f"the same, from xTB's first frame. Times: xTB {generated - started:.0f} s, training "
          f"{trained - generated:.0f} s, model MD {finished - trained:.0f} s. Load {os.getloadavg()[0]:.1f}.\n")
    print("| molecule | bond | W1 model MD vs xTB (Å) | W1 xTB vs xTB, other seed (Å) | mean model (Å) | mean xTB (Å) |")
    print("|---|---|---|---|---|---|")
    for molecule, bond, w_model, w_floor, mean_model, mean_xtb in rows:
        print(f"| {molecule} | {bond} | {w_model:.4f} | {w_floor:.4f} | {mean_model:.4f} | {mean_xtb:.4f} |")
    for molecule in MOLECULES:
        angle = results[molecule]["angle_wasserstein_deg"]
        note = results[molecule]["failure"] or (f"mean angle W1 {angle:.2f} degrees" if angle is not None else "")
        print(f"{molecule}: {note}")
    (args.out / "transfer.json").write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
