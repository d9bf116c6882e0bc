"""Every command of the README, given bad inputs: one plain line on stderr, the right exit
status, no traceback, and no file that was there before changed."""

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, sample_photo_paths
from helpers import file_hashes, one_line

from pix2color.export.one_file import DEVICE_RUNNER, device_runner

PIX2COLOR = [sys.executable, "-m", "pix2color.cli"]
TRAIN = [sys.executable, str(ROOT / "train.py")]
EXPORT = [sys.executable, str(ROOT / "export" / "export_model.py")]
TFLITE = [sys.executable, "W/colorize_tflite.py"]  # the device's runner, as `export` writes it
BENCH = [sys.executable, "-m", "pix2color.bench"]
slow = pytest.mark.slow  # the command imports TensorFlow before it can refuse (~5 s each)
SCRIPTS = Path(__file__).with_name("scripts")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_generator_file):
    """What the commands are pointed at: a photo, models good and bad, run and poll folders gone wrong."""
    folder = tmp_path_factory.mktemp("workspace")
    shutil.copy(sample_photo_paths(1)[0], folder / "photo.jpg")
    shutil.copy(small_generator_file, folder / "model.keras")
    (folder / DEVICE_RUNNER).write_bytes(device_runner())
    (folder / "corrupt.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "corrupt.tflite").write_bytes(bytes(2000))
    (folder / "a_file").write_text("not a folder\n")
    for name, content in (("damaged_run", "{"), ("list_run", "[]"), ("empty_run", "")):
        (folder / name / "checkpoints").mkdir(parents=True)
        (folder / name / "run.json").write_text(content)
    (folder / "interrupted_run").mkdir()
    (folder / "interrupted_run" / "run.json").write_text('{"image_size": 32}')
    (folder / "interrupted_run" / "history.csv").write_text("")
    (folder / "not_a_run").mkdir()
    (folder / "not_a_run" / "history.csv").write_text("epoch,loss\n0,1.0\n")
    (folder / "not_a_run" / "losses.png").write_bytes(b"the user's picture")
    (folder / "foreign").mkdir()
    (folder / "foreign" / "notes.txt").write_text("mine")
    (folder / "foreign" / "checkpoints" / "ckpt-7_temp").mkdir(parents=True)
    (folder / "foreign" / "checkpoints" / "ckpt-7_temp" / "important.txt").write_text("mine too")
    (folder / "evaluated").mkdir()
    (folder / "evaluated" / "evaluation.md").write_text("my notes")
    (folder / "exported_by_me" / "savedmodel").mkdir(parents=True)  # not an export: a folder of the user's
    (folder / "exported_by_me" / "savedmodel" / "notes.txt").write_text("mine")
    (folder / "my_runner" / "tflite").mkdir(parents=True)
    (folder / "my_runner" / "tflite" / DEVICE_RUNNER).write_text("print('my own colorize_tflite.py')\n")
    (folder / "heic").mkdir()  # a folder of only photos pix2color cannot read
    (folder / "heic" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    (folder / "exported" / "tflite").mkdir(parents=True)
    (folder / "exported" / "tflite" / "generator_deterministic_float32.tflite").write_bytes(b"an earlier export")
    import keras

    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Dense(2)]).save(folder / "dense.keras")
    (folder / "photos").mkdir()
    (folder / "not_a_poll").mkdir()
    from pix2color.poll import storage

    pixels = np.zeros((16, 16, 3), np.uint8)
    storage.write_poll(folder / "poll", [storage.PollImages("p.jpg", pixels, pixels, pixels + 1)], "report")
    for name, content in (("empty_poll", b""), ("junk_poll", b"not a database\n" * 10)):
        (folder / name).mkdir()
        (folder / name / "poll.sqlite").write_bytes(content)
    return folder


