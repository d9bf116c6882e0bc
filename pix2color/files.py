"""Files a run writes, written so that an interruption never leaves half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_text_atomically(path: str | os.PathLike, text: str) -> bool:
    """Write `text` so that a reader (another worker, or the next run after this one was killed
    mid-write) sees the old file or the new one, never half of one.

    A file that already holds `text` is left as it is (False): a rerun with nothing to do writes
    nothing, and a file hard-linked elsewhere is never written through.
    """
    path, data = Path(path), text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass  # missing or unreadable: written anew
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return True


def write_json_atomically(path: str | os.PathLike, value, indent: int | None = None) -> bool:
    """`value` as JSON, by `write_text_atomically`."""
    return write_text_atomically(path, json.dumps(value, indent=indent) + "\n")
