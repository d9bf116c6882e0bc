"""The benchmarks' command line: `python -m pix2color.bench COMMAND` (see the package's docstring).

Arguments are checked before TensorFlow loads; each command's module is imported after that, so
a bad argument is refused at once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import pix2color.bench
from pix2color.cli import ArgumentParser, command, non_negative_int, positive_float, positive_int, stabiliser_strength
from pix2color.config import GENERATORS
from pix2color.quiet import import_quietly
from pix2color.training.precision import PRECISIONS


def generators(choice: str) -> tuple[str, ...]:
    """The generators to time: the U-Net always, the ResNet-18 U-Net beside it when asked."""
    return ("unet",) if choice == "unet" else ("unet", choice)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m pix2color.bench", description=pix2color.bench.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="seconds per training step")
    train.add_argument("--image-size", type=positive_int, default=256)
    train.add_argument("--batch-size", type=positive_int, default=4)
    train.add_argument("--steps", type=positive_int, default=5, help="timed steps per configuration")
    train.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps first (tracing, XLA compile)")
    train.add_argument("--r1-every", type=positive_int, default=16, help="k of the lazy R1 configuration")
    train.add_argument("--xla", choices=("both", "off", "on"), default="both")
    train.add_argument("--lazy-xla", action="store_true", help="also time lazy R1 under XLA (compiles for long)")
    train.add_argument("--no-breakdown", action="store_true", help="skip timing G forward, D step and G step apart")
    train.add_argument("--trace", default=None, help="write a TensorFlow profiler trace of the first configuration")
    train.add_argument("--json", default=None, help="write one JSON record per configuration to this file")
    train.add_argument("--deterministic-ops", action="store_true", help="as pix2color train --deterministic-ops")
    train.add_argument("--precision", choices=PRECISIONS, default="float32", help="as pix2color train --precision")
    data = commands.add_parser("data", help="images/s through the input pipeline")
    data.add_argument("--images", type=positive_int, default=200)
    data.add_argument("--width", type=positive_int, default=640)
    data.add_argument("--height", type=positive_int, default=480)
    data.add_argument("--image-size", type=positive_int, default=256)
    data.add_argument("--batch-size", type=positive_int, default=4)
    data.add_argument("--batches", type=positive_int, default=100)
    data.add_argument("--step-seconds", type=positive_float, default=3.0, help="training step time to compare with")
    evaluate = commands.add_parser("evaluate", help="pix2color evaluate end to end vs the generator's latency")
    evaluate.add_argument("--model", default=None, help="run folder or .keras (default: an untrained 256 px U-Net)")
    evaluate.add_argument("--images", type=positive_int, default=168)
    evaluate.add_argument("--image-size", type=positive_int, default=256, help="the photos' size (and the untrained U-Net's)")
    evaluate.add_argument("--repeats", type=positive_int, default=7)
    evaluate.add_argument("--workdir", default=None, help="keep the photos and evaluation.md here")
    evaluate.add_argument("--feature-weights", default=None, metavar="WEIGHTS",
                          help="time FID / KID too, with these Inception-v3 weights (imagenet, none or a file); "
                               "default: without them (--no-fid)")
    web = commands.add_parser("web", help="the web app under load on loopback: poll answers, colorize uploads")
    web.add_argument("--model", default=None, help="run folder or .keras (default: an untrained 256 px U-Net)")
    web.add_argument("--participants", type=positive_int, default=50)
    web.add_argument("--pairs", type=positive_int, default=20)
    web.add_argument("--clients", type=positive_int, default=8)
    web.add_argument("--requests", type=positive_int, default=4, help="uploads per colorize client")
    infer = commands.add_parser("infer", help="size, latency and accuracy per export format")
    infer.add_argument("--model", default=None, help="run folder or .keras (default: an untrained generator)")
    infer.add_argument("--image-size", type=positive_int, default=256, help="for the untrained generator")
    infer.add_argument("--repeats", type=positive_int, default=5)
    infer.add_argument("--images", type=positive_int, default=8, help="sample photos for the PSNR column")
    infer.add_argument("--workdir", default=None, help="keep the exported files here")
    infer.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                       help="bfloat16 or float16: also time the Keras and SavedModel generator computing in it "
                            "(variables and output float32), beside the float32 formats")
    video = commands.add_parser("video", help="colorize a clip made from the sample photos: fps, flicker, PSNR")
    video.add_argument("--model", default=None, help="run folder, .keras or SavedModel (default: an untrained 256 px U-Net)")
    video.add_argument("--width", type=positive_int, default=640)
    video.add_argument("--height", type=positive_int, default=360)
    video.add_argument("--seconds", type=positive_float, default=6.0, help="clip length (three shots)")
    video.add_argument("--fps", type=positive_int, default=24)
    video.add_argument("--batch-size", type=positive_int, default=8)
    video.add_argument("--strength", type=stabiliser_strength, default=None, help="stabiliser strength (default: the CLI's)")
    video.add_argument("--repeats", type=positive_int, default=5, help="timings of the network alone")
    video.add_argument("--workdir", default=None, help="keep the clip and both outputs here")
    video.add_argument("--json", default=None, help="write one JSON record per configuration to this file")
    for command in (train, infer):
        command.add_argument("--generator", choices=GENERATORS, default="unet",
                             help="resnet18: the ResNet-18 U-Net too, after the U-Net, in the same process")
    return parser


def run_train(args) -> None:
    from pix2color.bench.timing import write_json_lines
    from pix2color.bench.train import bench_train
    from pix2color.training import precision
    from pix2color.training.run import use_deterministic_ops

    if args.deterministic_ops:
        use_deterministic_ops()
        print("deterministic ops (op determinism, one inter-op thread, no arithmetic rewrites)")
    choice = precision.resolve(args.precision, precision.this_machine() if args.precision == "auto" else None)
    print(f"training step, image {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"precision {choice.precision}" + (f" ({choice.reason})" if choice.reason else ""))
    rows = bench_train(args.image_size, args.batch_size, args.steps, args.warmup, args.r1_every, args.xla,
                       args.lazy_xla, generators(args.generator), not args.no_breakdown, args.trace,
                       choice.precision)
    if args.json:
        write_json_lines(args.json, rows)


def run_data(args) -> None:
    from pix2color.bench.data import bench_data

    bench_data(args.images, args.width, args.height, args.image_size, args.batch_size, args.batches,
               args.step_seconds)


def run_evaluate(args) -> None:
    from pix2color.bench.evaluate import bench_evaluate

    bench_evaluate(args.model, args.images, args.image_size, args.repeats, args.workdir, args.feature_weights)


def run_web(args) -> None:
    from pix2color.bench.web import bench_colorize_load, bench_poll

    bench_poll(args.participants, args.pairs)
    bench_colorize_load(args.model, args.clients, args.requests)


def run_video(args) -> None:
    from pix2color.bench.timing import write_json_lines
    from pix2color.bench.video import bench_video
    from pix2color.colorizing.stabilise import DEFAULT_STRENGTH

    strength = DEFAULT_STRENGTH if args.strength is None else args.strength
    rows = bench_video(args.model, args.width, args.height, args.seconds, args.fps, args.batch_size, strength,
                       args.repeats, args.workdir)
    if args.json:
        write_json_lines(args.json, rows)


def run_infer(args) -> None:
    from pix2color.bench.infer import bench_infer

    bench_infer(args.model, args.image_size, args.repeats, args.images, args.workdir, generators(args.generator),
                args.precision)


COMMANDS = {"train": run_train, "data": run_data, "evaluate": run_evaluate, "web": run_web, "video": run_video,
            "infer": run_infer}


MIN_CLIP_FRAMES = 6  # three shots of at least two frames


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """What a run needs, checked before any work: a bad choice is one line, and no file the
    benchmark did not make is replaced (--json names a new file; --workdir a new or empty folder)."""
    from pathlib import Path

    if args.command == "video" and args.seconds * args.fps < MIN_CLIP_FRAMES:
        parser.error(f"--seconds x --fps must give at least {MIN_CLIP_FRAMES} frames (the clip has three shots)")
    if getattr(args, "model", None) and not Path(args.model).exists():
        parser.error(f"--model {args.model}: no such file or folder")
    json_path = getattr(args, "json", None)
    if json_path:
        if Path(json_path).exists():
            parser.error(f"--json {json_path}: exists; left as it is (name a new file)")
        if not Path(json_path).resolve().parent.is_dir():
            parser.error(f"--json {json_path}: its folder does not exist")
    workdir = getattr(args, "workdir", None)
    if workdir and Path(workdir).exists() and (not Path(workdir).is_dir() or any(Path(workdir).iterdir())):
        parser.error(f"--workdir {workdir}: give a new or empty folder (the benchmark writes its files there)")


@command("python -m pix2color.bench")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    import_quietly()
    import tensorflow as tf  # after the arguments are checked: a bad one is refused without loading it

    from pix2color.bench.timing import machine

    tf.get_logger().setLevel("ERROR")  # retracing notices: each configuration is a new model
    print(f"machine: {machine()}")
    # Every folder a benchmark makes for itself (without --workdir) goes in one scratch folder,
    # removed at the end, whatever happens.
    with tempfile.TemporaryDirectory(prefix="pix2color-bench-") as scratch:
        tempfile.tempdir = scratch
        try:
            COMMANDS[args.command](args)
        finally:
            tempfile.tempdir = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