# (command, expected exit status, words the one line on stderr must hold); W = the workspace.
BAD_INPUTS = [
    (TRAIN + ["--lr", "-1"], 2, "--lr"),
    (TRAIN + ["--lambda-l1", "-1"], 2, "--lambda-l1"),
    (TRAIN + ["--steps-per-epoch", "0"], 2, "--steps-per-epoch"),
    (TRAIN + ["--image-size", "48"], 2, "power of two"),
    (TRAIN + ["--beta1", "1.5"], 2, "--beta1"),
    (TRAIN + ["--epochs", "ten"], 2, "--epochs"),
    (TRAIN + ["--seed", "-1"], 2, "--seed"),
    (TRAIN + ["--lambda-l1", "inf"], 2, "--lambda-l1"),
    (TRAIN + ["--precision", "float8"], 2, "--precision"),
    (TRAIN + ["--jit-compile", "--deterministic-ops"], 2, "--jit-compile and --deterministic-ops exclude each other"),
    (PIX2COLOR + ["ablation", "--precision", "float32,half"], 2, "--precision"),
    pytest.param(TRAIN + ["--data", "sample", "--out", "W/foreign"], 2, "holds other files", marks=slow),
    pytest.param(TRAIN + ["--data", "sample", "--strategy", "tpu", "--out", "W/tpu_run"], 2, "no TPU", marks=slow),
    (PIX2COLOR + ["train", "--val-fraction", "-0.1"], 2, "--val-fraction"),
    pytest.param(PIX2COLOR + ["train", "--data", "W/missing", "--out", "W/new_run"], 2, "no such folder", marks=slow),
    pytest.param(TRAIN + ["--data", "sample", "--out", "W/a_file"], 1, "cannot write to --out", marks=slow),
    pytest.param(TRAIN + ["--data", "sample", "--out", "W/damaged_run"], 2, "run.json is damaged", marks=slow),
    pytest.param(TRAIN + ["--data", "sample", "--out", "W/list_run"], 2, "not a pix2color run record", marks=slow),
    pytest.param(TRAIN + ["--data", "sample", "--out", "W/empty_run"], 2, "run.json is damaged", marks=slow),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--batch-size", "0"], 2, "--batch-size"),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/a_file"], 2, "not a folder"),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", ""], 2, "-o is empty (an unset variable?)"),
    (TRAIN + ["--data", "sample", "--out", ""], 2, "--out is empty"),
    (EXPORT + ["--model", "W/model.keras", "--out", ""], 2, "--out is empty"),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/a_file/\x1b[31mred"], 2, "'"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/photos", "--out", "."], 2,
     "is the current folder"),
    (TRAIN + ["--feature-weights", "none"], 2, "--feature-weights chooses the Inception-v3 weights of --val-fid"),
    pytest.param(TRAIN + ["--data", "sample", "--val-fid", "--feature-weights", "none", "--val-fraction", "0", "--out",
                          "W/fid_run"], 2, "--val-fid needs 4 validation images or more (0 here)", marks=slow),
    pytest.param(PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--data", "sample", "--limit", "3", "--out",
                              "W/eval"], 2, "FID and KID need 4 images or more (3 here); --no-fid", marks=slow),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--model", "W/missing"], 2, "--model"),
    pytest.param(PIX2COLOR + ["colorize", "W/heic", "-o", "W/out", "--model", "W/model.keras"], 1,
                 "IMG_0001.HEIC: a HEIC photo, a format pix2color cannot read", marks=slow),
    (EXPORT + ["--model", "W/model.keras", "--out", "W/exported_by_me", "--formats", "savedmodel", "--overwrite"], 2,
     "holds what no export writes (notes.txt)"),
    (EXPORT + ["--model", "W/model.keras", "--out", "W/my_runner", "--formats", "tflite", "--overwrite"], 2,
     "colorize_tflite.py holds what no export writes (a runner no export wrote, one edited since"),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--crf", "64"], 2, "--crf"),
    (PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--crf", "-1"], 2, "--crf"),
    pytest.param(PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--model", "W/corrupt.keras"], 2,
                 "not a Keras model file", marks=slow),
    pytest.param(PIX2COLOR + ["colorize", "W/missing.jpg", "-o", "W/out", "--model", "W/model.keras"], 2,
                 "no such file or no match", marks=slow),
    pytest.param(PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--model", "W/damaged_run"], 2,
                 "run.json is damaged", marks=slow),
    (PIX2COLOR + ["export", "--formats", "onnx"], 2, "--formats"),
    (EXPORT + ["--model", "W/model.keras", "--out", "W/a_file"], 2, "is a file"),
    (EXPORT + ["--model", "W/model.keras", "--out", "W/exported", "--formats", "tflite"], 2, "exists"),
    pytest.param(EXPORT + ["--model", "W/missing"], 2, "no such file", marks=slow),
    pytest.param(PIX2COLOR + ["export", "--model", "W/corrupt.keras", "--out", "W/exported_again"], 2,
                 "not a Keras model file", marks=slow),
    (TFLITE + ["W/corrupt.tflite", "W/photo.jpg", "-o", "W/out"], 2, "not a LiteRT"),
    (TFLITE + ["W/missing.tflite", "W/photo.jpg", "-o", "W/out"], 2, "no such file"),
    (TFLITE + ["W/model.keras", "W/photo.jpg", "-o", "W/out"], 2, "model.keras"),
    (TFLITE + ["W/corrupt.tflite", "W/photo.jpg", "--threads", "0"], 2, "--threads"),
    (TFLITE + ["W/corrupt.tflite", "W/photo.jpg", "--threads", "100000"], 2, "--threads"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--limit", "0"], 2, "--limit"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--limit", "-1"], 2, "--limit"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--batch-size", "0"], 2, "--batch-size"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--modes", "best"], 2, "--modes"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--seed", "-1"], 2, "--seed"),
    (PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--out", "W/evaluated"], 2, "evaluation.md exists"),
    pytest.param(PIX2COLOR + ["evaluate", "--model", "W/dense.keras", "--out", "W/eval"], 2,
                 "not a pix2color generator", marks=slow),
    pytest.param(PIX2COLOR + ["evaluate", "--model", "W/missing", "--out", "W/eval"], 2, "no such file", marks=slow),
    pytest.param(PIX2COLOR + ["evaluate", "--model", "W/model.keras", "--data", "W/photos", "--out", "W/eval"], 2,
                 "no image files", marks=slow),
    (PIX2COLOR + ["ablation", "--steps", "0"], 2, "--steps"),
    (PIX2COLOR + ["ablation", "--configs", "99"], 2, "--configs"),
    (PIX2COLOR + ["ablation", "--image-size", "100"], 2, "power of two"),
    (PIX2COLOR + ["plots", "W/interrupted_run"], 2, "no finished epoch"),
    (PIX2COLOR + ["plots", "W/missing"], 2, "not a pix2color run folder"),
    (PIX2COLOR + ["plots", "W/not_a_run"], 2, "not a pix2color run folder"),
    (PIX2COLOR + ["serve"], 2, "--model"),
    (PIX2COLOR + ["serve", "--model", "W/model.keras", "--port", "99999"], 2, "--port"),
    (PIX2COLOR + ["serve", "--model", "W/model.keras", "--port", "-1"], 2, "--port"),
    pytest.param(PIX2COLOR + ["serve", "--model", "W/model.keras", "--host", "999.1.1.1"], 2, "cannot listen",
                 marks=slow),
    pytest.param(PIX2COLOR + ["colorize", "W/photo.jpg", "-o", "W/out", "--model", "W/dense.keras"], 2,
                 "not a pix2color generator", marks=slow),
    pytest.param(PIX2COLOR + ["serve", "--model", "W/missing"], 2, "no such file", marks=slow),
    (PIX2COLOR + ["serve", "--poll", "W/not_a_poll"], 2, "not a poll folder"),
    (PIX2COLOR + ["turing", "results", "W/not_a_poll"], 2, "not a poll folder"),
    (PIX2COLOR + ["turing", "results", "W/empty_poll"], 2, "empty_poll/poll.sqlite: an empty file"),
    (PIX2COLOR + ["serve", "--poll", "W/junk_poll"], 2, "junk_poll/poll.sqlite: not an SQLite database"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/missing", "--out", "W/new_poll"], 2,
     "not a folder"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/photos", "--out", "W/new_poll",
                  "--pairs", "0"], 2, "--pairs"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/photos", "--out", "W/new_poll",
                  "--max-side", "15"], 2, "--max-side"),
    (PIX2COLOR + ["turing", "results", "W/poll", "--exclude", "2"], 2, "--exclude"),
    (PIX2COLOR + ["turing", "results", "W/poll", "--exclude", "0"], 2, "--exclude"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/photos", "--out", "W/damaged_run"],
     2, "holds other files"),
    (PIX2COLOR + ["turing", "build", "--model", "W/model.keras", "--photos", "W/photos", "--out", "W/a_file"],
     2, "exists and is not a folder"),
    (PIX2COLOR + ["nonsense"], 2, "unknown command"),
    (BENCH + ["nonsense"], 2, "nonsense"),
    (BENCH + ["data", "--images", "0"], 2, "--images"),
    (BENCH + ["data", "--step-seconds", "0"], 2, "--step-seconds"),
    (BENCH + ["video", "--repeats", "0"], 2, "--repeats"),
    (BENCH + ["video", "--seconds", "0.1"], 2, "frames"),
    (BENCH + ["video", "--strength", "1.5"], 2, "--strength"),
    (BENCH + ["video", "--model", "W/missing"], 2, "no such file"),
    (BENCH + ["video", "--workdir", "W/foreign"], 2, "new or empty folder"),
    (BENCH + ["train", "--json", "W/a_file"], 2, "exists; left as it is"),
    (BENCH + ["train", "--json", "W/missing/rows.jsonl"], 2, "its folder does not exist"),
]


