"""SchNetPack 2.x side of benchmarks/schnet_vs_schnetpack.py; runs in benchmarks/.venv-schnetpack.

Reads the molecules written by the main script (an .npz), builds SchNetPack's usual pipeline
(an ASE-database-backed ASEAtomsData with a neighbour-list transform, AtomsLoader,
PairwiseDistances + SchNet + Atomwise in a NeuralNetworkPotential), then times one round per
"round" line on stdin, answering each with a JSON line.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup-batches", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--neighbor-list", default="matscipy", choices=("ase", "matscipy"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import schnetpack as spk
    import schnetpack.transform as trn
    from ase import Atoms

    data = np.load(args.data)
    numbers, positions, natoms, target = data["numbers"], data["positions"], data["natoms"], data["target"]
    starts = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    cutoff = float(data["cutoff"])

    workdir = tempfile.TemporaryDirectory(prefix="spk-bench-")
    tmp = workdir.name
    db = spk.data.ASEAtomsData.create(os.path.join(tmp, "qm9.db"), distance_unit="Ang",
                                      property_unit_dict={"y": "eV"})
    atoms_list = [Atoms(numbers=numbers[s:s + n], positions=positions[s:s + n]) for s, n in zip(starts, natoms)]
    db.add_systems([{"y": np.array([t], dtype=np.float64)} for t in target], atoms_list)

    nl = trn.MatScipyNeighborList(cutoff=cutoff) if args.neighbor_list == "matscipy" else trn.ASENeighborList(cutoff=cutoff)
    dataset = spk.data.ASEAtomsData(os.path.join(tmp, "qm9.db"), load_properties=["y"],
                                    transforms=[nl, trn.CastTo32()])
    loader = spk.data.AtomsLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=0)

    schnet = spk.representation.SchNet(
        n_atom_basis=64, n_interactions=3,
        radial_basis=spk.nn.GaussianRBF(n_rbf=50, cutoff=cutoff),
        cutoff_fn=spk.nn.CosineCutoff(cutoff),
    )
    head = spk.atomistic.Atomwise(n_in=64, output_key="y", activation=spk.nn.shifted_softplus)
    model = spk.model.NeuralNetworkPotential(representation=schnet, input_modules=[spk.atomistic.PairwiseDistances()],
                                             output_modules=[head], postprocessors=[])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def step(batch) -> float:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch)
        loss = torch.nn.functional.mse_loss(out["y"], batch["y"])
        loss.backward()
        optimizer.step()
        return loss.item()

    # Warm-up (allocator, first-call overheads), not timed.
    for k, batch in enumerate(loader):
        step(batch)
        if k + 1 >= args.warmup_batches:
            break

    # Each round (one per line "round" on stdin, so that the caller can alternate with the
    # molplat side under the same background load): one epoch of full training steps
    # (database read + neighbour-list transform + collation + forward/backward/step), then one
    # epoch of model-only steps on batches prepared beforehand.
    batches = [b for b in loader]

    def epoch(source) -> float:
        seen, t0 = 0, time.perf_counter()
        for batch in source:
            step(batch)
            seen += int(batch["_n_atoms"].shape[0])
        return seen / (time.perf_counter() - t0)

    print(json.dumps({"ready": True, "version": importlib.metadata.version("schnetpack"), "torch": torch.__version__,
                      "params": sum(p.numel() for p in model.parameters()), "neighbor_list": type(nl).__name__}),
          flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        full = epoch(loader)
        print(json.dumps({"full": full, "model_only": epoch(batches)}), flush=True)
    workdir.cleanup()

if __name__ == "__main__":
    main()
