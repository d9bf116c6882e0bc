"""The benchmarks run end to end at toy sizes and print the lines their readers parse.

`shared/bench/side_by_side.sh` greps `python -m pix2color.bench train` for "machine" and
"median"; the docs quote every command's lines. Figures here are meaningless (tiny images, a busy
machine): only the lines' presence and shape are checked.
"""

import json
import re
import subprocess
import sys

import pytest

from pix2color.bench import timing
from pix2color.bench.__main__ import main as bench_main
from pix2color.bench.train import print_row

SECONDS = r"\d+\.\d+"


def bench(*arguments, cwd):
    """`python -m pix2color.bench ARGUMENTS` in its own process, as the side-by-side script runs it."""
    done = subprocess.run([sys.executable, "-m", "pix2color.bench", *arguments], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def bench_here(*arguments, cwd, monkeypatch, capsys):
    """The same command in this process (TensorFlow is loaded already): its output lines."""
    monkeypatch.chdir(cwd)
    assert bench_main(list(arguments)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.slow  # three trainers built and traced
def test_bench_train_prints_one_median_line_per_configuration(tmp_path):
    lines = bench("train", "--image-size", "32", "--batch-size", "2", "--steps", "1", "--warmup", "1",
                  "--r1-every", "2", "--xla", "off", "--no-breakdown", "--json", "rows.jsonl", cwd=tmp_path)
    assert lines[0].startswith("machine: ") and "CPU cores, TensorFlow" in lines[0]
    assert lines[1] == "training step, image 32x32, batch 2, precision float32"
    medians = [line for line in lines if "median" in line]
    assert [line.split("  ")[0].strip() for line in medians] == ["R1 off", "R1 every step", "lazy R1 (every 2)"]
    for line in medians:
        assert re.search(rf"unet +XLA off +float32 +median {SECONDS} s/step +mean {SECONDS} s/step over \d+ steps", line), line
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [row["config"] for row in rows] == ["R1 off", "R1 every step", "lazy R1 (every 2)"]
    assert all(row["median_step_s"] > 0 and row["precision"] == "float32" for row in rows)


def test_a_timing_line_names_its_precision(capsys):
    """With P2C_TRAIN_ARGS="--precision bfloat16" the side-by-side script keeps these lines."""
    print_row({"config": "R1 every step", "generator": "unet", "xla": False, "precision": "bfloat16",
               "median_step_s": 1.5, "mean_step_s": 1.56, "first_step_s": 9.0}, 5)
    line = capsys.readouterr().out.strip()
    assert line.startswith("R1 every step") and re.search(r"unet +XLA off +bfloat16 +median 1\.50 s/step", line), line


def test_bench_data_compares_the_pipeline_with_a_training_step(tmp_path, monkeypatch, capsys):
    lines = bench_here("data", "--images", "4", "--width", "64", "--height", "48", "--image-size", "32", "--batch-size", "2",
                  "--batches", "3", cwd=tmp_path,
                       monkeypatch=monkeypatch, capsys=capsys)
    assert re.search(r"4 JPEGs 64x48 .*resize to 32", "\n".join(lines))
    assert any(line.startswith("training at 3.0 s/step consumes") for line in lines), lines


def test_bench_evaluate_times_the_command_against_the_network(tmp_path, monkeypatch, capsys):
    lines = bench_here("evaluate", "--images", "2", "--image-size", "32", "--repeats", "1", "--workdir", "work",
                       cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert any(re.match(rf"pix2color evaluate, 2 photos of 32x32, .*: {SECONDS} s end to end", line) for line in lines), lines
    assert any(re.search(rf"evaluate takes {SECONDS}x that", line) for line in lines), lines
    assert (tmp_path / "work" / "evaluation").is_dir()  # the real command ran


def test_bench_video_measures_flicker_with_and_without_the_stabiliser(tmp_path, small_generator_file, monkeypatch,
                                                                     capsys):
    lines = bench_here("video", "--model", str(small_generator_file), "--width", "64", "--height", "48", "--seconds", "1",
                  "--fps", "6", "--batch-size", "2", "--repeats", "1", "--json", "rows.jsonl", cwd=tmp_path,
                       monkeypatch=monkeypatch, capsys=capsys)
    for stabilise in ("off", "on"):
        assert any(re.match(rf"stabilise {stabilise}: {SECONDS} frames/s .*flicker {SECONDS}, PSNR {SECONDS} dB", line)
                   for line in lines), lines
    assert [json.loads(line)["config"] for line in (tmp_path / "rows.jsonl").read_text().splitlines()] == [
        "stabilise off", "stabilise on"]


def test_interleaved_medians_time_every_function_in_turns():
    calls = []
    medians = timing.interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert sorted(medians) == ["a", "b"] and all(value >= 0 for value in medians.values())
    assert calls == ["a", "b"] * 4  # a warm-up, then three rounds of one call each: turns, not blocks
