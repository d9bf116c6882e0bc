"""Every error pix2color raises on purpose, in one place: what went wrong, in one line, for a user.

A command catches `Pix2colorError`, prints its message on one line and exits with `exit_status`:
2 for something the user can fix and try again (a bad option, file or folder, data that cannot
train), 1 for work that started and could not be finished (a full disk, a run that diverged),
128 + the signal for a run stopped by SIGINT / SIGTERM, as shells count them. `first_line` is how
a message quotes an error of a library it called.

Standard library only: every command imports this module before TensorFlow, and the classes of
`pix2color.export.litert_runner`'s copies are those below.
"""

from __future__ import annotations


class Pix2colorError(ValueError):
    """A refusal or a failure with its reason in one line (the message)."""


# --------------------------------------------------------------------------- photos, videos, outputs


class ImageError(ValueError):
    """A file that cannot be colorized; the message names it and says why."""


class TooManyPixels(ImageError):
    """An image larger than the pixel limit (checked before it is decoded)."""


class ModelError(Pix2colorError):
    """A model that cannot colorize: a file LiteRT cannot run as a pix2color generator, or a
    network whose output is not finite (damaged weights); the message names it."""


class VideoError(Pix2colorError):
    """A video that cannot be colorized; the message names it and says why."""


class OutputExists(FileExistsError):
    """An output's name was taken when it came to be written (after the plan was made, say):
    the file there is left as it is."""


# --------------------------------------------------------------------------- training and its data


class RunError(Pix2colorError):
    """A run cannot start, resume or go on as asked; the message says why, in one line."""


class OutputError(RunError):
    """The run folder cannot be written (full disk, unwritable --out)."""


class NotFiniteError(RunError):
    """The run diverged: a loss or a weight is NaN or infinite."""


class StopRequested(RunError):
    """SIGINT or SIGTERM arrived; the run stopped after writing a checkpoint."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


class DataError(Pix2colorError):
    """The requested data cannot be used; the message says why, in one line."""


class StrategyError(Pix2colorError):
    """The requested distributed set-up cannot work; the message says why, in one line."""


class EncoderWeightsError(Pix2colorError):
    """The encoder's pretrained weights cannot be had; the message says why and what to do."""


class HistoryError(Pix2colorError):
    """A history.csv with no epoch to draw; the message names the file."""


# --------------------------------------------------------------------------- evaluation, the poll


class FeatureWeightsError(Pix2colorError):
    """Inception-v3's weights cannot be had as asked; the message says what to fetch, in one line."""


class PollError(Pix2colorError):
    """A poll cannot be built, opened or answered as asked; the message says why, in one line."""


class AnswerError(PollError):
    """An answer the poll does not accept (unknown pair, or an image the participant was not shown)."""


class NotShownNow(AnswerError):
    """An answer about one of the participant's pairs other than the trial they are being shown:
    each participant answers their trials in their order, one at a time, as the server shows them."""


# --------------------------------------------------------------------------- for commands


class ServerStopped(Exception):
    """SIGINT or SIGTERM arrived while `pix2color serve` ran: raised from the signal handler to end
    uvicorn's run once it has shut down. Not a failure: the command ends with 128 + the signal."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


def exit_status(error: BaseException) -> int:
    """The status a command exits with after `error` (the module's docstring says which)."""
    if isinstance(error, StopRequested):
        return 128 + error.signal_number
    if isinstance(error, (OutputError, NotFiniteError, OSError)):
        return 1
    return 2


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message (at most `limit` characters), or its type's name when
    it has none: how a message quotes an error another library raised."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
