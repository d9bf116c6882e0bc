"""How a long run stops: on purpose (Ctrl-C, a scheduler's SIGTERM) or because it must (losses
that are no longer finite, a disk that cannot take the next checkpoint), always with the newest
checkpoint on disk usable and one line saying what happened.

Signals are turned into a request that the training loop honours between two steps, never in
the middle of one: the checkpoint written then is exactly the state after the last whole step.
"""

from __future__ import annotations

import math
import signal
import threading

import keras

from pix2color.config import OutputError, RunError  # noqa: F401 - the errors a run stops with
from pix2color.errors import NotFiniteError, StopRequested  # noqa: F401 - the module's errors, importable from here too
from pix2color.training.gan import LOSSES


class StopSignals:
    """While active, SIGINT and SIGTERM are recorded (`received`) instead of killing the process.

    Explicit handlers for both: a process a shell script starts in the background begins with
    SIGINT ignored, so Python's KeyboardInterrupt would never come. Outside the main thread
    (where Python cannot install handlers) it does nothing. A second signal of either kind
    while a stop is pending stops at once, the Python default.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signal_number, frame):
        if self.received is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.received = signal_number

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signal_number in self.SIGNALS:
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()


def signal_name(signal_number: int) -> str:
    return signal.Signals(signal_number).name


class StopOnRequest(keras.callbacks.Callback):
    """Raises `StopRequested` at the first step boundary after a signal (before the first step
    too); the caller writes the checkpoint, since it knows where."""

    def __init__(self, signals: StopSignals, steps_done):
        super().__init__()
        self.signals = signals
        self.steps_done = steps_done  # a callable: the global step

    def _check(self):
        if self.signals.received is not None:
            raise StopRequested(f"stopped by {signal_name(self.signals.received)} at step {self.steps_done()}",
                                self.signals.received)

    def on_train_begin(self, logs=None):
        self._check()

    def on_train_batch_begin(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


class FiniteGuard(keras.callbacks.Callback):
    """Stops the run at the first step whose losses are not finite, before anything saves it.

    Put it before the checkpoint callback. Under mixed precision a step whose scaled gradients
    overflow is skipped by the loss-scale optimizer and its losses stay finite: not divergence.
    """

    def __init__(self, steps_done):
        super().__init__()
        self.steps_done = steps_done  # a callable: steps completed before this batch

    def on_train_batch_end(self, batch, logs=None):
        for name in LOSSES:  # any of them not finite means divergence
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                raise NotFiniteError(f"not finite: {name} is {float(value)} at step {self.steps_done() + 1}")
