"""Wall time of `molplat list-plugins` with every installed plugin, beside reference commands.

    .venv/bin/python benchmarks/list_plugins_time.py [--repeat 10]

Each command runs in a fresh interpreter, so the times include Python start-up and
every plugin module's import, which is what a user waits for.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (interpreter start-up)": [sys.executable, "-c", "pass"],
    "molplat list-plugins": [sys.executable, "-m", "molplat.cli", "list-plugins"],
    "molplat list-plugins --json": [sys.executable, "-m", "molplat.cli", "list-plugins", "--json"],
    "python -c 'import torch' (for scale)": [sys.executable, "-c", "import torch"],
}


def timed(command: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    listing = json.loads(subprocess.run(COMMANDS["molplat list-plugins --json"], check=True,
                                        capture_output=True, text=True).stdout)
    names = ", ".join(f"{p['name']} ({p['status']})" for p in listing)
    print(f"plugins: {names}\n")
    print(f"{'command':42s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for label, command in COMMANDS.items():
        t = timed(command, args.repeat)
        print(f"{label:42s} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f}")


if __name__ == "__main__":
    main()
