"""Fixed-size padded batches give the same predictions, loss and gradients as unpadded ones.

Real data: QM9 dev-set molecules (gap and Mulliken charges: a graph and a per-atom head),
and small molecules rattled and labelled with ASE's EMT calculator (energy and forces).
SchNet runs its default (pair-deduplicating) path on the unpadded batch and its
static-shape path on the padded one, so the check also covers that both compute one function.
Everything is in float64, so the tolerances are tight.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.emt import EMT

from molplat.data import compute_statistics
from molplat.data.samples import SampleCollator, make_sample
from molplat.errors import ValidationError
from molplat.models.heads import Head, Heads
from molplat.plugins import get_plugin_manager
from molplat.representations.adjacency_list import AdjacencyList
from molplat.structure import Structure
from molplat.training import build_task
from molplat_poptorch.fixed_size import FixedSizeCollator, FixedSizes, PackingBatchSampler, choose_fixed_sizes, \
    pad_batch, padding_fraction, refuse_oversized, sample_sizes

CUTOFF = 4.0
SCHNET = dict(hidden_channels=16, num_filters=16, num_interactions=2, num_gaussians=16, cutoff=CUTOFF)


def schnet(**extra):
    """SchNet through the plugin manager (plugins meet through the core, never by import)."""
    return get_plugin_manager().get("model", "schnet").load()(**SCHNET, **extra)


@pytest.fixture(scope="module")
def qm9_structures() -> list[Structure]:
    dataset = get_plugin_manager().get("dataset", "qm9").build(subset="dev")
    return [dataset[i] for i in range(12)]


def emt_structures() -> list[Structure]:
    rng = np.random.default_rng(0)
    out = []
    for k, name in enumerate(["H2O", "CH4", "NH3", "C2H6", "CH3OH", "H2O", "CH4"]):
        atoms = molecule(name)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        out.append(Structure(atoms.numbers, atoms.positions, forces=atoms.get_forces(),
                             targets={"energy": atoms.get_potential_energy()}, id=f"{name}-{k}"))
    return out


def compare(structures: list[Structure], heads: Heads, sizes: FixedSizes) -> None:
    """Predictions, loss and every parameter's gradient: padded (static path) against unpadded (dynamic)."""
    representation = AdjacencyList(cutoff=CUTOFF)
    samples = [make_sample(s, representation, heads) for s in structures]
    collate = SampleCollator(representation, dtype=torch.float64)
    torch.manual_seed(0)
    task = build_task(schnet(n_outputs=heads.n_graph, n_atom_outputs=heads.n_atom).double(), heads,
                      compute_statistics(samples, heads), {}).train()
    plain = collate(samples)
    padded = FixedSizeCollator(collate, sizes)(samples)
    assert padded["numbers"].shape[0] == sizes.num_nodes and padded["edge_index"].shape[1] == sizes.num_edges
    assert int(padded["graphs_mask"].sum()) == len(samples) and not bool(padded["graphs_mask"][-1])

    results = []
    for batch in (plain, padded):
        task.zero_grad()
        out = task(batch)
        loss, parts = task.loss(batch, out)
        loss.backward()
        results.append((out, loss.detach(), parts, {n: p.grad.clone() for n, p in task.named_parameters()}))
    (out_a, loss_a, parts_a, grad_a), (out_b, loss_b, parts_b, grad_b) = results
    graphs, nodes = padded["graphs_mask"], padded["nodes_mask"]
    torch.testing.assert_close(out_b["y"][graphs], out_a["y"], rtol=1e-10, atol=1e-10)
    if heads.n_atom:
        torch.testing.assert_close(out_b["atom_y"][nodes], out_a["atom_y"], rtol=1e-10, atol=1e-10)
    if heads.forces:
        torch.testing.assert_close(out_b["forces"][nodes], out_a["forces"], rtol=1e-9, atol=1e-10)
        assert "forces" in parts_b
    assert set(parts_a) == set(parts_b)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-10, atol=1e-12)
    assert float(loss_a) > 0
    for name, grad in grad_a.items():
        torch.testing.assert_close(grad_b[name], grad, rtol=1e-8, atol=1e-11, msg=f"gradient of {name}")
    assert any(float(g.abs().max()) > 0 for g in grad_a.values())


def test_padding_keeps_property_predictions_loss_and_gradients(qm9_structures):
    heads = Heads((Head("gap", units="eV"), Head("mulliken_charge", level="atom", units="e")))
    nodes = sum(len(s) for s in qm9_structures)
    compare(qm9_structures, heads, FixedSizes(num_graphs=len(qm9_structures) + 3, num_nodes=nodes + 17,
                                              num_edges=nodes * 12 + 40))


def test_padding_keeps_energy_forces_predictions_loss_and_gradients():
    structures = emt_structures()
    heads = Heads.single("energy", units="eV", forces=True)
    nodes = sum(len(s) for s in structures)
    compare(structures, heads, FixedSizes(num_graphs=len(structures) + 1, num_nodes=nodes + 5, num_edges=400))


def test_batches_pack_every_structure_once_within_the_fixed_sizes(qm9_structures):
    samples = [make_sample(s, AdjacencyList(cutoff=CUTOFF), Heads.single("gap")) for s in qm9_structures]
    nodes, edges = sample_sizes(samples)
    sizes = choose_fixed_sizes(nodes, edges, batch_size=4, percentile=60.0)
    assert sizes.num_graphs == 5 and sizes.max_real_nodes >= nodes.max() and sizes.num_edges >= edges.max()
    batches = list(PackingBatchSampler(nodes, edges, sizes, shuffle=True, seed=3))
    assert sorted(i for b in batches for i in b) == list(range(len(samples)))
    for b in batches:
        assert sizes.fits(len(b), int(nodes[b].sum()), int(edges[b].sum()))
        padded = pad_batch(SampleCollator(AdjacencyList(cutoff=CUTOFF))([samples[i] for i in b]), sizes)
        assert padded["positions"].shape == (sizes.num_nodes, 3) and padded["y"].shape == (sizes.num_graphs, 1)
        assert int(padded["natoms"].sum()) == sizes.num_nodes  # padding atoms all sit in the last graph
        assert bool((padded["batch"][~padded["nodes_mask"]] == sizes.num_graphs - 1).all())
        padding_edges = padded["edge_index"][:, ~padded["edges_mask"]]
        assert bool((padding_edges >= int(padded["nodes_mask"].sum())).all())  # never touch a real atom
    # a 60th percentile splits some random batches of 4: more batches than ceil(12 / 4)
    assert len(batches) > 3
    fraction = padding_fraction(batches, nodes, edges, sizes)
    assert 0.0 < fraction["nodes"] < 1.0 and 0.0 <= fraction["edges"] < 1.0


def test_a_structure_larger_than_the_fixed_sizes_is_refused_in_one_line(qm9_structures):
    samples = [make_sample(s, AdjacencyList(cutoff=CUTOFF), Heads.single("gap")) for s in qm9_structures]
    nodes, edges = sample_sizes(samples)
    sizes = choose_fixed_sizes(nodes, edges, batch_size=2, num_nodes=int(nodes.max()))  # one atom short
    with pytest.raises(ValidationError) as info:
        refuse_oversized(nodes, edges, sizes, "train")
    message = str(info.value)
    assert "\n" not in message and "num_nodes" in message and f"{int(nodes.max())} atoms" in message
    with pytest.raises(ValueError, match="does not fit"):
        pad_batch(SampleCollator(AdjacencyList(cutoff=CUTOFF))(samples), sizes)
