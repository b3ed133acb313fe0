"""molplat-dgl: the GraphBolt shim, the DGL graph against the core's adjacency list, and
egnn_dgl giving the same predictions on both representations."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import molplat
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_dgl._dgl import graphbolt_problem, import_dgl
from molplat_dgl.model import EGNNDGL
from molplat_dgl.representation import DGLGraphRepresentation, edge_vectors
from molplat_sdk.structures import random_rotation, tiny_structures

dgl = import_dgl()

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_layers=3, num_radial=8, cutoff=CUTOFF, attention=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def structures() -> list[Structure]:
    """Water, ethanol, pyridine, a rattled silicon cell and a sheared rock salt (the SDK's)."""
    return tiny_structures()


def collate(representation, items: list[Structure], dtype=torch.float64) -> Batch:
    batch = representation.collate([representation.featurize(s) for s in items])
    return Batch({k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()})


def run_python(code: str, home) -> subprocess.CompletedProcess:
    """A fresh interpreter (DGL not yet imported), with HOME in a temporary folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DGLBACKEND", "DGLDEFAULTDIR")}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)


# -- the GraphBolt shim -----------------------------------------------------------------------------
def test_dgl_imports_through_the_shim_in_a_fresh_interpreter(tmp_path):
    result = run_python("""
        import sys
        from molplat_dgl._dgl import import_dgl
        dgl = import_dgl()
        import torch
        graph = dgl.graph((torch.tensor([0, 1]), torch.tensor([1, 0])))
        graph.ndata["h"] = torch.ones(2, 3)
        import dgl.function as fn
        graph.update_all(fn.copy_u("h", "m"), fn.sum("m", "s"))
        assert graph.ndata["s"].tolist() == [[1.0] * 3] * 2
        print(type(sys.modules["dgl.graphbolt"]).__name__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    expected = "_MissingGraphBolt" if graphbolt_problem() else "module"
    assert result.stdout.split()[-1] == expected
    assert "DGL backend not selected" not in result.stderr
    assert not (tmp_path / ".dgl").exists()  # DGLBACKEND set: DGL writes no config into HOME


@pytest.mark.skipif(graphbolt_problem() is None, reason="GraphBolt loads here: DGL imports without the shim")
def test_plain_import_fails_here_because_of_graphbolt(tmp_path):
    """Why the shim exists: without it ``import dgl`` dies inside dgl.graphbolt."""
    result = run_python("import os; os.environ['DGLBACKEND'] = 'pytorch'; import dgl", tmp_path)
    assert result.returncode != 0
    assert "graphbolt" in result.stderr


@pytest.mark.skipif(graphbolt_problem() is None, reason="GraphBolt loads here: no placeholder")
def test_the_placeholder_says_why_graphbolt_is_missing():
    placeholder = sys.modules["dgl.graphbolt"]
    with pytest.raises(AttributeError, match="molplat-dgl imports DGL without GraphBolt"):
        placeholder.FusedCSCSamplingGraph  # noqa: B018
    assert not hasattr(placeholder, "__path__")  # nothing can be imported from beneath it


# -- the representation ------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(5), ids=[s.id for s in structures()])
def test_graph_holds_the_adjacency_lists_pairs(index):
    """Same (i, j, lattice offset) triples and the same shift vectors, molecules and crystals."""
    structure = structures()[index]
    flat = collate(AdjacencyList(cutoff=5.0), [structure])
    batch = collate(DGLGraphRepresentation(cutoff=5.0), [structure])
    graph = batch.graph
    src, dst = graph.edges()

    def triples(centers, neighbors, offsets, shifts):
        return sorted((int(i), int(j), *map(int, o), *np.round(s.tolist(), 9))
                      for i, j, o, s in zip(centers, neighbors, offsets, shifts))

    want = triples(*flat.edge_index, flat.cell_offsets, flat.edge_shift)
    got = triples(dst, src, graph.edata["cell_offsets"], graph.edata["shift"])
    assert got == want and len(got) > 0
    if structure.periodic:
        assert (graph.edata["cell_offsets"] != 0).any()  # periodic images are really there
    torch.testing.assert_close(edge_vectors(batch), flat.positions[flat.edge_index[1]]
                               - flat.positions[flat.edge_index[0]] + flat.edge_shift)


def test_batched_graph_unbatches_into_the_single_graphs():
    representation = DGLGraphRepresentation(cutoff=5.0)
    items = structures()
    batch = collate(representation, items)
    graph = batch.graph
    assert graph.batch_size == batch.num_graphs == len(items)
    assert graph.batch_num_nodes().tolist() == batch.natoms.tolist()
    for part, structure in zip(dgl.unbatch(graph), items):
        single = collate(representation, [structure]).graph
        assert [t.tolist() for t in part.edges()] == [t.tolist() for t in single.edges()]
        for key in ("cell_offsets", "shift"):
            assert torch.equal(part.edata[key], single.edata[key])
        for key in ("numbers", "positions"):
            assert torch.equal(part.ndata[key], single.ndata[key])
    assert torch.equal(graph.ndata["positions"], batch.positions) and graph.ndata["positions"].dtype == torch.float64


def test_edge_vectors_are_differentiable_in_the_batch_positions():
    batch = collate(DGLGraphRepresentation(cutoff=5.0), structures()[3:], dtype=torch.float32)
    batch.positions.requires_grad_(True)
    vectors = edge_vectors(batch)
    assert vectors.dtype == torch.float32  # the graph's float64 shifts follow the positions
    (grad,) = torch.autograd.grad(vectors.norm(dim=-1).sum(), batch.positions)
    assert grad.abs().sum() > 0


# -- egnn_dgl on both representations --------------------------------------------------------------
def model(seed: int = 0, **settings) -> EGNNDGL:
    torch.manual_seed(seed)
    net = EGNNDGL(n_outputs=2, n_atom_outputs=1, **{**SMALL, **settings}).double().eval()
    for layer in net.layers:  # coordinate networks start near zero: make the coordinates really move
        if layer.coord_mlp is not None:
            torch.nn.init.normal_(layer.coord_mlp[-1].weight, std=1.0)
    return net


def predictions(net: EGNNDGL, batch: Batch) -> dict[str, torch.Tensor]:
    batch.positions.requires_grad_(True)
    out = net(batch)
    (grad,) = torch.autograd.grad(out["y"][:, 0].sum(), batch.positions)
    h, x, _ = net.embed(batch)
    return {"y": out["y"].detach(), "atom_y": out["atom_y"].detach(), "graph_embedding": out["graph_embedding"].detach(),
            "forces": -grad, "coordinates": x.detach(), "h": h.detach()}


@pytest.mark.parametrize("settings", [{}, {"update_coords": False, "readout": "mean", "attention": False}],
                         ids=["coordinates-updated", "invariant-mean"])
def test_same_predictions_on_both_representations(settings):
    net = model(**settings)
    items = structures()
    on_graph = predictions(net, collate(DGLGraphRepresentation(cutoff=CUTOFF), items))
    on_list = predictions(net, collate(AdjacencyList(cutoff=CUTOFF), items))
    for key, value in on_list.items():
        torch.testing.assert_close(on_graph[key], value, msg=key)
    assert on_graph["forces"].abs().max() > 1e-6


def test_updated_coordinates_are_equivariant():
    """x'(R x + t) = R x'(x) + t, crystals (whose cells rotate) included."""
    rng = np.random.default_rng(0)
    net = model()
    representation = DGLGraphRepresentation(cutoff=CUTOFF)
    items = structures()
    rotation, translation = random_rotation(rng), rng.normal(scale=2.0, size=3)
    with torch.no_grad():
        x = net.embed(collate(representation, items))[1]
        moved = net.embed(collate(representation, [s.transformed(rotation=rotation, translation=translation)
                                                   for s in items]))[1]
    torch.testing.assert_close(moved, x @ torch.from_numpy(rotation.T) + torch.from_numpy(translation))
    assert (x - collate(representation, items).positions).abs().max() > 1e-3


def test_float32_batches_run_and_agree_with_float64():
    """The core casts the batch's top-level tensors, not the graph's: the model casts the shifts."""
    net = model()
    representation = DGLGraphRepresentation(cutoff=CUTOFF)
    with torch.no_grad():
        want = net(collate(representation, structures()))["y"]
        got = net.float()(collate(representation, structures(), dtype=torch.float32))["y"]
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("settings, message", [
    ({"readout": "max"}, "readout must be 'sum' or 'mean'"),
    ({"num_radial": 1}, "num_radial must be 0"),
    ({"hidden_channels": 0}, "hidden_channels must be at least 1"),
])
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        EGNNDGL(**{**SMALL, **settings})


def test_model_cutoff_beyond_the_graphs_is_refused(tmp_path):
    pipeline = {
        "dataset": {"name": "qm9", "target": "homo", "cache_dir": str(tmp_path)},
        "representation": {"name": "dgl_graph", "cutoff": 4.0},
        "model": {"name": "egnn_dgl", "cutoff": 5.0},
        "output": {"dir": str(tmp_path)},
    }
    with pytest.raises(molplat.ValidationError, match="cutoff"):
        molplat.load_pipeline(pipeline)


# -- a real run --------------------------------------------------------------------------------------
def test_trains_and_predicts_through_a_pipeline(tmp_path):
    """dgl_graph batches through the core's collator, trainer, checkpoints and predict."""
    pytest.importorskip("molplat_qm9")
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "size": 60, "target": ["homo", "mulliken_charge"],
                    "cache_dir": str(tmp_path / "cache")},
        "representation": {"name": "dgl_graph", "cutoff": 4.0},
        "model": {"name": "egnn_dgl", "cutoff": 4.0, "hidden_channels": 16, "num_layers": 2, "num_radial": 8},
        "trainer": {"max_epochs": 2, "batch_size": 16, "progress_bar": False, "num_threads": 1},
        "output": {"dir": str(tmp_path / "runs"), "name": "dgl", "plots": False},
    })
    summary = pipeline.run(echo=lambda message: None)
    assert np.isfinite(summary["tasks"]["homo"]["test"]["mae"])
    from ase.build import molecule

    predicted = molplat.load_model(summary["run_dir"]).predict([molecule("H2O"), molecule("CH4")])["targets"]
    assert predicted["homo"]["values"].shape == (2,)
    assert [len(v) for v in predicted["mulliken_charge"]["values"]] == [3, 5]
