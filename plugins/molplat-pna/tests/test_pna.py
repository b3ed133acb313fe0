"""PNA: the degree histogram from the training statistics, the smooth aggregation against PyG's,
the multi-task heads, the cutoff, extensivity, crystals and every bad setting."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.nn.aggr import DegreeScalerAggregation

from molplat.data import compute_statistics, make_sample
from molplat.models import Head, Heads, build_model
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_pna.model import DEFAULT_DEGREE_HISTOGRAM, PNA, SmoothPNAConv

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_layers=2, num_radial=8, head_channels=16, cutoff=CUTOFF)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (20x on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def water() -> Structure:
    return Structure([8, 1, 1], [[0.0, 0.0, 0.117], [0.0, 0.757, -0.469], [0.0, -0.757, -0.469]], id="H2O")


def ethanol() -> Structure:
    return Structure(
        [6, 6, 8, 1, 1, 1, 1, 1, 1],
        [[-0.048, 0.55, 0.0], [-1.23, -0.41, 0.0], [1.18, -0.23, 0.0], [-0.08, 1.19, 0.89],
         [-0.08, 1.19, -0.89], [-2.17, 0.15, 0.0], [-1.2, -1.05, 0.88], [-1.2, -1.05, -0.88],
         [1.94, 0.38, 0.0]],
        id="ethanol",
    )


def rocksalt(rng: np.random.Generator) -> Structure:
    """A rattled, sheared NaCl-like cell: every neighbour is a periodic image."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def collate(structures: list[Structure], dtype=torch.float32) -> Batch:
    rep = AdjacencyList(cutoff=CUTOFF)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def labelled(structure: Structure, heads: Heads) -> Structure:
    targets = {h.name: float(len(structure)) for h in heads.graph}
    atoms = {h.name: 0.1 * structure.numbers.astype(float) for h in heads.atom}
    return Structure(structure.numbers, structure.positions, structure.cell, structure.pbc, targets=targets,
                     atom_targets=atoms, id=structure.id)


def statistics_of(structures: list[Structure], heads: Heads):
    rep = AdjacencyList(cutoff=CUTOFF)
    return compute_statistics([make_sample(labelled(s, heads), rep, heads) for s in structures], heads)


MULTI = Heads((Head("gap"), Head("homo"), Head("mulliken_charge", level="atom"), Head("spin", level="atom")))


# -- the degree histogram --------------------------------------------------------------------------
def test_the_histogram_pnaconv_gets_is_the_training_splits_in_degrees():
    structures = [water(), ethanol(), rocksalt(np.random.default_rng(0))]
    statistics = statistics_of(structures, Heads.single("gap"))
    # the core counts in-degrees: how many edges each centre (row 0, the receiver) has
    rep = AdjacencyList(cutoff=CUTOFF)
    degrees = np.concatenate([np.bincount(rep.featurize(s)["edge_index"][0], minlength=len(s)) for s in structures])
    assert statistics.degree_histogram == np.bincount(degrees).tolist()

    model = build_model(PNA, SMALL, Heads.single("gap"), statistics)
    assert model.degree_histogram == statistics.degree_histogram and not model.default_histogram
    expected = DegreeScalerAggregation(["mean"], ["identity"], torch.tensor(statistics.degree_histogram))
    delta = float(np.mean(np.log(degrees + 1)))
    for conv in model.convs:
        assert isinstance(conv, SmoothPNAConv)
        assert conv.aggr_module.avg_deg_log.item() == pytest.approx(delta, rel=1e-6)
        assert conv.aggr_module.avg_deg_lin.item() == pytest.approx(degrees.mean(), rel=1e-6)
        torch.testing.assert_close(conv.aggr_module.avg_deg_log, expected.avg_deg_log)
    # the normalisers are buffers: a state_dict carries them
    assert "convs.0.aggr_module.avg_deg_log" in model.state_dict()


def test_without_statistics_the_documented_default_histogram():
    model = PNA(n_outputs=1, **SMALL)
    assert model.default_histogram and model.degree_histogram == list(DEFAULT_DEGREE_HISTOGRAM)
    assert model.convs[0].aggr_module.avg_deg_log.item() == pytest.approx(math.log(17))
    # a split of isolated atoms has no degrees to learn from either
    lonely = statistics_of([Structure([18], [[0.0, 0.0, 0.0]])], Heads.single("gap"))
    assert lonely.degree_histogram == [1]
    assert build_model(PNA, SMALL, Heads.single("gap"), lonely).default_histogram


