"""Training throughput: molplat's SchNet against SchNetPack 2.x's SchNet on the same QM9 molecules.

    python benchmarks/schnet_vs_schnetpack.py    # ~1 minute on 2 idle cores (+ ~3 min to build
                                                 # SchNetPack's venv the first time)

Both sides: the same 2,000 QM9 molecules (molplat-qm9's seeded random draw, size=2000), U0 in eV,
standardised; SchNet with 64 features and filters, 3 interactions, 50 Gaussians, 5 Å cosine
cutoff, a 64-32-1 shifted-softplus output MLP and sum readout; Adam, MSE loss, batch size 32,
2 torch threads, single process (num_workers=0). A training step is counted in full: loading
and collating the batch, forward, backward and the optimiser step. Each framework builds
neighbour lists the way it normally does: molplat's `adjacency_list` representation featurises
every structure once (vesin) and collates per batch; SchNetPack reads its ASE database and
runs its neighbour-list transform (MatScipyNeighborList by default) per sample per epoch.
A second row, "model only", times the same steps on batches prepared in advance. The two
frameworks alternate epoch by epoch so that both see the same background load; the range
over the rounds is reported (at least three), with the ratio of each round's pair.

The networks are the same size; one difference in the science: molplat follows the paper's
filter-generating network (shifted softplus after both dense layers), SchNetPack 2.1 leaves the
second dense layer linear, so molplat does slightly more work per pair.

SchNetPack lives in its own venv (benchmarks/.venv-schnetpack, made by
setup_schnetpack_venv.sh, which this script calls if the venv is missing) and runs as a
subprocess; molplat runs in this interpreter.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SPK_VENV = HERE / ".venv-schnetpack"


def qm9_molecules(count: int):
    """``count`` QM9 molecules drawn at random (fixed seed) by molplat-qm9, as (numbers, positions [Å], U0 [eV])."""
    from molplat_qm9.dataset import QM9

    dataset = QM9(size=count)
    return [(s.numbers, s.positions, s.targets["u0"]) for s in (dataset[i] for i in range(len(dataset)))]


def molplat_rounds(molecules, targets, args):
    """Set molplat's side up (featurise once, loader, model, warm-up); returns (info, one_round)."""
    from molplat.data import SampleCollator, make_sample
    from molplat.models import Heads
    from molplat.representations.adjacency_list import AdjacencyList
    from molplat.structure import Structure
    from molplat_schnet.model import SchNet

    torch.manual_seed(0)
    rep = AdjacencyList(cutoff=args.cutoff)
    heads = Heads.single("u0")
    t0 = time.perf_counter()
    items = [make_sample(Structure(z, r, targets={"u0": y}), rep, heads)
             for (z, r, _), y in zip(molecules, targets)]
    featurize_s = time.perf_counter() - t0
    # the core's collator: float64 batches cast to float32 once, labels kept in float64
    loader = torch.utils.data.DataLoader(items, batch_size=args.batch_size, shuffle=True, num_workers=0,
                                         collate_fn=SampleCollator(rep))
    model = SchNet(n_outputs=1, hidden_channels=64, num_filters=64, num_interactions=3, num_gaussians=50,
                   cutoff=args.cutoff, readout="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def step(batch) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(batch)["y"], batch["y"].float())
        loss.backward()
        optimizer.step()
        return loss.item()

    for k, batch in enumerate(loader):
        step(batch)
        if k + 1 >= args.warmup_batches:
            break
    batches = list(loader)

    def epoch(source) -> float:
        seen, t0 = 0, time.perf_counter()
        for batch in source:
            step(batch)
            seen += batch["num_graphs"]
        return seen / (time.perf_counter() - t0)

    def one_round() -> dict:
        full = epoch(loader)
        return {"full": full, "model_only": epoch(batches)}

    info = {"featurize_s": featurize_s, "params": sum(p.numel() for p in model.parameters())}
    return info, one_round


class SchNetPackWorker:
    """SchNetPack's side, alive in its own venv; one timed round per request."""

    def __init__(self, data_path: str, args) -> None:
        python = SPK_VENV / "bin" / "python"
        if not python.exists():
            subprocess.run(["bash", str(HERE / "setup_schnetpack_venv.sh")], check=True)
        cmd = [str(python), str(HERE / "schnetpack_side.py"), data_path, "--batch-size", str(args.batch_size),
               "--warmup-batches", str(args.warmup_batches), "--threads", str(args.threads),
               "--neighbor-list", args.spk_neighbor_list]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            sys.exit(f"schnetpack side failed (exit {self.process.returncode}); see its error above")
        return json.loads(line)

    def one_round(self) -> dict:
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds per framework, alternating (one full-step epoch + one model-only "
                             "epoch each); the range over rounds is reported")
    parser.add_argument("--warmup-batches", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--spk-neighbor-list", default="matscipy", choices=("ase", "matscipy"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    molecules = qm9_molecules(args.molecules)
    energies = np.array([e for _, _, e in molecules])
    targets = ((energies - energies.mean()) / energies.std()).astype(np.float64)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="schnet-bench-") as tmp:
        data_path = os.path.join(tmp, "molecules.npz")
        np.savez(data_path, numbers=np.concatenate([z for z, _, _ in molecules]),
                 positions=np.concatenate([r for _, r, _ in molecules]),
                 natoms=np.array([len(z) for z, _, _ in molecules]), target=targets, cutoff=args.cutoff)
        worker = SchNetPackWorker(data_path, args)
        spk = dict(worker.info, full=[], model_only=[])
        info, molplat_round = molplat_rounds(molecules, targets, args)
        mp = dict(info, full=[], model_only=[])
        # Alternate the two frameworks so that both see the same background load.
        for _ in range(args.rounds):
            for results, one_round in ((spk, worker.one_round), (mp, molplat_round)):
                for key, value in one_round().items():
                    results[key].append(value)
        worker.close()
    load_after = os.getloadavg()[0]

    natoms = np.array([len(z) for z, _, _ in molecules])
    print(f"SchNet training throughput, {len(molecules)} QM9 molecules ({natoms.mean():.1f} atoms on average), "
          f"batch {args.batch_size}, 64 features, 3 interactions, 50 Gaussians, {args.cutoff:g} Å cutoff, "
          f"{args.threads} torch threads, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(f"molplat {_version('molplat')} + molplat-schnet {_version('molplat-schnet')}: {mp['params']} parameters, "
          f"neighbour lists (vesin) built once in {mp['featurize_s']:.2f} s; "
          f"schnetpack {spk['version']}: {spk['params']} parameters, {spk['neighbor_list']} per sample")
    print(f"range over {args.rounds} alternating rounds of one epoch each; ratio: per round, molplat / schnetpack")
    print()
    from tabulate import tabulate

    rows = []
    for key, label in (("full", "full training step (data + fwd/bwd/opt)"),
                       ("model_only", "model only (batches prepared)")):
        ratios = [a / b for a, b in zip(mp[key], spk[key])]
        rows.append([label, f"{min(mp[key]):.0f}-{max(mp[key]):.0f}", f"{min(spk[key]):.0f}-{max(spk[key]):.0f}",
                     f"{min(ratios):.1f}x-{max(ratios):.1f}x"])
    print(tabulate(rows, headers=["molecules / s", "molplat", "schnetpack", "ratio"], tablefmt="github",
                   disable_numparse=True))


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"

if __name__ == "__main__":
    main()
