"""CGCNN on the sparse adjacency_list vs the dense adjacency_matrix: speed and memory.

The same model (molplat-cgcnn, default settings), the same structures and the same
batches are trained for a few epochs once per representation. Each configuration
runs in a fresh subprocess so that its peak resident memory (``ru_maxrss``) is its
own; torch allocations are invisible to tracemalloc but not to the RSS.

    .venv/bin/python benchmarks/cgcnn_list_vs_matrix.py            # ~3-5 minutes, 2 threads

Datasets: small MOFs from molplat-coremof's dev set (CoRE MOF 2019-ASR) and QM9
molecules from molplat-qm9's seeded random draw. Targets are synthetic (a fixed random linear function of composition):
only cost is measured here, not accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

FORMS = ("adjacency_list", "adjacency_matrix")


# --------------------------------------------------------------------------- data
def _coremof_structures(max_atoms: int, count: int):
    """The first ``count`` MOFs of molplat-coremof's dev set with at most ``max_atoms`` atoms."""
    from molplat_coremof.coremof import CoREMOF

    dataset = CoREMOF(subset="dev")
    return [s for s in dataset.structures() if len(s) <= max_atoms][:count]


def _qm9_structures(count: int):
    """``count`` molecules of molplat-qm9's seeded random draw."""
    from molplat_qm9.dataset import QM9

    return QM9(size=count).structures()


def _with_targets(structures, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=120)
    for s in structures:
        s.targets = {"y": float(weights[s.numbers].mean())}
    return structures


def build_datasets(args) -> dict:
    return {
        "mofs": (_with_targets(_coremof_structures(args.max_atoms, args.n_mofs)), args.mof_batch_size,
                 "molplat-coremof dev set (CoRE MOF 2019-ASR)"),
        "molecules": (_with_targets(_qm9_structures(args.n_molecules)), args.mol_batch_size,
                      "molplat-qm9 random draw"),
    }


# ------------------------------------------------------------------------- worker
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(data_path: str, form: str, epochs: int, threads: int, cutoff: float) -> dict:
    import torch

    from molplat.representations.adjacency_list import AdjacencyList
    from molplat.representations.adjacency_matrix import AdjacencyMatrix
    from molplat_cgcnn.model import CGCNN

    torch.set_num_threads(threads)
    with open(data_path, "rb") as f:
        structures, batch_size = pickle.load(f)
    rep = AdjacencyList(cutoff=cutoff) if form == "adjacency_list" else AdjacencyMatrix(cutoff=cutoff)
    t0 = time.perf_counter()
    features = [rep.featurize(s) for s in structures]
    order = np.random.default_rng(0).permutation(len(structures))
    batches, targets = [], []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = rep.collate([features[k] for k in idx])  # float64, cast once as molplat's collator does
        batches.append(type(batch)({k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
                                    for k, v in batch.items()}))
        targets.append(torch.tensor([[structures[k].targets["y"]] for k in idx], dtype=torch.float32))
    prepare_s = time.perf_counter() - t0
    if form == "adjacency_list":
        entries = [int(b["edge_index"].shape[1]) for b in batches]
    else:
        entries = [int(b["pair_mask"].numel()) for b in batches]

    torch.manual_seed(0)
    model = CGCNN(n_outputs=1, cutoff=cutoff)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rss_before = _rss_mb()
    epoch_times, losses = [], []
    model.train()

    def step(batch, y) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(batch)["y"], y)
        loss.backward()
        optimizer.step()
        return loss.item()

    largest = max(range(len(batches)), key=entries.__getitem__)
    step(batches[largest], targets[largest])  # untimed warm-up on the largest batch: allocator, kernels
    for _ in range(epochs):
        start = time.perf_counter()
        total = sum(step(batch, y) for batch, y in zip(batches, targets))
        epoch_times.append(time.perf_counter() - start)
        losses.append(total / len(batches))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {
        "form": form,
        "structures": len(structures),
        "batches": len(batches),
        "prepare_s": prepare_s,
        "epoch_s": float(np.median(epoch_times)),
        "epoch_s_min": float(np.min(epoch_times)),
        "epoch_s_all": epoch_times,
        "peak_rss_mb": peak_mb,
        "rss_before_train_mb": rss_before,
        "train_increment_mb": peak_mb - rss_before,
        "mean_entries_per_batch": float(np.mean(entries)),
        "final_loss": losses[-1],
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-mofs", type=int, default=16)
    parser.add_argument("--max-atoms", type=int, default=100, help="largest MOF kept (atoms per cell)")
    parser.add_argument("--mof-batch-size", type=int, default=4)
    parser.add_argument("--mol-batch-size", type=int, default=32)
    parser.add_argument("--n-molecules", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cutoff", type=float, default=6.0)
    parser.add_argument("--worker", nargs=2, metavar=("DATA", "FORM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.epochs, args.threads, args.cutoff)))
        return

    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, CGCNN defaults "
          f"(atom_features 64, 3 convs, 40 Gaussians, hidden 128), cutoff {args.cutoff} Å, "
          f"{args.epochs} timed epochs after 1 warm-up step; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (structures, batch_size, source) in build_datasets(args).items():
            sizes = [len(s) for s in structures]
            print(f"{name}: {len(structures)} structures from {source}, {min(sizes)}-{max(sizes)} atoms "
                  f"(mean {np.mean(sizes):.0f}), batch size {batch_size}", flush=True)
            data_path = os.path.join(tmp, f"{name}.pkl")
            with open(data_path, "wb") as f:
                pickle.dump((structures, batch_size), f)
            for form in FORMS:
                cmd = [sys.executable, __file__, "--worker", data_path, form, "--epochs", str(args.epochs),
                       "--threads", str(args.threads), "--cutoff", str(args.cutoff)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"  {form}: FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
                    rows.append({"dataset": name, "form": form, "failed": True})
                    continue
                result = json.loads(proc.stdout.strip().splitlines()[-1]) | {"dataset": name}
                print(f"  {form}: {result['epoch_s']:.2f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MB",
                      flush=True)
                rows.append(result)

    header = (f"{'dataset':<10} {'representation':<17} {'s/epoch':>8} {'ratio':>6} {'peak RSS MB':>12} "
              f"{'train +MB':>10} {'entries/batch':>14} {'featurize s':>12}")
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        if row.get("failed"):
            print(f"{row['dataset']:<10} {row['form']:<17} {'failed':>8}")
            continue
        base = next((r for r in rows if r["dataset"] == row["dataset"] and r["form"] == "adjacency_list"
                     and not r.get("failed")), None)
        ratio = row["epoch_s"] / base["epoch_s"] if base else float("nan")
        print(f"{row['dataset']:<10} {row['form']:<17} {row['epoch_s']:>8.2f} {ratio:>5.1f}x "
              f"{row['peak_rss_mb']:>12.0f} {row['train_increment_mb']:>10.0f} "
              f"{row['mean_entries_per_batch']:>14.0f} {row['prepare_s']:>12.2f}")
    print(f"load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("\ns/epoch: median over timed epochs; peak RSS: ru_maxrss of the configuration's own subprocess "
          "(includes Python+torch, ~ the 'rss before training' baseline); train +MB: peak minus RSS just "
          "before training; entries/batch: edges (list) or G*Nmax*Nmax*S padded pair slots (matrix).")


if __name__ == "__main__":
    main()
