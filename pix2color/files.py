"""Files a run writes, written so that an interruption never leaves half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomically(path: str | os.PathLike, value, indent: int | None = None) -> None:
    """Write `value` as JSON so that a reader (another worker, or the next run after this one was
    killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=indent) + "\n")
    os.replace(partial, path)