def _id(entry) -> str:
    command = entry.values[0] if hasattr(entry, "values") else entry[0]
    program = {"pix2color.cli": "pix2color", "pix2color.bench": "bench"}.get(command[2], Path(command[1]).name)
    arguments = command[3:] if command[1] == "-m" else command[2:]
    return " ".join([program, *(arg.replace("W/", "") for arg in arguments)])


@pytest.mark.parametrize("command, status, words", BAD_INPUTS, ids=[_id(entry) for entry in BAD_INPUTS])
def test_a_bad_input_is_one_line_and_changes_nothing(workspace, command, status, words):
    command = [str(workspace) + part[1:] if part.startswith("W/") else part for part in command]
    before = file_hashes(workspace)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    line = one_line(result.stderr)
    assert result.returncode == status, (result.returncode, line)
    assert words in line, line
    assert file_hashes(workspace) == before


def test_building_a_command_line_parser_imports_no_tensorflow():
    """`--help` and refused flags answer at once: TensorFlow takes ~4 s to import."""
    result = subprocess.run([sys.executable, str(SCRIPTS / "build_every_parser.py")], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_help_shows_each_default_once_and_no_none():
    for command in [PIX2COLOR + [name] for name in ("train", "colorize", "export", "evaluate", "ablation", "serve",
                                                    "plots")] + [TRAIN]:
        result = subprocess.run(command + ["--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "(default: None)" not in text and "(default: False)" not in text, command
        assert not re.search(r"\(default: [^)]*\)\s*\(default:", text), command
        if command[-1] in ("evaluate", "export"):
            assert "(default: " in text, command
    assert "--epochs EPOCHS epochs to train in all (raise it to train on) (default: 15)" in text


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.5, 2.0])
@pytest.mark.parametrize("name", ["train", "colorize", "evaluate", "serve"])
def test_ctrl_c_during_start_up_is_one_line(workspace, tmp_path, name, after):
    arguments = {
        "train": ["train", "--data", "sample", "--image-size", "32", "--out", str(tmp_path / "run")],
        "colorize": ["colorize", str(workspace / "photo.jpg"), "-o", str(tmp_path / "out"), "--model",
                     str(workspace / "model.keras")],
        "evaluate": ["evaluate", "--model", str(workspace / "model.keras"), "--out", str(tmp_path / "eval")],
        "serve": ["serve", "--model", str(workspace / "model.keras"), "--port", "0"],
    }[name]
    process = subprocess.Popen(PIX2COLOR + arguments, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    line = one_line(stderr)
    assert process.returncode == 130 and "interrupted" in line, (process.returncode, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("stop, status, line", [(signal.SIGINT, 130, "pix2color serve: interrupted"),
                                                (signal.SIGTERM, 143, "pix2color serve: stopped by SIGTERM")])
def test_a_serving_server_stops_on_a_signal_in_one_line(workspace, stop, status, line):
    process = subprocess.Popen(PIX2COLOR + ["serve", "--model", str(workspace / "model.keras"), "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line_with_port = next(text for text in process.stdout if text.startswith("colorize page:"))
    port = int(re.search(r":(\d+)/", line_with_port).group(1))  # --port 0: the port the system chose
    assert port != 0
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status and stderr.strip() == line, (process.returncode, stderr)
