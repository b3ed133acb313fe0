"""Starting a run from another run's weights (``[model] init``), with named blocks frozen (``[model] freeze``).

What is loaded: the *parameters* of the other run's model (its best checkpoint, read
with ``weights_only``) whose names and shapes match this run's model. Everything else
stays as this run built it: parameters whose shape differs (a head with another number
of outputs) or that the other run lacks, the model's buffers (built from this run's
settings and statistics), and the task's target scaling and per-element references,
which are fitted on this run's own training split. So a model pre-trained on QM9
energies starts fine-tuning on an xTB set with its learnt features and the xTB set's
own energy scale.

Frozen parameters get ``requires_grad = False``: the core's Lightning loop leaves them
out of the optimiser, so they stay bit-identical, and DDP ignores them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from molplat.errors import ValidationError
from molplat.plugins import close_match
from molplat.rundir import BEST, CHECKPOINT_DIR, PIPELINE_FILE, RunDirectory, read_checkpoint

MODEL_PREFIX = "model."


def _same_model(stored: str, qualified: str) -> bool:
    """``DIST:NAME`` names compare whole; a bare stored name compares with the bare name."""
    if ":" in stored:
        return stored == qualified
    return stored == qualified.rpartition(":")[2]


@dataclass
class InitReport:
    """What ``InitialWeights.apply`` did: the parameter names loaded, left new, and frozen."""

    source: str
    checkpoint: str
    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    freeze: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.source, "checkpoint": self.checkpoint, "loaded": self.loaded, "new": self.new,
                "frozen": self.frozen, "freeze": self.freeze}

    def line(self) -> str:
        """The one line ``molplat run`` prints."""
        total = len(self.loaded) + len(self.new)
        text = f"init: loaded {len(self.loaded)} of {total} parameter tensors from {self.source}"
        if self.new:
            shown = ", ".join(self.new[:4]) + (f" and {len(self.new) - 4} more" if len(self.new) > 4 else "")
            text += f"; new: {shown}"
        if self.freeze:
            text += f"; frozen: {', '.join(self.freeze)} ({len(self.frozen)} tensors)"
        return text


@dataclass
class InitialWeights:
    """The model parameters of another run and the blocks to freeze; ``read`` checks the run directory."""

    source: Path
    checkpoint: Path
    parameters: dict[str, torch.Tensor]
    freeze: tuple[str, ...] = ()

    @classmethod
    def read(cls, run_dir: str | Path, model_name: str, freeze: list[str] | tuple[str, ...] = (),
             where: str = "[model] init") -> "InitialWeights":
        """Read ``run_dir``'s best checkpoint; a missing folder, a non-run, a damaged checkpoint or another model
        is one ValidationError line naming ``where``."""
        path = newest_run(Path(run_dir))
        if not path.exists():
            raise ValidationError(f"{where}: {path} does not exist; give the run directory that `molplat run` "
                                  f"printed for the pre-training run, or DIR/NAME for the newest run named NAME "
                                  f"(relative paths are read from the pipeline file's folder)")
        if not path.is_dir() or not (path / PIPELINE_FILE).is_file():
            raise ValidationError(f"{where}: {path} is not a molplat run directory (no {PIPELINE_FILE}); give the "
                                  f"folder that `molplat run` printed")
        stored = RunDirectory(path).read_pipeline().get("model", {})
        stored_name = stored.get("name") if isinstance(stored, dict) else None
        if not isinstance(stored_name, str) or not _same_model(stored_name, model_name):
            raise ValidationError(f"{where}: {path} trained model {stored_name!r}, this pipeline trains "
                                  f"{model_name!r}; start from a run of the same model or remove init")
        checkpoint = path / CHECKPOINT_DIR / BEST
        try:
            state = read_checkpoint(checkpoint, resume="train that run to its end, or start from another run")
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.problems[0]}") from None
        parameters = {k[len(MODEL_PREFIX):]: v for k, v in state.state_dict.items()
                      if k.startswith(MODEL_PREFIX) and isinstance(v, torch.Tensor)}
        return cls(path, checkpoint, parameters, tuple(freeze))

    # -- matching ------------------------------------------------------------------------------
    def matching(self, model: torch.nn.Module) -> tuple[list[str], list[str]]:
        """Names of ``model``'s parameters that the other run provides (same name and shape), and the rest."""
        loaded, new = [], []
        for name, parameter in model.named_parameters():
            other = self.parameters.get(name)
            (loaded if other is not None and tuple(other.shape) == tuple(parameter.shape) else new).append(name)
        return loaded, new

    def problems(self, model: torch.nn.Module, where: str = "[model]") -> list[str]:
        """Why this init and freeze cannot apply to ``model``: nothing matches, an unknown or a new block frozen,
        or nothing left to train."""
        loaded, new = self.matching(model)
        if not loaded:
            return [f"{where} init: no parameter of {self.source}'s model matches this model in name and shape "
                    f"(its settings differ); use the same model settings as that run or remove init"]
        found: list[str] = []
        modules = [n for n, _ in model.named_modules() if n]
        names = modules + [n for n, _ in model.named_parameters()]
        frozen: set[str] = set()
        for prefix in self.freeze:
            hits = frozen_by(prefix, [n for n, _ in model.named_parameters()])
            if not hits:
                hint = close_match(prefix, names) or f"; blocks of this model: {', '.join(_top_blocks(modules))}"
                found.append(f"{where} freeze: {prefix!r} names no block of the model{hint}")
                continue
            fresh = [n for n in hits if n in new]
            if fresh:
                found.append(f"{where} freeze: {prefix!r} holds {fresh[0]}, which {self.source} does not provide "
                             f"(name or shape differs), so it would stay random; freeze only loaded blocks")
            frozen.update(hits)
        if not found and frozen and len(frozen) == len(loaded) + len(new):
            found.append(f"{where} freeze: {', '.join(self.freeze)} freezes every parameter, so nothing would "
                         f"train; leave at least the output block unfrozen")
        return found

    def apply(self, model: torch.nn.Module) -> InitReport:
        """Copy the matching parameters into ``model`` and freeze the named blocks; refuse what ``problems`` finds."""
        found = self.problems(model)
        if found:
            raise ValidationError(found)
        loaded, new = self.matching(model)
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name in loaded:
                parameters[name].copy_(self.parameters[name].to(parameters[name].dtype))
        frozen = sorted({n for prefix in self.freeze for n in frozen_by(prefix, list(parameters))})
        for name in frozen:
            parameters[name].requires_grad_(False)
        return InitReport(str(self.source), str(self.checkpoint), loaded, new, frozen, list(self.freeze))


