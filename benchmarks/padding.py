"""The cost of fixed-size padding (molplat-poptorch): step time and the share of padding slots.

1. Step time on the CPU, tiny SchNet, QM9 molecules, one training step = forward, loss,
   backward and AdamW step through the core's task. Three forms of the same batches:
   unpadded on SchNet's default path (pairs deduplicated), unpadded on its static path, and
   fixed-size padded (static path, as an IPU would run it). Batches are collated beforehand,
   so only the compute is timed. Each form is timed in three runs over all batches (after one
   warm-up run); the table gives the median and the range, per step and per real structure.
2. Padding fraction: the share of atom, edge and graph slots that are padding when a data set
   is packed at the fixed sizes molplat-poptorch chooses (a percentile of random batches'
   counts), for QM9 and for water clusters, against padding every batch to the worst case
   (batch_size x the largest structure). There is no water-cluster data set offline
   (HydroNet's is not shipped), so (H2O)n clusters are generated with ASE: n water molecules,
   randomly rotated, placed at random inside a sphere at liquid density (0.0334 molecules per
   Å^3) with O-O distances of at least 2.5 Å; n uniform in [--water-min, --water-max]
   (default 3..30, HydroNet's clusters span 3 to 30 waters). Sizes, not energies, matter here.

    .venv/bin/python benchmarks/padding.py          # about 2 minutes on 2 busy cores

The load average is printed before and after: the machine is shared.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from tabulate import tabulate

CUTOFF = 5.0
SCHNET = dict(hidden_channels=32, num_filters=32, num_interactions=3, num_gaussians=25, cutoff=CUTOFF)


def qm9_structures(count: int) -> list:
    from molplat_qm9.dataset import QM9

    return QM9(size=count).structures()


def water_clusters(count: int, smallest: int, largest: int, seed: int = 0) -> list:
    """(H2O)n at liquid density, n uniform in [smallest, largest] (see the module docstring)."""
    from ase import Atoms
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    from molplat.structure import Structure

    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    water.positions -= water.positions[0]  # oxygen at the origin
    out = []
    for k in range(count):
        n = int(rng.integers(smallest, largest + 1))
        radius = (3.0 * n / (4.0 * np.pi * 0.0334)) ** (1.0 / 3.0)
        oxygens: list[np.ndarray] = []
        while len(oxygens) < n:
            candidate = rng.uniform(-radius, radius, 3)
            if np.linalg.norm(candidate) <= radius and all(np.linalg.norm(candidate - o) >= 2.5 for o in oxygens):
                oxygens.append(candidate)
            else:
                radius *= 1.002  # a crowded sphere grows a little until every molecule fits
        cluster = Atoms()
        for o in oxygens:
            part = water.copy()
            part.positions = Rotation.random(random_state=rng).apply(part.positions) + o
            cluster += part
        out.append(Structure(cluster.numbers, cluster.positions, id=f"water{k}-n{n}"))
    return out


def samples_of(structures: list, heads) -> list:
    from molplat.data.samples import make_sample
    from molplat.representations.adjacency_list import AdjacencyList

    representation = AdjacencyList(cutoff=CUTOFF)
    return [make_sample(s, representation, heads) for s in structures]


# ------------------------------------------------------------------------------- step time
def step_times(samples: list, heads, batch_size: int, percentile: float, repeats: int) -> list[list]:
    from molplat.data import compute_statistics
    from molplat.data.samples import SampleCollator
    from molplat.representations.adjacency_list import AdjacencyList
    from molplat.training import build_task
    from molplat_poptorch.fixed_size import FixedSizeCollator, PackingBatchSampler, choose_fixed_sizes, sample_sizes
    from molplat_schnet.model import SchNet

    collate = SampleCollator(AdjacencyList(cutoff=CUTOFF))
    nodes, edges = sample_sizes(samples)
    sizes = choose_fixed_sizes(nodes, edges, batch_size=batch_size, percentile=percentile)
    plain = [collate(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)]
    packed = [FixedSizeCollator(collate, sizes)([samples[i] for i in b])
              for b in PackingBatchSampler(nodes, edges, sizes)]
    stats = compute_statistics(samples, heads)
    forms = [("unpadded, default path", plain, False), ("unpadded, static path", plain, True),
             (f"fixed-size padded (p{percentile:g}: {sizes.num_nodes} atoms, {sizes.num_edges} edges, "
              f"{sizes.num_graphs} graphs)", packed, True)]
    rows = []
    for label, batches, static in forms:
        torch.manual_seed(0)
        task = build_task(SchNet(**SCHNET, static_shapes=static), heads, stats, {}).train()
        optimizer = torch.optim.AdamW(task.parameters(), lr=1e-3)

        def one_pass() -> float:
            started = time.perf_counter()
            for batch in batches:
                optimizer.zero_grad()
                loss, _ = task.loss(batch, task(batch))
                loss.backward()
                optimizer.step()
            return time.perf_counter() - started

        one_pass()  # warm-up
        runs = [one_pass() for _ in range(repeats)]
        per_step = [1e3 * r / len(batches) for r in runs]
        per_structure = [1e6 * r / len(samples) for r in runs]
        rows.append([label, len(batches), f"{statistics.median(per_step):.1f}",
                     f"{min(per_step):.1f}-{max(per_step):.1f}", f"{statistics.median(per_structure):.0f}",
                     f"{min(per_structure):.0f}-{max(per_structure):.0f}"])
    return rows


# ---------------------------------------------------------------------------- padding share
def padding_rows(name: str, samples: list, batch_size: int, percentiles: list[float]) -> list[list]:
    from molplat_poptorch.fixed_size import FixedSizes, PackingBatchSampler, choose_fixed_sizes, padding_fraction, \
        sample_sizes

    nodes, edges = sample_sizes(samples)
    rows = []
    choices = [(f"p{p:g}", choose_fixed_sizes(nodes, edges, batch_size=batch_size, percentile=p)) for p in percentiles]
    worst = FixedSizes(batch_size + 1, batch_size * int(nodes.max()) + 1, batch_size * int(edges.max()))
    choices.append(("worst case", worst))
    unsplit = -(-len(samples) // batch_size)
    for label, sizes in choices:
        batches = list(PackingBatchSampler(nodes, edges, sizes, shuffle=True, seed=0))
        share = padding_fraction(batches, nodes, edges, sizes)
        rows.append([name, label, sizes.num_nodes, sizes.num_edges, f"{len(batches)} ({unsplit})",
                     f"{100 * share['nodes']:.1f}", f"{100 * share['edges']:.1f}", f"{100 * share['graphs']:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=384, help="QM9 molecules for the step time")
    parser.add_argument("--sizing-molecules", type=int, default=4000, help="QM9 molecules for the padding share")
    parser.add_argument("--clusters", type=int, default=1000, help="water clusters for the padding share")
    parser.add_argument("--water-min", type=int, default=3)
    parser.add_argument("--water-max", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--percentile", type=float, default=99.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from molplat.models.heads import Heads

    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    qm9 = qm9_structures(args.sizing_molecules)
    heads = Heads.single("gap", units="eV")
    qm9_samples = samples_of(qm9, heads)
    timing = step_times(qm9_samples[:args.molecules], heads, args.batch_size, args.percentile, args.repeats)
    print(f"\nStep time, SchNet {SCHNET}, QM9 gap, {args.molecules} molecules, batch {args.batch_size}, "
          f"{args.repeats} runs after a warm-up:")
    print(tabulate(timing, headers=["form", "steps", "ms/step", "range", "µs/structure", "range"],
                   tablefmt="github"))

    waters = water_clusters(args.clusters, args.water_min, args.water_max)
    rows = padding_rows(f"QM9 ({args.sizing_molecules} random)", qm9_samples, args.batch_size, [90, 99, 100])
    rows += padding_rows(f"(H2O)n, n={args.water_min}-{args.water_max} ({args.clusters}, ASE)",
                         samples_of(waters, Heads.single("energy")), args.batch_size, [90, 99, 100])
    print(f"\nPadding share at the chosen fixed sizes (batch {args.batch_size} real + 1 padding graph, cutoff "
          f"{CUTOFF} Å); batches: packed (unsplit count):")
    print(tabulate(rows, headers=["data", "sizes", "atoms", "edges", "batches", "atom pad %", "edge pad %",
                                  "graph pad %"], tablefmt="github"))
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
