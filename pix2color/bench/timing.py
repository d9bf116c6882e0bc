"""Timing helpers shared by the benchmarks, and the machine line every report starts with."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

import tensorflow as tf


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}"
    )


def call_seconds(function, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls (no warm-up)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up (tracing, delegate set-up)
    return statistics.median(call_seconds(function, repeats))


def interleaved_medians(functions: dict, repeats: int) -> dict:
    """Median seconds of each function, timed in turn (one call of each per round), so that a
    slow moment of the machine falls on all of them rather than on one."""
    for function in functions.values():
        function()  # warm-up (tracing, delegate set-up)
    times: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def write_json_lines(path: str, rows: list[dict]) -> None:
    """One JSON record per row, each with the machine line; says where. A new file only (the
    command checked before its work that none was there)."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.writelines(json.dumps({**row, "machine": machine()}) + "\n" for row in rows)
    print(f"wrote {path}")
