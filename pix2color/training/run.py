"""A whole training run: data, models, `fit`, checkpoints, logs, plots, and resuming.

Everything a run writes goes into one folder (`out`):

    run.json             the settings the run was started with (a resume must match them)
    checkpoints/         G, D, both optimizers, epochs and steps done (tf.train.CheckpointManager)
    history.csv          one row of train/validation metrics per epoch (Keras' CSVLogger)
    logs/                TensorBoard event files
    losses.png           loss curves, redrawn every epoch
    samples/epoch_N.png  gray | generated | original for fixed validation images
    generator.keras      the final generator
    workers/worker-N/    multi-worker runs: the other workers' own files (their image-scan cache)

Re-running with the same `out` resumes from the last checkpoint: the same epoch and step, the
optimizers' state restored, the data stream positioned after the last batch trained on, and the
dropout masks' random state restored, so the resumed run computes what the run left alone would
have (exactly, with `deterministic_ops`; to float rounding otherwise).

A run stops cleanly, with the newest checkpoint usable and one line saying why (`stopping`): on
SIGINT / SIGTERM (a checkpoint of the current step is written first), when a loss or a weight is
no longer finite (nothing non-finite is ever saved), or when the disk refuses a write.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import os
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from pix2color import networks
from pix2color.config import TrainConfig  # noqa: F401 - the options of a run, importable from here too
from pix2color.data import ImageSet, load_image_set, make_eval_dataset, make_train_dataset, preview_images
from pix2color.networks.cpu_layers import fast_layers
from pix2color.outputs import write_text_atomically
from pix2color.training import callbacks, checkpoints, distribute, gan, plots, precision, run_folder, stopping
from pix2color.training.best import Best, KeepBest, ValidationMeasures, stopped_early
from pix2color.training.stopping import OutputError, RunError, StopRequested

SAMPLE_GRID_IMAGES = 4
ADAM_EPSILON = 1e-8  # PyTorch's (the reference code's); Keras' default is 1e-7


@dataclass
class RunResult:
    out: Path
    epochs_done: int
    steps_done: int
    generator_path: Path
    image_set: ImageSet


def train(config: TrainConfig, log=print) -> RunResult:
    """Train (or resume training) as `config` says; returns where things are.

    Raises `stopping.RunError` subclasses, each with a one-line message: `StopRequested` after
    SIGINT / SIGTERM (a checkpoint of the current step written), `NotFiniteError` when the run
    diverged (nothing non-finite saved), `OutputError` when the run folder cannot be written.
    While it trains, the run folder is locked: a second trainer on it stops at once.
    """
    config.validate()
    out = Path(config.out)
    created = [folder for folder in [out, *out.absolute().parents] if not os.path.lexists(folder)]
    there = set(os.listdir(out)) if not created and out.is_dir() and not run_folder.is_remote(out) else None
    try:
        with stopping.StopSignals() as signals:  # from the start: a signal during set-up stops before step 1
            return _train(config, log, signals)
    except BaseException:
        _remove_if_nothing_trained(out, created, there)
        raise


def _remove_if_nothing_trained(out: Path, created: list[Path], there: set[str] | None) -> None:
    """A run refused or stopped before its first checkpoint leaves nothing behind: the folders this
    call created (the run folder, and `runs/` above it) go, their scan cache with them; in a folder
    that was there, what this call added to it."""
    if (not created and there is None) or checkpoints.checkpoint_steps(out / run_folder.CHECKPOINTS):
        return
    if created:
        shutil.rmtree(created[0], ignore_errors=True)
    else:
        for name in set(os.listdir(out)) - there:
            shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else (out / name).unlink(missing_ok=True)
    for folder in created[1:]:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty


def _train(config: TrainConfig, log, signals: stopping.StopSignals) -> RunResult:
    strategy = _start_strategy(config)
    role = distribute.worker_role(strategy)
    features = _validation_features(config, log)  # before the seed: random feature weights seed themselves
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    if not role.is_chief:  # the chief's lock guards the folder for its whole cluster
        _prepare_out(role.own_folder(out))
        return _run(config, log, strategy, role, out, signals, features)
    _check_out_is_a_run_folder(out)
    with run_folder.locked(config.out, log):
        _clear_interrupted_writes(out, log)
        return _run(config, log, strategy, role, out, signals, features)


def _run(config: TrainConfig, log, strategy, role: distribute.WorkerRole, out: Path,
         signals: stopping.StopSignals, features=None) -> RunResult:
    """Restore, then check, then write: nothing in the run folder changes until the checkpoint
    has restored and the settings agree with the ones the run was started with."""
    run = _restore(config, strategy, role, out, log)
    image_set = _data_and_settings(run, strategy, role, out, log)
    if run.epochs_done >= run.config.epochs or stopped_early(run.kept, run.config.early_stop, run.epochs_done):
        return _nothing_to_do(run, image_set, role, out, log)
    return _train_on(run, image_set, strategy, role, out, signals, features, log)


@dataclass
class _Restored:
    """A run as its checkpoint left it: the networks it saves, the trainer computing with their
    fast layers, the checkpoint, and where the run is.

    Two generators share one set of weights: `saved_generator` (stock layers: what checkpoints and
    generator.keras hold, what every later version loads) and `trainer.generator`, the same
    function with its slow CPU layers swapped for fast ones (`networks.cpu_layers`), which
    `fit` computes with."""

    config: TrainConfig
    saved_generator: keras.Model
    saved_discriminator: keras.Model | None
    trainer: gan.ColorizationGAN
    checkpoint: callbacks.TrainingCheckpoint
    saved: dict | None  # run.json, if the folder holds one
    resuming: bool
    epochs_done: int = 0
    steps_done: int = 0
    kept: Best | None = None


def _restore(config: TrainConfig, strategy, role: distribute.WorkerRole, out: Path, log) -> _Restored:
    """Build the networks and the trainer, and restore the newest checkpoint that restores."""
    saved = run_folder.read_run_json(out)
    resuming = bool(checkpoints.checkpoint_steps(out / run_folder.CHECKPOINTS))
    config = _settle_precision(config, saved if resuming else None, strategy, log)
    if resuming and saved:  # the data-dependent settings are checked once the data is known
        explicit = {key: value for key, value in config.run_defining().items()
                    if key not in ("steps_per_epoch", "batch_size")}
        _check_resume_settings(out, saved, explicit)
    with strategy.scope():  # a resumed run's weights all come from its checkpoint
        saved_generator, saved_discriminator = build_networks(config, strategy,
                                                              encoder_weights="none" if resuming else None)
        trainer = build_trainer(config, strategy, stock_networks=(saved_generator, saved_discriminator))
    # Every worker restores the chief's checkpoint; only the chief writes checkpoints.
    checkpoint = callbacks.TrainingCheckpoint(
        out / run_folder.CHECKPOINTS, saved_generator, trainer.g_optimizer,
        saved_discriminator, trainer.d_optimizer, every_steps=config.checkpoint_every,
        write=role.is_chief,
    )
    run = _Restored(config, saved_generator, saved_discriminator, trainer, checkpoint, saved, resuming)
    run.epochs_done, run.steps_done = checkpoint.restore(log) or (0, 0)
    if role.count > 1:
        log(f"Worker {role.index} of {role.count}" + ("" if role.is_chief else f"; its own files go to {role.own_folder(out)}"))
        distribute.check_workers_agree(strategy, run.steps_done, out)
    return run


def _data_and_settings(run: _Restored, strategy, role: distribute.WorkerRole, out: Path, log) -> ImageSet:
    """Load the data, settle the settings it decides (batch, steps per epoch), check them against
    run.json, and write run.json (and trim history.csv) for where the run now is."""
    image_set = _load_data(run.config, role.own_folder(out), out, log)
    config = run.config
    if config.keep_best and not len(image_set.val):
        raise RunError(f"--keep-best {config.keep_best} needs validation images (--val-fraction above 0, or more "
                       "photos)")
    if config.val_fid and len(image_set.val) < 4:
        raise RunError(f"--val-fid needs 4 validation images or more ({len(image_set.val)} here): a larger "
                       "--val-fraction, or more photos")
    run.config = config = _fit_to_data(config, image_set, strategy, log)
    run.kept = Best.of_run(out) if run.resuming and config.keep_best else None
    if run.resuming and run.saved:
        _check_resume_settings(out, run.saved, config.run_defining())
    if run.checkpoint.newest:
        log(f"Resuming from {run.checkpoint.newest}: epoch {run.epochs_done}, step {run.steps_done}")
        whole_epochs = _whole_epochs(run.epochs_done, run.steps_done, config.steps_per_epoch)
        if whole_epochs > run.epochs_done:
            run.epochs_done = whole_epochs
            log(f"Epoch {run.epochs_done} had done all its steps when the run stopped; its validation is skipped")
    if role.is_chief:
        run_folder.write_run_json(out, asdict(config), asdict(run.kept) if run.kept else None)
        _trim_history(out / "history.csv", run.epochs_done)
    return image_set


def _nothing_to_do(run: _Restored, image_set: ImageSet, role: distribute.WorkerRole, out: Path, log) -> RunResult:
    """A run whose epochs are done, or that stopped early: say so, and write what is missing."""
    config, kept = run.config, run.kept
    if run.epochs_done >= config.epochs:
        log(f"{out} already holds {run.epochs_done} trained epochs (--epochs {config.epochs}); nothing to do")
    else:
        log(f"{out} stopped early after epoch {run.epochs_done}: no better {kept.metric} for {config.early_stop} "
            f"epoch{'s' if config.early_stop > 1 else ''} since epoch {kept.epoch} (best: {kept.text()}); nothing "
            "to do (a larger --early-stop trains on)")
    if role.is_chief:
        _complete_finished_run(run.saved_generator, out, run.steps_done, run.epochs_done, log)
    return RunResult(out, run.epochs_done, run.steps_done, out / run_folder.GENERATOR, image_set)


def _train_on(run: _Restored, image_set: ImageSet, strategy, role: distribute.WorkerRole, out: Path,
              signals: stopping.StopSignals, features, log) -> RunResult:
    """`fit` the remaining epochs, then save the generator and draw the figures; a stop says, in
    one line, what is on disk (`_explain_stop`)."""
    choosing = _choosing(run.saved_generator, image_set, run.config, out, role, run.kept, features, run.checkpoint, log)
    run_callbacks = _run_callbacks(run.trainer, run.checkpoint, image_set, run.config, out, role, signals, choosing)
    trained = False
    try:
        epochs_done, steps_done = _fit_epochs(run.trainer, run.checkpoint, run_callbacks, image_set, run.config,
                                              strategy, run.epochs_done, run.steps_done)
        trained = True
        if role.is_chief:  # a Ctrl-C here is honoured between the steps of a few seconds each
            _save_generator(run.saved_generator, out, steps_done, epochs_done, log)
            _stop_if_asked(signals, steps_done)
            plots.run_figures(out)
            _stop_if_asked(signals, steps_done)
    except (StopRequested, BrokenPipeError, stopping.NotFiniteError, OSError) as error:
        explained = _explain_stop(error, trained, run.checkpoint, role, out)
        if explained is error:
            raise
        raise explained from None
    return RunResult(out, epochs_done, steps_done, out / run_folder.GENERATOR, image_set)


def _start_strategy(config: TrainConfig) -> tf.distribute.Strategy:
    """The distribution strategy, started before any other TensorFlow work (a cluster must be)."""
    if config.deterministic_ops:
        use_deterministic_ops()  # before the strategy: it starts TensorFlow's runtime
    strategy = distribute.make_strategy(config.strategy)
    _check_replicas(config, strategy)
    return strategy


def _check_replicas(config: TrainConfig, strategy: tf.distribute.Strategy) -> None:
    if config.batch_size % strategy.num_replicas_in_sync:
        raise RunError(
            f"--batch-size {config.batch_size} (the global batch) must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    if config.deterministic_ops and strategy.num_replicas_in_sync > 1:
        raise RunError("--deterministic-ops runs one op at a time, for single-device runs; replicas need "
                       "their collective ops to run side by side")


def _validation_features(config: TrainConfig, log):
    """With --val-fid, the Inception-v3 features of --feature-weights (said in one line)."""
    if not config.val_fid:
        return None
    from pix2color.evaluation.inception import FeatureWeightsError, InceptionFeatures

    try:
        features = InceptionFeatures(config.feature_weights)
    except FeatureWeightsError as error:
        raise RunError(f"{error}; or train without --val-fid") from None
    log(features.description)
    return features


def _prepare_out(out: Path) -> None:
    """Fail at once, in one line, if the run folder cannot be written (before scanning data)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write to --out {out}: {error.strerror or error}") from None


