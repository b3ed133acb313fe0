"""Reading an offline wandb run back: its config, per-step history and summary.

An offline run keeps everything in one transaction log, ``offline-run-*/run-ID.wandb``:
a 7-byte header (``:W&B``, magic 0xBEE1, version 0) and then LevelDB-style records in
32 KiB blocks (CRC32C, 2-byte length, 1-byte type: full, first, middle, last), each
payload a ``wandb_internal_pb2.Record``. wandb >= 0.20 moved its own reader into the Go
service, so this module reads the log with wandb's protobuf definitions; `wandb sync`
uploads the same file.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def payloads(path: str | Path) -> Iterator[bytes]:
    """The raw record payloads of a ``.wandb`` file, in order (a torn last record is dropped)."""
    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{path}: not a wandb transaction log (header {data[:7]!r})")
    position, pending = len(HEADER), b""
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER:  # block trailer: padding
            position += left_in_block
            continue
        length, kind = struct.unpack_from("<HB", data, position + 4)
        chunk = data[position + RECORD_HEADER:position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind == 0 and length == 0:  # zero padding at the end of a block
            position += BLOCK - position % BLOCK if position % BLOCK else 0
            continue
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


@dataclass
class OfflineRun:
    """What an offline run recorded: config (nested dicts), history rows by step, summary, exit code."""

    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_offline_run(path: str | Path) -> OfflineRun:
    """The config, history and summary of one ``run-ID.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    run = OfflineRun()
    for payload in payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        which = record.WhichOneof("record_type")
        if which in ("run", "config"):  # the run record carries the config given to wandb.init
            updates = record.run.config.update if which == "run" else record.config.update
            for item in updates:
                value = json.loads(item.value_json)
                run.config[_key(item)] = value.get("value", value) if isinstance(value, dict) else value
        elif which == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif which == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
        elif which == "exit":
            run.exit_code = int(record.exit.exit_code)
    return run
