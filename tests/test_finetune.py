"""Fine-tuning from another run's weights ([model] init, freeze) and active sampling from a reserve pool.

The example pair runs for real (QM9 dev-set energies, then the shipped GFN2-xTB set with
forces); active sampling is checked with a model whose forces are zero by construction,
so the force error of a structure is its true force magnitude and the right choice is known.
"""
from __future__ import annotations

import json
import shutil
import tomllib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from molplat.builtin import TRAINER_SETTINGS
from molplat.data import make_sample
from molplat.data.samples import SampleCollator
from molplat.models import AtomisticModel, Heads
from molplat.pipeline.config import Pipeline
from molplat.pipeline.prepare import prepare
from molplat.predict import TrainedModel
from molplat.representations.adjacency_list import AdjacencyList
from molplat.rundir import TrainingJob, read_checkpoint
from molplat.structure import Structure
from molplat.training.active import ACTIVE_FILE
from molplat.training.initial import InitialisedModel
from molplat.training.lightning import LightningTask, fit_with_lightning
from molplat.training.task import build_task

pytest.importorskip("molplat_schnet")
pytest.importorskip("molplat_qm9")

EXAMPLES = Path(__file__).parents[1] / "examples"
TINY = {"hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 20, "cutoff": 4.0}


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def qm9_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    from molplat_qm9.dataset import QM9

    folder = tmp_path_factory.mktemp("molplat-cache")
    QM9(cache_dir=str(folder))
    return str(folder)


def example(name: str, runs: Path, **tables: dict) -> dict:
    """A shipped example pipeline with tiny settings, writing into ``runs``."""
    spec = tomllib.loads((EXAMPLES / name).read_text())
    spec["model"].update(TINY)
    spec["representation"]["cutoff"] = 4.0
    spec["trainer"].update(progress_bar=False, num_threads=1)
    spec["output"].update(dir=str(runs), plots=False)
    for table, values in tables.items():
        spec.setdefault(table, {}).update(values)
    return spec


@pytest.fixture(scope="module")
def pair(qm9_cache: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The example pair: QM9 energies, then xTB energies and forces from those weights."""
    runs = tmp_path_factory.mktemp("runs")
    pretrain = example("qm9-pretrain-energy.toml", runs, dataset={"cache_dir": qm9_cache, "size": 300},
                       trainer={"max_epochs": 1})
    first = Pipeline.load(pretrain, base_dir=EXAMPLES).run(echo=quiet)
    messages: list[str] = []
    finetune = example("xtb-finetune-forces.toml", runs, model={"init": str(runs / "qm9-pretrain-energy")},
                       trainer={"max_epochs": 2, "active_every": 1, "active_count": 4})
    second = Pipeline.load(finetune, base_dir=EXAMPLES).run(echo=messages.append)
    return {"pretrain": Path(first["run_dir"]), "finetune": Path(second["run_dir"]), "messages": messages,
            "finetune_spec": finetune}


def model_state(run: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(run / "checkpoints" / "best.ckpt").state_dict
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


def test_the_finetune_run_reports_that_it_loaded_every_parameter_of_the_pretrained_run(pair):
    init = json.loads((pair["finetune"] / "data.json").read_text())["init"]
    from molplat_schnet.model import SchNet

    names = [n for n, _ in SchNet(n_outputs=1, **TINY).named_parameters()]
    assert sorted(init["loaded"]) == sorted(names) and init["new"] == []
    assert init["from"] == str(pair["pretrain"])  # the newest run of that name
    assert init["frozen"] == ["embedding.weight"] and init["freeze"] == ["embedding"]
    line = [m for m in pair["messages"] if m.startswith("init:")]
    assert line == [f"init: loaded {len(names)} of {len(names)} parameter tensors from {pair['pretrain']}; "
                    f"frozen: embedding (1 tensors)"]


def test_frozen_blocks_stay_bit_identical_and_the_rest_trains(pair):
    before, after = model_state(pair["pretrain"]), model_state(pair["finetune"])
    assert torch.equal(before["embedding.weight"], after["embedding.weight"])
    trained = [k for k in before if k not in ("embedding.weight", "rbf.centers")]  # rbf.centers: a buffer
    assert all(not torch.equal(before[k], after[k]) for k in trained)


def test_the_finetune_model_starts_with_the_pretrained_models_outputs(pair):
    """Before its first step the fine-tune model's standardised outputs on the xTB molecules are the
    pre-trained model's; its scaling is the xTB set's own (a different energy scale)."""
    pipeline = Pipeline.load(pair["finetune_spec"], base_dir=EXAMPLES)
    data = prepare(pipeline, quiet, show_progress=False)
    model = InitialisedModel(partial(pipeline.components["model"].build_model, data.heads, data.statistics),
                             data.initial)()
    pretrained = TrainedModel.from_run(pair["pretrain"])
    batch = SampleCollator(data.representation)(list(data.samples["val"])[:8])
    with torch.no_grad():
        assert torch.equal(model.eval()(batch)["y"], pretrained.model(batch)["y"])
    task = build_task(model, data.heads, data.statistics, {})
    assert not torch.equal(task.scaler.graph_reference, pretrained.task.scaler.graph_reference)


def test_with_the_same_data_the_finetune_predictions_before_training_equal_the_pretrained(pair, qm9_cache):
    """Matching heads on the same split: the task the run would train predicts, in eV, what the
    pre-trained run predicts."""
    spec = example("qm9-pretrain-energy.toml", pair["pretrain"].parent, dataset={"cache_dir": qm9_cache, "size": 300},
                   model={"init": str(pair["pretrain"])})
    pipeline = Pipeline.load(spec, base_dir=EXAMPLES)
    data = prepare(pipeline, quiet, show_progress=False)
    model = InitialisedModel(partial(pipeline.components["model"].build_model, data.heads, data.statistics),
                             data.initial)()
    task = build_task(model, data.heads, data.statistics, pipeline.components["trainer"].settings).eval()
    samples = list(data.samples["test"])[:16]
    with torch.no_grad():
        mine = task(SampleCollator(data.representation)(samples))["y"]
    theirs = TrainedModel.from_run(pair["pretrain"]).predict_samples(samples)["y"]
    np.testing.assert_array_equal(mine.numpy(), theirs)


def test_the_finetune_run_moved_pool_structures_into_training(pair):
    record = json.loads((pair["finetune"] / ACTIVE_FILE).read_text())
    assert record["metric"] == "forces_mae" and record["units"] == "eV/Å"
    assert [r["epoch"] for r in record["rounds"]] == [0, 1]
    assert all(len(r["moved"]) == 4 for r in record["rounds"])
    assert record["pool_left"] == record["initial_pool"] - 8
    sizes = json.loads((pair["finetune"] / "data.json").read_text())
    assert sizes["active_pool"] == record["initial_pool"] == round(0.5 * sizes["sizes"]["train"])


def test_the_optimizer_does_not_carry_frozen_parameters():
    from molplat_schnet.model import SchNet

    model = SchNet(n_outputs=1, **TINY)
    model.embedding.weight.requires_grad_(False)
    settings = {s.name: s.default for s in TRAINER_SETTINGS}
    task = LightningTask(model, Heads.single("energy", "eV"), None, settings)
    carried = {id(p) for group in task.configure_optimizers()["optimizer"].param_groups for p in group["params"]}
    assert id(model.embedding.weight) not in carried
    assert carried == {id(p) for n, p in model.named_parameters() if n != "embedding.weight"}


# -- active sampling with known errors --------------------------------------------------------------
class ZeroForces(AtomisticModel):
    """An energy per structure that ignores the positions: its forces are zero, so the force error of a
    structure is the mean magnitude of its true force components, whatever it learns."""

    accepts = ("adjacency_list",)

    def __init__(self, n_outputs: int = 1) -> None:
        super().__init__(n_outputs)
        self.energy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        per_atom = batch["positions"].sum(dim=1) * 0.0 + self.energy
        graph = batch.atom_graph_index()
        y = torch.zeros(int(batch["num_graphs"]), dtype=per_atom.dtype).index_add(0, graph, per_atom)
        return {"y": y[:, None], "atom_embedding": per_atom[:, None], "graph_embedding": y[:, None]}


def copper(n: int) -> list[Structure]:
    """Copper cells rattled by growing amounts: larger rattles, larger EMT forces."""
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.01 + 0.01 * ((7 * k) % n), seed=k)
        atoms.calc = EMT()
        out.append(Structure(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_forces(),
                             {"energy": atoms.get_potential_energy()}, f"cu{k}"))
    return out


HEADS = Heads.single("energy", "eV", forces=True)


def active_job(run_dir: Path, resume: bool = False) -> TrainingJob:
    rep = AdjacencyList(cutoff=3.0)
    structures = copper(16)
    samples = [make_sample(s, rep, HEADS) for s in structures]
    return TrainingJob(train=samples[:12], val=samples[12:], collator=SampleCollator(rep),
                       build_model=ZeroForces, run_dir=run_dir, heads=HEADS, resume=resume,
                       reserve=np.arange(2, 12))


def active_settings(epochs: int) -> dict:
    settings = {s.name: s.default for s in TRAINER_SETTINGS}
    settings.update(task="energy_forces", max_epochs=epochs, batch_size=4, progress_bar=False, num_threads=1,
                    active_pool=0.5, active_every=1, active_count=3)
    return settings


def expected_order(job: TrainingJob) -> list[str]:
    """Pool ids from the largest to the smallest mean |F| (ties: earlier first)."""
    pool = [job.train[int(p)] for p in job.reserve]
    scores = [float(np.abs(s.forces).mean()) for s in pool]
    return [pool[k].id for k in np.argsort(-np.asarray(scores), kind="stable")]


def test_active_sampling_moves_the_structures_with_the_largest_force_error(tmp_path):
    job = active_job(tmp_path)
    fit_with_lightning(job, active_settings(3))
    record = json.loads((tmp_path / ACTIVE_FILE).read_text())
    moved = [[m["id"] for m in r["moved"]] for r in record["rounds"]]
    order = expected_order(job)
    assert moved == [order[0:3], order[3:6], order[6:9]]
    errors = [m["error"] for r in record["rounds"] for m in r["moved"]]
    truth = {s.id: float(np.abs(s.forces).mean()) for s in job.train}
    assert errors == pytest.approx([truth[i] for r in moved for i in r], rel=1e-5)
    first = record["rounds"][0]
    assert first["pool_size_before"] == 10 and first["training_size_after"] == 5
    assert first["pool_error_before"] == pytest.approx(np.mean([truth[i] for i in order]), rel=1e-5)
    assert first["pool_error_after"] == pytest.approx(np.mean([truth[i] for i in order[3:]]), rel=1e-5)
    assert (tmp_path / "active_sampling.png").stat().st_size > 0
    state = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt").raw["callbacks"]
    (pool,) = [v["pool"] for v in state.values() if "pool" in v]
    assert len(pool) == 1


def test_resume_goes_on_with_the_pool_of_the_checkpoint(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    fit_with_lightning(active_job(whole), active_settings(3))
    fit_with_lightning(active_job(part), active_settings(1))
    assert len(json.loads((part / ACTIVE_FILE).read_text())["rounds"]) == 1
    fit_with_lightning(active_job(part, resume=True), active_settings(3))
    resumed = json.loads((part / ACTIVE_FILE).read_text())
    uninterrupted = json.loads((whole / ACTIVE_FILE).read_text())
    assert [r["moved"] for r in resumed["rounds"]] == [r["moved"] for r in uninterrupted["rounds"]]
    assert resumed["pool_left"] == uninterrupted["pool_left"] == 1
    ids = [m["id"] for r in resumed["rounds"] for m in r["moved"]]
    assert len(ids) == len(set(ids)) == 9


class StopAtEpochStart(pl.Callback):
    """Stops a run as a kill would, after its start and before it trains another epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        raise RuntimeError("stopped on purpose")


def test_a_resume_from_an_earlier_checkpoint_forgets_later_rounds(tmp_path):
    fit_with_lightning(active_job(tmp_path), active_settings(1))
    saved = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    fit_with_lightning(active_job(tmp_path, resume=True), active_settings(2))
    assert len(json.loads((tmp_path / ACTIVE_FILE).read_text())["rounds"]) == 2
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(saved)  # as if killed before epoch 1's checkpoint
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        fit_with_lightning(active_job(tmp_path, resume=True), active_settings(2), [StopAtEpochStart()])
    record = json.loads((tmp_path / ACTIVE_FILE).read_text())
    assert len(record["rounds"]) == 1 and record["pool_left"] == 7


def test_an_energy_only_run_selects_by_the_energy_error(tmp_path):
    job = active_job(tmp_path)
    heads = Heads.single("energy", "eV")
    job = TrainingJob(train=[make_sample(s, AdjacencyList(cutoff=3.0), heads) for s in copper(16)][:12],
                      val=job.val, collator=job.collator, build_model=ZeroForces, run_dir=tmp_path, heads=heads,
                      reserve=np.arange(2, 12))
    settings = active_settings(1)
    settings["task"] = "property"
    fit_with_lightning(job, settings)
    record = json.loads((tmp_path / ACTIVE_FILE).read_text())
    assert record["metric"] == "energy_abs_error" and record["units"] == "eV"
    assert len(record["rounds"][0]["moved"]) == 3


# -- bad input: exit 2, one line, nothing written ---------------------------------------------------
BAD = """[dataset]
name = "atoms_file"
path = "{data}"
[representation]
name = "adjacency_list"
cutoff = 4.0
[model]
name = "schnet"
hidden_channels = 16
num_filters = 16
num_interactions = 2
num_gaussians = 20
cutoff = 4.0
{model}
[trainer]
task = "energy_forces"
max_epochs = 1
progress_bar = false
{trainer}
[output]
dir = "{runs}"
plots = false
"""


@pytest.fixture(scope="module")
def other_run(pair) -> Path:
    return pair["finetune"]


def check_bad(tmp_path: Path, capsys, model: str = "", trainer: str = "", command: str = "run") -> str:
    from molplat.cli import main

    runs = tmp_path / "runs"
    path = tmp_path / "p.toml"
    path.write_text(BAD.format(data=EXAMPLES / "data" / "qm9-xtb.extxyz", model=model, trainer=trainer, runs=runs))
    code = main([command, str(path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert not runs.exists()
    return errors[0]


def test_init_path_missing(tmp_path, capsys):
    line = check_bad(tmp_path, capsys, model=f'init = "{tmp_path / "nope"}"')
    assert "[model] init:" in line and "does not exist" in line and "run directory" in line


def test_init_not_a_run_directory(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    line = check_bad(tmp_path, capsys, model='init = "folder"')
    assert "is not a molplat run directory (no pipeline.toml)" in line


def test_init_checkpoint_damaged(tmp_path, capsys, other_run):
    copy = tmp_path / "copy"
    shutil.copytree(other_run, copy, ignore=shutil.ignore_patterns(".lock*"))
    data = (copy / "checkpoints" / "best.ckpt").read_bytes()
    (copy / "checkpoints" / "best.ckpt").write_bytes(data[: len(data) // 2])
    line = check_bad(tmp_path, capsys, model=f'init = "{copy}"', command="validate")
    assert "[model] init:" in line and "truncated or damaged" in line


def test_init_from_another_model(tmp_path, capsys, other_run):
    copy = tmp_path / "copy"
    shutil.copytree(other_run, copy, ignore=shutil.ignore_patterns(".lock*"))
    text = (copy / "pipeline.toml").read_text().replace('name = "molplat-schnet:schnet"', 'name = "molplat-cgcnn:cgcnn"')
    (copy / "pipeline.toml").write_text(text)
    line = check_bad(tmp_path, capsys, model=f'init = "{copy}"')
    assert "trained model 'molplat-cgcnn:cgcnn'" in line and "start from a run of the same model" in line


def test_init_where_nothing_matches(tmp_path, capsys, other_run):
    """A run of the same model whose checkpoint holds no parameter of this one's names."""
    from molplat.rundir import write_checkpoint

    copy = tmp_path / "copy"
    shutil.copytree(other_run, copy, ignore=shutil.ignore_patterns(".lock*"))
    state = read_checkpoint(copy / "checkpoints" / "best.ckpt")
    renamed = {k.replace("model.", "model.old_", 1): v for k, v in state.state_dict.items()}
    write_checkpoint(copy / "checkpoints" / "best.ckpt", renamed, state.heads, state.statistics, 0, None)
    line = check_bad(tmp_path, capsys, model=f'init = "{copy}"')
    assert "[model] init: no parameter of" in line and "matches this model in name and shape" in line


def test_unknown_freeze_name_has_a_close_match(tmp_path, capsys, other_run):
    line = check_bad(tmp_path, capsys, model=f'init = "{other_run}"\nfreeze = ["embeding"]')
    assert "[model] freeze: 'embeding' names no block of the model; did you mean 'embedding'?" in line


def test_freeze_without_init(tmp_path, capsys):
    line = check_bad(tmp_path, capsys, model='freeze = ["embedding"]')
    assert "[model] freeze: freezing needs weights to keep" in line


def test_freeze_everything(tmp_path, capsys, other_run):
    line = check_bad(tmp_path, capsys, model=f'init = "{other_run}"\nfreeze = ["embedding", "interactions", '
                                              f'"output"]')
    assert "freezes every parameter" in line


def test_an_active_pool_that_holds_back_nothing(tmp_path, capsys):
    line = check_bad(tmp_path, capsys, trainer="active_pool = 0.001")
    assert "[trainer] active_pool: 0.001 of" in line and "leaves the pool empty" in line


def test_an_active_pool_beyond_its_bound(tmp_path, capsys):
    line = check_bad(tmp_path, capsys, trainer="active_pool = 1.0")
    assert "[trainer] active_pool: 1.0 is above the maximum 0.95" in line


def test_active_sampling_under_ddp_moves_the_same_structures_on_both_ranks(pair, tmp_path):
    """The ddp backend runs the same loop in 2 real processes: rank 0 chooses, both ranks train on the grown
    set (a rank with another set would train a different number of batches and hang or fail)."""
    pytest.importorskip("molplat_ddp")
    import subprocess
    import sys

    import tomli_w

    spec = dict(pair["finetune_spec"])
    spec["dataset"] = {**spec["dataset"], "path": str(EXAMPLES / "data" / "qm9-xtb.extxyz")}
    spec["model"] = {**spec["model"], "init": str(pair["pretrain"])}
    spec["trainer"] = {**spec["trainer"], "name": "ddp", "devices": 2, "accelerator": "cpu"}
    spec["output"] = {"dir": str(tmp_path / "runs"), "plots": False}
    path = tmp_path / "ddp.toml"
    path.write_text(tomli_w.dumps(spec))
    done = subprocess.run([str(Path(sys.executable).parent / "molplat"), "run", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = list((tmp_path / "runs").iterdir())
    record = json.loads((run / ACTIVE_FILE).read_text())
    assert [len(r["moved"]) for r in record["rounds"]] == [4, 4]
    state = read_checkpoint(run / "checkpoints" / "last.ckpt").raw["callbacks"]
    (pool,) = [v["pool"] for v in state.values() if "pool" in v]
    moved = {m["position"] for r in record["rounds"] for m in r["moved"]}
    assert len(pool) == record["initial_pool"] - 8 and not moved & set(pool)
    assert torch.equal(model_state(pair["pretrain"])["embedding.weight"], model_state(run)["embedding.weight"])