def _check_out_is_a_run_folder(out: Path) -> None:
    """--out must be new, empty, or a pix2color run folder: a run never writes among other files."""
    others = run_folder.foreign_entries(out)
    if others:
        raise RunError(f"--out {out} holds other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) "
                       "and no pix2color run: choose a new or empty folder")


def _clear_interrupted_writes(out: Path, log) -> None:
    """Remove what a killed run left half-written, and set aside a damaged checkpoint state file."""
    for name in checkpoints.remove_partial_checkpoints(out / run_folder.CHECKPOINTS):
        log(f"Removed {out / run_folder.CHECKPOINTS / name}: the partial write of an interrupted checkpoint")
    (out / run_folder.PARTIAL_GENERATOR).unlink(missing_ok=True)  # an interrupted generator.keras write
    note = checkpoints.set_aside_damaged_state(out / run_folder.CHECKPOINTS)
    if note:
        log(note)


def _settle_precision(config: TrainConfig, saved: dict | None, strategy, log) -> TrainConfig:
    """`config` with its precision resolved (`auto`: the one the resumed run was started with, or
    the hardware's), said in one line."""
    choice = precision.resolve(
        config.precision, precision.this_machine(strategy) if config.precision == "auto" else None,
        recorded=saved.get("precision") if saved else None,
    )
    log(f"Precision: {choice.precision}" + (f" ({choice.reason})" if choice.reason else ""))
    return dataclasses.replace(config, precision=choice.precision)


