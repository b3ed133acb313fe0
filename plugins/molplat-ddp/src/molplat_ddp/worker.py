"""A rank that ``molplat run`` started on this node: ``python -m molplat_ddp.worker`` with the run request on stdin.

It runs the same pipeline through the core's runner (``molplat.processes.run_rank``) as the
rank its environment names. It ends with one ``error:`` line on stderr when it fails
(rank 0 reports that line), and exits when the process that started it is gone, so a
killed rank 0 never leaves it behind.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from molplat.errors import MolplatError, ValidationError
from molplat.processes import RunRequest, run_rank

from molplat_ddp.processes import PARENT_VARIABLE


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def main() -> int:
    parent = os.environ.get(PARENT_VARIABLE)
    if parent:
        threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()
    try:
        run_rank(RunRequest.from_json(sys.stdin.read()))
    except ValidationError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return 2
    except MolplatError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return 1
    except BaseException as exc:  # noqa: BLE001 -- one line for rank 0, whatever it was
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