# -- the smooth aggregation ------------------------------------------------------------------------
@pytest.mark.parametrize("scalers", [["identity", "amplification", "attenuation"], ["linear", "inverse_linear"]])
def test_weights_of_one_give_pygs_aggregation(scalers, monkeypatch):
    """With every envelope weight 1 and every degree at least 1, mean/std/var/sum and all scalers
    are PyG's DegreeScalerAggregation exactly; max and min, sharp, PyG's with a zero message added.
    (The std's epsilon, which the two place differently, is set to zero: no spread here is tiny.)"""
    from molplat_pna import model as module

    monkeypatch.setattr(module, "STD_EPS", 0.0)
    torch.manual_seed(0)
    aggregators = ["mean", "std", "var", "sum", "max", "min"]
    histogram = torch.tensor([0, 3, 5, 2, 1])
    conv = SmoothPNAConv(4, 4, aggregators=aggregators, scalers=scalers, deg=histogram, edge_dim=2,
                         sharpness=1e4, flow="target_to_source").double()
    index = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    messages = torch.randn(len(index), 1, 4, dtype=torch.float64)
    ours = conv.smooth_aggregate(messages, index, torch.ones(len(index), dtype=torch.float64), 4)
    reference = DegreeScalerAggregation(aggregators, scalers, histogram).double()(messages, index, dim_size=4, dim=0)
    ours, reference = ours.view(4, len(scalers), len(aggregators), 4), reference.view(4, len(scalers), -1, 4)
    torch.testing.assert_close(ours[:, :, :4], reference[:, :, :4])
    torch.testing.assert_close(ours[:, :, 4], reference[:, :, 4].clamp_min(0), rtol=0, atol=1e-3)
    torch.testing.assert_close(ours[:, :, 5], reference[:, :, 5].clamp_max(0), rtol=0, atol=1e-3)


def test_smooth_max_and_min():
    """Softmax-weighted with one zero message: the exact formula, tied messages differentiable,
    and a message whose weight falls to zero drops out continuously."""
    messages = torch.tensor([[[1.0]], [[1.0]], [[-2.0]], [[0.5]]], dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 0, 1])
    weight = torch.tensor([1.0, 1.0, 0.5, 1e-9], dtype=torch.float64)
    beta = 3.0
    out = SmoothPNAConv.soft_extreme(messages, weight, index, 2, beta)[:, 0, 0]
    e = torch.exp(beta * torch.tensor([1.0, 1.0, -2.0]))
    w = torch.tensor([1.0, 1.0, 0.5])
    expected = (w * e * torch.tensor([1.0, 1.0, -2.0])).sum() / (1 + (w * e).sum())
    torch.testing.assert_close(out[0], expected.double())
    assert abs(out[1].item()) < 1e-8  # the neighbour on its way out barely counts
    (grad,) = torch.autograd.grad(out[0], messages)
    assert grad[0, 0, 0] == grad[1, 0, 0] > 0  # the tie shares the gradient: no kink
    low = SmoothPNAConv.soft_extreme(messages.detach(), torch.ones(4, dtype=torch.float64), index, 2, -50.0)
    torch.testing.assert_close(low[:, 0, 0], torch.tensor([-2.0, 0.0], dtype=torch.float64), rtol=0, atol=1e-6)


def test_weighted_std_is_exact_and_vanishes_for_one_neighbour():
    conv = SmoothPNAConv(2, 2, aggregators=["std"], scalers=["identity"], deg=torch.tensor([0, 1]), edge_dim=1)
    messages = torch.tensor([[[1.0, 2.0]], [[3.0, 2.0]], [[5.0, 7.0]]])
    out = conv.smooth_aggregate(messages, torch.tensor([0, 0, 1]), torch.ones(3), 2)
    eps = 1e-5
    torch.testing.assert_close(out[:, 0], torch.tensor([[math.sqrt(1 + eps) - math.sqrt(eps), 0.0], [0.0, 0.0]]))