def _check_resume_settings(out: Path, saved: dict, settings: dict) -> None:
    """A folder holding checkpoints resumes only with the settings it was started with."""
    changed = run_folder.changed_settings(saved, settings)
    if changed:
        raise RunError(f"{out} holds a run started with " + ", ".join(changed)
                       + "; rerun with the same flags to resume, or choose a new --out")


def _load_data(config: TrainConfig, own_folder: Path, out: Path, log) -> ImageSet:
    """The vetted, split images of --data, leaving out this run's own folder (and any other
    pix2color run or poll folder inside --data)."""
    image_set = load_image_set(
        config.data, config.val_fraction, verbose=1 if config.verbose == "auto" else config.verbose,
        cache_dir=own_folder / "scan_cache", coco_dir=config.coco_dir, tfds_data_dir=config.tfds_data_dir,
        download=config.download, exclude=(out,),
    )
    log(image_set.summary())
    if not len(image_set.val):
        log("No validation images (--val-fraction or too few photos): validation losses, PSNR/SSIM and sample "
            "grids are left out of this run")
    return image_set


def _fit_to_data(config: TrainConfig, image_set: ImageSet, strategy, log) -> TrainConfig:
    """The batch size and steps per epoch the data allows (recorded in run.json)."""
    config = _fit_batch_to_data(config, image_set, strategy, log)
    steps_per_epoch = config.steps_per_epoch or max(1, len(image_set.train) // config.batch_size)
    return dataclasses.replace(config, steps_per_epoch=steps_per_epoch)


def _fit_batch_to_data(config: TrainConfig, image_set: ImageSet, strategy, log) -> TrainConfig:
    """A batch larger than the training set shrinks to it, and the run says so (and records it)."""
    count = len(image_set.train)
    if config.batch_size <= count:
        return config
    replicas = strategy.num_replicas_in_sync
    reduced = count // replicas * replicas
    if reduced < 1:
        raise RunError(f"--data {config.data} has {count} training images, fewer than the {replicas} replicas")
    log(f"--batch-size {config.batch_size} is larger than the {count} training images: training with batches of "
        f"{reduced}")
    return dataclasses.replace(config, batch_size=reduced)


def _whole_epochs(epochs_done: int, steps_done: int, steps_per_epoch: int) -> int:
    """Epochs whose steps are all done: a stop during an epoch's validation saves its last step
    before the epoch is counted."""
    return max(epochs_done, steps_done // steps_per_epoch)


def _trim_history(history_csv: Path, epochs_done: int) -> None:
    """Keep the rows of epochs the checkpoint contains (a kill between log and save leaves one
    more), and only whole rows (a second header, a torn or damaged line is dropped)."""
    if not history_csv.exists():
        return
    with open(history_csv, newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], [row for row in rows[1:] if plots.is_history_row(row, len(rows[0]))]
    body = [row for row in body if int(row[0]) < epochs_done]
    if body != rows[1:]:
        text = io.StringIO(newline="")
        csv.writer(text).writerows([header, *body])
        write_text_atomically(history_csv, text.getvalue())


def _choosing(generator: keras.Model, image_set: ImageSet, config: TrainConfig, out: Path,
              role: distribute.WorkerRole, kept: Best | None, features, checkpoint, log) -> list:
    """--keep-best and --val-fid's callbacks: the measures they need, then `KeepBest`."""
    chosen = []
    if config.val_fid or config.keep_best == "val_colourfulness_gap":
        dataset = make_eval_dataset(image_set.val, config.image_size, config.batch_size)
        chosen.append(ValidationMeasures(generator, dataset, features))
    if config.keep_best:
        chosen.append(KeepBest(out, generator, config.keep_best, asdict(config), kept, config.early_stop,
                               steps=lambda: int(checkpoint.step.numpy()), write=role.is_chief, log=log))
    return chosen


def _run_callbacks(trainer: gan.ColorizationGAN, checkpoint: callbacks.TrainingCheckpoint, image_set: ImageSet,
                   config: TrainConfig, out: Path, role: distribute.WorkerRole, signals: stopping.StopSignals,
                   choosing: list) -> list:
    steps = lambda: int(checkpoint.step.numpy())  # noqa: E731 - steps completed so far
    return (
        # the guard first: a bad step is never saved; the best generator before the checkpoint of its epoch
        [stopping.FiniteGuard(steps), *choosing, checkpoint]
        + (_figures_and_logs(trainer, image_set, config, out) if role.is_chief else [])
        + [stopping.StopOnRequest(signals, steps)]  # last: the epoch's logs are written first
    )


def _figures_and_logs(trainer: gan.ColorizationGAN, image_set: ImageSet, config: TrainConfig, out: Path) -> list:
    """The chief's callbacks that draw and log the run (sample grids, history, TensorBoard)."""
    run_callbacks = []
    if len(image_set.val):
        grid_dataset = make_eval_dataset(
            preview_images(image_set.val, SAMPLE_GRID_IMAGES), config.image_size, SAMPLE_GRID_IMAGES
        )
        lightness, ab = callbacks.first_images(grid_dataset, SAMPLE_GRID_IMAGES)
        run_callbacks.append(callbacks.SampleGrid(trainer.generator, lightness, ab, out / "samples"))
    return run_callbacks + [
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        callbacks.HistoryPlot(out / "history.csv", out / "losses.png"),
        keras.callbacks.TensorBoard(log_dir=str(out / "logs")),
    ]


def _fit_epochs(trainer: gan.ColorizationGAN, checkpoint: callbacks.TrainingCheckpoint, run_callbacks: list,
                image_set: ImageSet, config: TrainConfig, strategy, epochs_done: int, steps_done: int) -> tuple[int, int]:
    """`fit` up to `config.epochs`, from the step the run is at; returns (epochs done, steps done)."""
    val_dataset = make_eval_dataset(image_set.val, config.image_size, config.batch_size) if len(image_set.val) else None
    for last_epoch, phase_steps in _fit_phases(epochs_done, steps_done, config.steps_per_epoch, config.epochs):
        pipeline = functools.partial(  # pipeline(input_context) -> this worker's stream from steps_done
            make_train_dataset, image_set.train, config.image_size, config.batch_size, config.seed, steps_done,
        )
        trainer.fit(
            distribute.training_input(strategy, pipeline), epochs=last_epoch, initial_epoch=epochs_done,
            steps_per_epoch=phase_steps, validation_data=val_dataset, validation_steps=config.validation_steps,
            callbacks=run_callbacks, shuffle=False, verbose=config.verbose,
        )
        epochs_done, steps_done = int(checkpoint.epoch.numpy()), int(checkpoint.step.numpy())
        if trainer.stop_training:  # --early-stop
            break
    return epochs_done, steps_done


def _fit_phases(epochs_done: int, steps_done: int, steps_per_epoch: int, epochs: int) -> list[tuple[int, int]]:
    """(last epoch, steps per epoch) for each `fit` call: an epoch cut short by an interruption
    is finished first, on its own; then whole epochs up to `epochs`."""
    phases = []
    steps_into_epoch = steps_done - epochs_done * steps_per_epoch
    if 0 < steps_into_epoch < steps_per_epoch:
        phases.append((epochs_done + 1, steps_per_epoch - steps_into_epoch))
    phases.append((epochs, steps_per_epoch))
    return [(last, steps) for last, steps in phases if last > epochs_done]


def _stop_if_asked(signals: stopping.StopSignals, steps_done: int) -> None:
    if signals.received is not None:
        raise StopRequested(f"stopped by {stopping.signal_name(signals.received)} at step {steps_done}",
                            signals.received)


def _explain_stop(error: BaseException, trained: bool, checkpoint: callbacks.TrainingCheckpoint,
                  role: distribute.WorkerRole, out: Path) -> BaseException:
    """The error a run stops with, in one line saying what is on disk and what a re-run does
    (`error` itself when it needs no words: a closed stdout, after its checkpoint is saved)."""
    if isinstance(error, StopRequested):
        if trained:  # after the last epoch: its checkpoint is on disk
            missing = [name for name in (run_folder.GENERATOR, "plots") if not (out / name).exists()]
            rest = (f"run the same command again to write {' and '.join(missing)}" if missing
                    else "generator.keras and the figures are written")
            return StopRequested(f"{error}, after the last epoch ({checkpoint.newest} holds it); {rest}",
                                 error.signal_number)
        saved_now = f"checkpoint {checkpoint.save()} written" if role.is_chief else "the chief writes the checkpoint"
        return StopRequested(f"{error}; {saved_now}; run the same command again to resume", error.signal_number)
    if isinstance(error, BrokenPipeError):  # stdout's reader is gone (`train | head`): keep the work, end quietly
        if role.is_chief and not trained:
            checkpoint.save()
        return error
    if isinstance(error, stopping.NotFiniteError):
        kept = f"the newest checkpoint, {checkpoint.newest}, is finite" if checkpoint.newest else "no checkpoint was written"
        return stopping.NotFiniteError(f"{error}; nothing after it was saved ({kept}); re-running resumes from there")
    # OSError: history, figures, the final generator: a full disk or a vanished folder
    where = error.filename or out
    return OutputError(f"could not write {where}: {error.strerror or error} (the newest checkpoint, "
                       f"{checkpoint.newest}, is intact)")


def _complete_finished_run(generator: keras.Model, out: Path, steps_done: int, epochs_done: int, log) -> None:
    """A run stopped after its last epoch: write generator.keras and the figures if they are missing."""
    record = run_folder.read_generator_record(out)
    generator_path = out / run_folder.GENERATOR
    if not zipfile.is_zipfile(generator_path) or record is None or record.steps < steps_done:
        _save_generator(generator, out, steps_done, epochs_done, log)
    if not (out / "plots").is_dir() and (out / "history.csv").exists():
        try:
            plots.run_figures(out)  # a run stopped after its last epoch, before its figures
        except plots.HistoryError as error:
            log(f"note: no figures: {error}")


def _save_generator(generator: keras.Model, out: Path, steps: int, epochs: int, log) -> None:
    path = run_folder.save_generator(generator, out, steps, epochs)
    log(f"Saved the generator (step {steps}) to {path}")


def build_networks(config: TrainConfig, strategy=None, encoder_weights: str | None = None):
    """G and D (None for L1 only) as `config` describes them, built from stock layers: what a run
    checkpoints and saves.

    Build them inside `strategy.scope()` to train on several replicas; BatchNorm then uses the
    statistics of the global batch, so the maths is that of one device with the global batch.
    Their layers compute in `config.precision` (resolved: not `auto`); in float32 they take
    Keras' global dtype policy (float32 unless the caller chose another, as the exactness tests
    do with float64). `encoder_weights` overrides the config's (a resumed run takes every weight
    from its checkpoint: "none").
    """
    strategy = strategy or tf.distribute.get_strategy()
    with precision.building_for(config.precision):
        generator = networks.build_named_generator(
            config.generator, config.image_size, dropout=not config.l1_only,
            sync_batch_norm=strategy.num_replicas_in_sync > 1,
            encoder_weights=config.encoder_weights if encoder_weights is None else encoder_weights,
        )
        discriminator = None if config.l1_only else networks.build_discriminator(config.image_size, config.patch_size)
    return generator, discriminator


def build_trainer(config: TrainConfig, strategy=None, encoder_weights: str | None = None,
                  stock_networks: tuple | None = None) -> gan.ColorizationGAN:
    """The GAN trainer, compiled with Adam for G and D, computing with `cpu_layers.fast_layers` of the
    networks (`stock_networks`, or new ones from `build_networks`): every weight is the stock
    networks'. Build it inside `strategy.scope()` to train on several replicas."""
    strategy = strategy or tf.distribute.get_strategy()
    generator, discriminator = stock_networks or build_networks(config, strategy, encoder_weights)

    def adam():
        optimizer = keras.optimizers.Adam(config.lr, beta_1=config.beta1, beta_2=config.beta2, epsilon=ADAM_EPSILON)
        # float16 needs loss scaling (its gradients underflow); bfloat16 has float32's range.
        return keras.optimizers.LossScaleOptimizer(optimizer) if config.precision == "float16" else optimizer

    trainer_class = gan.ColorizationGAN
    if distribute.is_multi_worker(strategy):
        trainer_class = distribute.for_multi_worker(trainer_class)
    trainer = trainer_class(fast_layers(generator), None if discriminator is None else fast_layers(discriminator))
    trainer.compile(
        g_optimizer=adam(),
        d_optimizer=None if discriminator is None else adam(),
        lambda_l1=config.effective_lambda_l1,
        r1_gamma=config.r1_gamma,
        r1_every=config.r1_every,
        real_label=0.9 if config.label_smoothing else 1.0,
        jit_compile=config.jit_compile,
    )
    return trainer


def use_deterministic_ops() -> None:
    """Bit-identical training from process to process: TensorFlow's op determinism, one op at a
    time, and no arithmetic rewrites of the traced step (Grappler's arithmetic optimizer rewrites
    its sums differently from one trace to the next). Why each, measured:
    docs/training.md#determinism---deterministic-ops."""
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        if tf.config.threading.get_inter_op_parallelism_threads() != 1:
            raise RunError("--deterministic-ops must be chosen before TensorFlow starts running "
                           "(start a new process or kernel)") from None
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
