"""The processes one run trains in: how a multi-process trainer backend and the runner meet.

A run normally lives in one process. A backend that trains in several (DDP) gives the
runner, before any run directory exists, a ``RunProcesses`` for this process: its rank,
the world size, and a way to hand rank 0's run-directory path to every rank. The runner
then lets rank 0 alone create (or open for ``--resume``) and lock the run directory and
write every file; the other ranks open it read-only, train, and return quietly.

A backend opts in with one optional method::

    def processes(self, request: RunRequest) -> RunProcesses: ...

``request`` says how to start this very run in another process (``run_rank`` runs it
there), for backends that launch their own local ranks the way torchrun does. Without
the method a run is one process (``SingleProcess``), exactly as before.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["RunProcesses", "RunRequest", "SingleProcess", "processes_of", "run_rank"]


@runtime_checkable
class RunProcesses(Protocol):
    """One process of a run: which rank it is and how ranks agree on the run directory."""

    rank: int
    world_size: int

    def share(self, value: str) -> str:
        """Rank 0's ``value`` on every rank; a collective: every rank calls it once, in the same order."""

    def close(self) -> None:
        """After the run, failed or not: free the process group; rank 0 waits for (or stops) ranks it started."""


class SingleProcess:
    """A run in this process alone (every backend without a ``processes`` method)."""

    rank = 0
    world_size = 1

    def share(self, value: str) -> str:
        return value

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class RunRequest:
    """How to start this run in another process: the pipeline as given, its folder, and ``--resume``.

    Plain data, so a backend can send it to a process it starts (``to_json``) and that
    process can run it with ``run_rank``. Relative paths in ``pipeline`` resolve against
    ``base_dir`` as they did for the first process.
    """

    pipeline: dict[str, Any]
    base_dir: str
    resume: str | None = None
    source: str = "<pipeline dict>"

    def to_json(self) -> str:
        return json.dumps({"pipeline": self.pipeline, "base_dir": self.base_dir, "resume": self.resume,
                           "source": self.source})

    @classmethod
    def from_json(cls, text: str) -> "RunRequest":
        data = json.loads(text)
        return cls(pipeline=data["pipeline"], base_dir=data["base_dir"], resume=data.get("resume"),
                   source=data.get("source", "<pipeline dict>"))


def processes_of(backend: Any, request: RunRequest) -> RunProcesses:
    """The backend's processes for ``request``, or ``SingleProcess`` for a backend without the hook."""
    hook: Callable[[RunRequest], RunProcesses] | None = getattr(backend, "processes", None)
    if hook is None:
        return SingleProcess()
    return hook(request)


def run_rank(request: RunRequest) -> dict[str, Any]:
    """Run ``request`` in this process as the rank its backend finds (an entry point for started ranks).

    The pipeline is validated again here (it was valid in the first process), then run
    through the same runner, quietly: a rank other than 0 writes nothing.
    """
    from molplat.pipeline.config import Pipeline
    from molplat.pipeline.runner import run_pipeline

    pipeline = Pipeline.load(request.pipeline, base_dir=Path(request.base_dir))
    pipeline.source = request.source
    return run_pipeline(pipeline, resume=request.resume, echo=lambda message: None, show_progress=False)
