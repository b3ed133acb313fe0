"""Where this process stands in a DDP run, and the process group, set up before the run directory exists.

Three ways a run gets its processes:

- torchrun (Lightning's TorchElasticEnvironment detects it; it reads RANK, LOCAL_RANK,
  GROUP_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT): every rank runs ``molplat run``;
- SLURM with several tasks (``srun``; Lightning's SLURMEnvironment derives the ranks and the
  main address and port from the SLURM_* variables): every rank runs ``molplat run``;
- neither: this process is rank 0 and starts ranks 1..devices-1 on this node itself, as
  ``python -m molplat_ddp.worker`` with the variables torchrun would set (and
  MOLPLAT_DDP_PARENT, which marks them as started ranks: they never start ranks themselves).

The process group is initialised here, with the values Lightning's own environment
classes derive, so the Lightning Trainer (which skips initialisation when a group
exists) trains in the very same group.
"""
from __future__ import annotations

import collections
import datetime
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from molplat.errors import RunError
from molplat.processes import RunRequest

#: seconds rank 0 gives the ranks it started to finish after it has, before stopping them
FINISH_GRACE = 60.0
#: environment variable naming the process that started a worker (it exits when that one is gone)
PARENT_VARIABLE = "MOLPLAT_DDP_PARENT"


@dataclass(frozen=True)
class Place:
    """This process's place in the run: ranks, world size and the main process's address."""

    rank: int
    local_rank: int
    node_rank: int
    world_size: int
    address: str
    port: int
    launcher: str  # "torchrun", "slurm", "local" or "single"