def energies_along(model: PNA, distances: np.ndarray) -> list[float]:
    """Energies of C-O(-H) with the O pulled through the cutoff sphere of the C."""
    out = []
    for d in distances:
        structure = Structure([6, 1, 8], [[0.0, 0.0, 0.0], [-0.6, 0.9, 0.0], [d, 0.0, 0.0]])
        with torch.no_grad():
            out.append(float(model(collate([structure], torch.float64))["y"][0, 0]))
    return out


def test_energy_continuous_across_the_cutoff_and_pygs_counting_jumps():
    torch.manual_seed(3)
    smooth = PNA(n_outputs=1, readout="sum", **SMALL).double().eval()
    counting = PNA(n_outputs=1, readout="sum", smooth=False, **SMALL).double().eval()
    counting.load_state_dict(smooth.state_dict())
    across = np.array([CUTOFF - 1e-6, CUTOFF + 1e-6])
    inside, outside = energies_along(smooth, across)
    assert abs(inside - outside) < 1e-10
    # without the envelope weights a neighbour counts fully until it is gone: a jump
    inside, outside = energies_along(counting, across)
    assert abs(inside - outside) > 1e-4


def test_forces_are_smooth_through_the_cutoff():
    """The cosine envelope has zero slope at the cutoff: forces fall continuously to zero."""
    torch.manual_seed(4)
    model = PNA(n_outputs=1, readout="sum", **SMALL).double().eval()
    forces = []
    for d in (CUTOFF - 1e-3, CUTOFF - 1e-6, CUTOFF + 1e-6):
        batch = collate([Structure([6, 8], [[0.0, 0.0, 0.0], [d, 0.0, 0.0]])], torch.float64)
        batch.positions.requires_grad_(True)
        (grad,) = torch.autograd.grad(model(batch)["y"].sum(), batch.positions)
        forces.append(-grad[1, 0].item())
    # zero beyond, and falling linearly to zero on the way there (1e-3 -> 1e-6 from the cutoff)
    assert forces[2] == 0.0 and 0 < abs(forces[1]) < 2e-3 * abs(forces[0]), forces


# -- heads -----------------------------------------------------------------------------------------
def test_graph_and_atom_heads_have_their_own_mlps_and_shapes():
    torch.manual_seed(1)
    model = build_model(PNA, SMALL, MULTI, statistics_of([water(), ethanol()], MULTI))
    assert list(model.graph_heads) == ["gap", "homo"] and list(model.atom_heads) == ["mulliken_charge", "spin"]
    assert model.graph_head_names == ("gap", "homo")
    heads = list(model.graph_heads.values()) + list(model.atom_heads.values())
    parameters = [{id(p) for p in head.parameters()} for head in heads]
    assert all(a.isdisjoint(b) for k, a in enumerate(parameters) for b in parameters[k + 1:])
    out = model(collate([water(), ethanol()]))
    assert out["y"].shape == (2, 2) and out["atom_y"].shape == (12, 2)
    assert out["atom_embedding"].shape == (12, 16) and out["graph_embedding"].shape == (2, 16)

    # each output column is its own head's: the loss of one head trains only that head's MLP
    def trained(module: torch.nn.Module) -> bool:
        return all(p.grad is not None and p.grad.any() for p in module.parameters())

    def untouched(module: torch.nn.Module) -> bool:
        return all(p.grad is None or not p.grad.any() for p in module.parameters())

    out["atom_y"][:, 1].sum().backward()
    assert untouched(model.graph_heads) and untouched(model.shared) and untouched(model.atom_heads["mulliken_charge"])
    assert trained(model.atom_heads["spin"]) and trained(model.convs[0].lin)  # ... and the shared layers
    model.zero_grad(set_to_none=True)
    out = model(collate([water(), ethanol()]))
    out["y"][:, 0].sum().backward()
    assert untouched(model.graph_heads["homo"]) and untouched(model.atom_heads)
    assert trained(model.graph_heads["gap"]) and trained(model.shared)


def test_mean_readout_is_pool_then_shared_layers_then_head():
    torch.manual_seed(2)
    model = PNA(n_outputs=1, readout="mean", **SMALL).eval()
    batch = collate([water(), ethanol()])
    with torch.no_grad():
        out = model(batch)
        pooled = torch.stack([out["atom_embedding"][:3].mean(0), out["atom_embedding"][3:].mean(0)])
        torch.testing.assert_close(out["graph_embedding"], pooled)
        torch.testing.assert_close(out["y"], model.graph_heads["y0"](model.shared(pooled)))


