"""Records of a W&B offline run file (``run-ID.wandb``), read back without wandb's service.

The file is wandb's transaction log: a 7-byte header (':W&B', 0xBEE1, version), then 32 KiB
blocks of chunks (crc32, length, type: full / first / middle / last) that make up
protobuf ``Record`` messages (``wandb.proto.wandb_internal_pb2``). wandb 0.2x+ dropped its
Python reader (its core is in Go), so the test reads the format itself.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
FULL, LAST = 1, 4


def read_records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), (ident, magic)
    pos, chunks = 7, []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block padding
            pos += left
            continue
        chunks.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def offline_run(path: Path) -> dict:
    """The run's name, project, initial config, each logged history row and its exit code."""
    run, history = {}, []
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = dict(name=record.run.display_name, project=record.run.project,
                       config={item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return dict(run, history=history)