def external_place() -> Place | None:
    """The place torchrun or SLURM gave this process, read through Lightning's environments; None if neither."""
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if PARENT_VARIABLE in os.environ:  # a rank that rank 0 started here (it never starts ranks itself)
        env_of = os.environ
        return Place(int(env_of["RANK"]), int(env_of["LOCAL_RANK"]), int(env_of.get("GROUP_RANK", 0)),
                     int(env_of["WORLD_SIZE"]), env_of["MASTER_ADDR"], int(env_of["MASTER_PORT"]), "local")
    if TorchElasticEnvironment.detect():
        env: Any = TorchElasticEnvironment()
        launcher = "torchrun"
    elif SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        env = SLURMEnvironment(auto_requeue=False)
        launcher = "slurm"
    else:
        return None
    return Place(env.global_rank(), env.local_rank(), env.node_rank(), env.world_size(), env.main_address,
                 env.main_port, launcher)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalRanks:
    """Ranks 1..n-1 on this node, started by rank 0; their last stderr line is kept for a one-line report."""

    def __init__(self, request: RunRequest, world_size: int, port: int) -> None:
        self.processes: dict[int, subprocess.Popen] = {}
        self.last_lines: dict[int, collections.deque] = {}
        payload = request.to_json().encode()
        for rank in range(1, world_size):
            env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                       LOCAL_RANK=str(rank), GROUP_RANK="0", NODE_RANK="0", WORLD_SIZE=str(world_size),
                       LOCAL_WORLD_SIZE=str(world_size), **{PARENT_VARIABLE: str(os.getpid())})
            process = subprocess.Popen([sys.executable, "-m", "molplat_ddp.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            assert process.stdin is not None
            process.stdin.write(payload)
            process.stdin.close()
            lines: collections.deque = collections.deque(maxlen=20)
            threading.Thread(target=_drain, args=(process.stderr, lines), daemon=True).start()
            self.processes[rank], self.last_lines[rank] = process, lines

    def failure(self, wait: float = 0.0) -> str | None:
        """``rank R failed: <its last error line>`` for the first rank that exited with an error, waiting up to
        ``wait`` seconds for one to exit."""
        deadline = time.monotonic() + wait
        while True:
            for rank, process in self.processes.items():
                code = process.poll()
                if code not in (None, 0):
                    return f"rank {rank} failed (exit {code}): {self._last_line(rank, process)}"
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def _last_line(self, rank: int, process: subprocess.Popen) -> str:
        try:
            process.wait(timeout=2)  # the drain thread reads to the end of the pipe
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.1)
        lines = [line for line in self.last_lines[rank] if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        line = (errors or lines or ["no message"])[-1]
        return line.removeprefix("error:").strip()[:500]

    def stop(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for every rank to finish, then stop the rest (never leave one behind)."""
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _drain(stream: Any, lines: collections.deque) -> None:
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode(errors="replace").rstrip())
    stream.close()


class DDPProcesses:
    """``molplat.processes.RunProcesses`` for the ddp backend: the place, the group, and ranks it started."""

    def __init__(self, place: Place, backend: str, timeout: datetime.timedelta,
                 local: LocalRanks | None = None) -> None:
        self.place, self.backend, self.timeout, self.local = place, backend, timeout, local
        self.rank, self.world_size = place.rank, place.world_size
        self._objects: Any = None  # the gloo group that carries Python objects (the default one unless NCCL)
        self._owns_group = False
        #: set when training finished here: the ranks this process started then get time to finish too
        self.trained = False

    def connect(self) -> None:
        """Initialise the process group (rank 0 watches the ranks it started while it waits for them)."""
        import torch.distributed as dist

        if self.world_size == 1:
            return
        if dist.is_initialized():
            raise RunError("a torch.distributed process group already exists in this process; run one ddp "
                           "pipeline per process")
        url = f"tcp://{self.place.address}:{self.place.port}"
        outcome: list[BaseException | None] = []

        def init() -> None:
            try:
                dist.init_process_group(self.backend, init_method=url, rank=self.rank, world_size=self.world_size,
                                        timeout=self.timeout)
                outcome.append(None)
            except BaseException as exc:  # reported by the main thread
                outcome.append(exc)

        thread = threading.Thread(target=init, daemon=True)
        thread.start()
        deadline = time.monotonic() + self.timeout.total_seconds()
        while thread.is_alive():
            thread.join(timeout=0.2)
            if self.local is not None and thread.is_alive():
                failed = self.local.failure()
                if failed:
                    raise RunError(f"[trainer] ddp: {failed}")
            if time.monotonic() > deadline:
                raise RunError(f"[trainer] ddp: rank {self.rank} waited {self.timeout} for the other "
                               f"{self.world_size - 1} processes at {url}; start every rank, or raise timeout_minutes")
        if outcome and outcome[0] is not None:
            exc = outcome[0]
            raise RunError(f"[trainer] ddp: rank {self.rank} cannot join the process group at {url}: "
                           f"{type(exc).__name__}: {_first_line(exc)}") from exc
        self._owns_group = True
        self._objects = dist.new_group(backend="gloo") if self.backend != "gloo" else None

    @property
    def objects_group(self) -> Any:
        return self._objects

    def share(self, value: str) -> str:
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        try:
            dist.broadcast_object_list(box, src=0, group=self._objects)
        except Exception as exc:
            raise self.failed(exc) from exc
        return str(box[0])

    def failed(self, exc: BaseException, wait: float = 10.0, fallback: BaseException | None = None) -> BaseException:
        """One line for an error that a collective raised: the rank that failed first, when this process started
        it (waiting up to ``wait`` seconds for it to exit), else ``fallback`` or a line naming ``exc``."""
        failed = self.local.failure(wait=wait) if self.local is not None else None
        if failed:
            return RunError(f"[trainer] ddp: {failed}")
        if fallback is not None:
            return fallback
        return RunError(f"[trainer] ddp: rank {self.rank} stopped: another process of the run failed or stopped "
                        f"({type(exc).__name__}: {_first_line(exc)}); its own message says why")

    def close(self) -> None:
        import torch.distributed as dist

        if self._owns_group and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # a group whose peers are gone; nothing more to free here
                pass
            self._owns_group = False
        if self.local is not None:
            self.local.stop(FINISH_GRACE if self.trained else 0.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