@pytest.mark.parametrize("readout,factor", [("sum", 2.0), ("mean", 1.0)])
def test_sum_readout_is_extensive(readout, factor):
    """Two copies of a molecule, farther apart than the cutoff: the sum doubles, the mean stays."""
    torch.manual_seed(5)
    model = PNA(n_outputs=1, readout=readout, **SMALL).double().eval()
    single = ethanol()
    pair = Structure(np.concatenate([single.numbers] * 2),
                     np.concatenate([single.positions, single.positions + [3 * CUTOFF, 0, 0]]))
    with torch.no_grad():
        one = model(collate([single], torch.float64))["y"]
        two = model(collate([pair], torch.float64))["y"]
    torch.testing.assert_close(two, factor * one)


def test_a_run_without_graph_heads():
    model = build_model(PNA, SMALL, Heads((Head("q", level="atom"),)))
    out = model(collate([water()]))
    assert out["y"].shape == (1, 0) and out["atom_y"].shape == (3, 1)


def test_head_names_that_are_no_module_names():
    heads = Heads((Head("a.b"), Head("keys"), Head("head1"), Head("a_b"), Head("")))
    model = build_model(PNA, SMALL, heads)
    assert list(model.graph_heads) == ["a_b", "head1", "head2", "head3", "head4"]
    assert model.graph_head_names == ("a.b", "keys", "head1", "a_b", "")


# -- crystals, towers, dtype -----------------------------------------------------------------------
def test_periodic_crystal_energy_and_forces():
    torch.manual_seed(6)
    model = PNA(n_outputs=1, readout="sum", towers=4, aggregators=["mean", "max", "std"],
                scalers=["identity", "amplification", "attenuation", "linear"], **SMALL).double().eval()
    rng = np.random.default_rng(1)
    crystal = rocksalt(rng)
    batch = collate([crystal], torch.float64)
    batch.positions.requires_grad_(True)
    energy = model(batch)["y"].sum()
    (grad,) = torch.autograd.grad(energy, batch.positions)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # momentum conservation: forces on a periodic cell sum to zero
    torch.testing.assert_close(grad.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    shifted = Structure(crystal.numbers, crystal.positions + [crystal.cell[0], [0, 0, 0]], cell=crystal.cell,
                        pbc=True)
    with torch.no_grad():
        torch.testing.assert_close(model(collate([shifted], torch.float64))["y"].sum(), energy.detach())


def test_runs_under_bf16_autocast():
    torch.manual_seed(7)
    model = PNA(n_outputs=1, **SMALL).eval()
    batch = collate([water(), ethanol()])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(batch)["y"].float()
    with torch.no_grad():
        torch.testing.assert_close(low, model(batch)["y"], rtol=0.1, atol=0.1)


# -- bad settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings,message", [
    ({"hidden_channels": 10, "towers": 4}, "multiple of towers"),
    ({"aggregators": []}, "at least one"),
    ({"aggregators": ["mean", "median"]}, "unknown aggregators"),
    ({"scalers": ["identity", "identity"]}, "twice"),
    ({"scalers": ["log"]}, "unknown scalers"),
    ({"num_radial": 1}, "num_radial"),
    ({"readout": "max"}, "readout"),
])
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        PNA(n_outputs=1, **{**SMALL, **settings})


def test_heads_disagreeing_with_the_output_counts():
    with pytest.raises(ValueError, match="n_outputs"):
        PNA(n_outputs=2, heads=Heads.single("gap"), **SMALL)


def test_the_pipeline_refuses_bad_values_in_one_line(tmp_path):
    import molplat
    from molplat.errors import ValidationError

    base = {"dataset": {"name": "qm9", "target": "gap"}, "representation": {"name": "adjacency_list"},
            "output": {"dir": str(tmp_path)}}
    for model, words in [({"name": "pna", "aggregators": ["mean", "median"]}, "median"),
                         ({"name": "pna", "num_layers": 0}, "num_layers"),
                         ({"name": "pna", "hidden_channels": 30, "towers": 4}, "towers")]:
        with pytest.raises(ValidationError, match=words):
            molplat.load_pipeline({**base, "model": model})


def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_pna import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representation = PluginManager().components("representation")["adjacency_list"]
    assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
    assert {"atom_property", "energy", "forces"} <= set(spec.outputs)