def newest_run(path: Path) -> Path:
    """``path`` itself when it exists; else the newest ``path-YYYYmmdd-HHMMSS[-N]`` run directory beside it.

    So a fine-tuning pipeline can name its pre-training run by ``[output] dir`` and
    ``name`` (``init = "runs/qm9-pretrain"``) without knowing when that run started.
    """
    if path.exists() or not path.parent.is_dir():
        return path
    pattern = re.compile(re.escape(path.name) + r"-(\d{8}-\d{6})(?:-(\d+))?")
    runs = []
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and (candidate / PIPELINE_FILE).is_file():
            runs.append(((match.group(1), int(match.group(2) or 1)), candidate))
    return max(runs)[1] if runs else path


def frozen_by(prefix: str, parameter_names: list[str]) -> list[str]:
    """The parameters under module ``prefix`` (``interactions.0`` holds ``interactions.0.dense.weight``)."""
    return [n for n in parameter_names if n == prefix or n.startswith(prefix + ".")]


def _top_blocks(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules})


def trainable_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """What an optimiser should carry: the parameters that are not frozen."""
    return [p for p in module.parameters() if p.requires_grad]


@dataclass
class InitialisedModel:
    """A model factory that starts every model it builds from ``weights`` (a class, so a job stays picklable)."""

    build: Any
    weights: InitialWeights

    def __call__(self) -> torch.nn.Module:
        model = self.build()
        self.weights.apply(model)
        return model