# -- the split first message layer -----------------------------------------------------------------
@pytest.mark.parametrize("towers,pre_layers,divide_input", [(1, 1, False), (2, 2, False), (4, 1, True)])
def test_counting_mode_is_pygs_pnaconv(towers, pre_layers, divide_input):
    """Without edge weights the layer is PyG's PNAConv, parameter for parameter: the split
    first message layer (see SmoothPNAConv.project) computes the same function."""
    from torch_geometric.nn import PNAConv

    torch.manual_seed(9)
    options = dict(aggregators=["mean", "min", "max", "std"], scalers=["identity", "amplification", "attenuation"],
                   deg=torch.tensor([1, 4, 6, 2]), edge_dim=5, towers=towers, pre_layers=pre_layers,
                   divide_input=divide_input, flow="target_to_source")
    ours = SmoothPNAConv(8, 8, **options).double()
    theirs = PNAConv(8, 8, **options).double()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(6, 8, dtype=torch.float64)
    edge_index = torch.tensor([[0, 0, 1, 2, 2, 2, 3, 5], [1, 2, 0, 0, 3, 4, 2, 4]])
    edge_attr = torch.randn(edge_index.shape[1], 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))


def test_the_histogram_reaches_pnaconv(monkeypatch):
    """What each PNAConv receives as ``deg`` is the statistics' histogram, unchanged."""
    seen = []
    original = SmoothPNAConv.__init__

    def spy(self, *args, deg, **kwargs):
        seen.append(deg.tolist())
        original(self, *args, deg=deg, **kwargs)

    monkeypatch.setattr(SmoothPNAConv, "__init__", spy)
    statistics = statistics_of([water(), ethanol()], Heads.single("gap"))
    build_model(PNA, SMALL, Heads.single("gap"), statistics)
    assert seen == [statistics.degree_histogram] * SMALL["num_layers"]


# -- edge direction --------------------------------------------------------------------------------
def test_messages_flow_from_the_neighbour_row_to_the_centre_row():
    """molplat's edge_index: row 0 the centre (receives), row 1 the neighbour (sends). A single
    directed edge 0 <- 1: atom 0 hears atom 1, atom 1 hears nobody."""
    torch.manual_seed(10)
    model = PNA(n_outputs=1, n_atom_outputs=1, **SMALL).double().eval()

    def atoms(numbers: list[int]) -> torch.Tensor:
        batch = collate([Structure(numbers, [[0.0, 0.0, 0.0], [1.2, 0.0, 0.0]])], torch.float64)
        keep = batch["edge_index"][0] == 0
        batch["edge_index"], batch["edge_shift"] = batch["edge_index"][:, keep], batch["edge_shift"][keep]
        batch["cell_offsets"] = batch["cell_offsets"][keep]
        assert batch["edge_index"].tolist() == [[0], [1]]
        with torch.no_grad():
            return model(batch)["atom_y"][:, 0]

    reference, other_sender, other_receiver = atoms([6, 8]), atoms([6, 7]), atoms([7, 8])
    assert other_sender[0] != reference[0] and other_sender[1] != reference[1]  # atom 1 itself changed
    assert other_receiver[1] == reference[1]  # the receiver's element never reaches the sender


def test_mean_readout_with_towers_and_every_scaler_is_invariant():
    torch.manual_seed(11)
    model = PNA(n_outputs=2, n_atom_outputs=1, readout="mean", towers=2, pre_layers=2, post_layers=2,
                scalers=["identity", "amplification", "attenuation", "linear", "inverse_linear"],
                aggregators=["mean", "min", "max", "std", "var", "sum"], **SMALL).double().eval()
    rng = np.random.default_rng(3)
    molecule = ethanol()
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    order = rng.permutation(len(molecule))
    moved = molecule.transformed(rotation=q, translation=[1.0, -2.0, 0.5], permutation=order)
    with torch.no_grad():
        reference = model(collate([molecule, water()], torch.float64))
        out = model(collate([moved, water()], torch.float64))
    torch.testing.assert_close(out["y"], reference["y"])
    torch.testing.assert_close(out["atom_y"][:9], reference["atom_y"][:9][order])
    torch.testing.assert_close(out["atom_y"][9:], reference["atom_y"][9:])
