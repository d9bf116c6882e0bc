"""Colorize videos (`pix2color colorize clip.mp4`): every frame at its full resolution, in batches,
with the photo recipe, optionally stabilised over time (`pix2color.colorizing.stabilise`).

Decoding and encoding use PyAV (FFmpeg's libraries, shipped in its wheel), so any container and
codec FFmpeg reads is accepted. The output keeps what a viewer would notice: the frame count and
every frame's timestamp (so variable frame rates stay variable), the size (odd sizes too: 4:4:4
chroma when 4:2:0 cannot hold them), the rotation shown by players, the colour tags, and the audio
(copied packet for packet where the output container allows it, re-encoded otherwise).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.errors import VideoError  # noqa: F401 - the module's errors, importable from here too
from pix2color.outputs import OutputExists, move_into_place, quoted, reserve_temporary

# PyAV is imported inside the functions that use it: a command that meets no video never loads FFmpeg.

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv", ".vob", ".dv", ".y4m")
VIDEO_FORMATS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "webm": "webm"}  # --video-format -> FFmpeg muxer
DEFAULT_CODECS = {"mp4": "libx264", "mkv": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}
DEFAULT_CRF = 18  # visually lossless for H.264
_CRF_CODECS = {"libx264", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}


@dataclass
class VideoResult:
    target: Path
    frames: int
    seconds: float = 0.0  # where the last frame written ends, from the start of the video
    cuts: list[int] = field(default_factory=list)  # frame indices where the stabiliser saw a new shot
    notes: list[str] = field(default_factory=list)  # what a user should know (audio re-encoded, ...)
    problem: str | None = None  # set when the input ended early: the frames decoded were written


def is_video(path: str | os.PathLike, image_suffixes: tuple[str, ...] = ()) -> bool:
    """A video by its name; a file with neither a video nor an image suffix is asked of FFmpeg."""
    import av

    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_SUFFIXES or suffix in image_suffixes:
        return suffix in VIDEO_SUFFIXES
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video) and container.format.name not in _IMAGE_DEMUXERS
    except (av.error.FFmpegError, OSError):
        return False


_IMAGE_DEMUXERS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe"}


def _seconds(value, time_base) -> float:
    return float(value * time_base) if value is not None and time_base is not None else 0.0


def open_video(source: str | os.PathLike):
    """An FFmpeg input container with a video stream, or `VideoError` in plain words."""
    import av

    name = quoted(source)
    if Path(source).is_dir():
        raise VideoError(f"{name}: is a folder")
    if Path(source).exists() and Path(source).stat().st_size == 0:
        raise VideoError(f"{name}: empty file (0 bytes)")
    try:
        container = av.open(name, metadata_errors="replace")
    except FileNotFoundError:
        raise VideoError(f"{name}: no such file") from None
    except (av.error.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise VideoError(f"{name}: cannot be opened as a video: damaged or not a video ({reason})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{name}: has no video stream")
    return container


class _Writer:
    """The output container: colorized frames in, audio copied or re-encoded alongside."""

    def __init__(self, path: Path, name: str, video_format: str, codec: str | None, crf: int, video_in,
                 audio_in: list, first_frame, notes: list[str]):
        import av

        self.path = path  # a file reserved for it (`pix2color.outputs.reserve_temporary`)
        self.container = av.open(str(path), "w", format=VIDEO_FORMATS[video_format])
        codec = codec or DEFAULT_CODECS[video_format]
        rate = video_in.average_rate or video_in.guessed_rate or 25
        try:
            self.video = self.container.add_stream(codec, rate=rate)
        except (av.error.FFmpegError, ValueError) as error:
            self.container.close()
            raise VideoError(f"{name}: codec {codec!r} cannot be used: {error}") from None
        context = self.video.codec_context
        context.width, context.height = first_frame.width, first_frame.height
        # Every input timestamp kept exactly (the muxer may pick its own stream time base later).
        self.time_base = context.time_base = self.video.time_base = video_in.time_base
        self.pixel_format = pixel_format(codec, first_frame.width, first_frame.height)
        context.pix_fmt = self.pixel_format
        if self.pixel_format != "yuv420p":
            notes.append(f"video: {self.pixel_format} (4:2:0 cannot hold a {first_frame.width}x{first_frame.height} frame)")
        # The same colour tags and YUV matrix as the input; untagged input is read as BT.601, limited range.
        self.colorspace = first_frame.colorspace
        self.color_range = first_frame.color_range or 1
        context.colorspace, context.color_range = self.colorspace, self.color_range
        context.color_primaries, context.color_trc = first_frame.color_primaries, first_frame.color_trc
        if codec in _CRF_CODECS:
            context.options = {"crf": str(crf), **({"b": "0", "row-mt": "1"} if codec.startswith("libvpx") else {})}
        if first_frame.rotation:
            self.video.set_display_rotation(first_frame.rotation)

        self.durations: dict[int, int] = {}  # pts -> the input frame's duration
        self.audio: dict = {}  # input stream -> (output stream, resampler or None for a copy)
        for stream in audio_in:
            if stream.codec_context.name in self.container.supported_codecs:
                self.audio[stream] = (self.container.add_stream_from_template(stream), None)
                continue
            audio_codec = self.container.default_audio_codec
            rates = av.Codec(audio_codec, "w").audio_rates  # None: any rate (Opus takes 48 kHz, not 44.1)
            rate = stream.rate if not rates or stream.rate in rates else max(rates)
            output = self.container.add_stream(audio_codec, rate=rate, layout=stream.layout)
            sample_format = output.codec_context.codec.audio_formats[0].name
            self.audio[stream] = (output, av.AudioResampler(format=sample_format, layout=stream.layout, rate=rate))
            notes.append(f"audio: {stream.codec_context.name} cannot go in {video_format}; re-encoded as {audio_codec}")

    def write_frame(self, rgb: np.ndarray, pts: int | None, duration: int | None) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=self.pixel_format, dst_colorspace=self.colorspace, dst_color_range=self.color_range)
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            self.durations[pts] = duration
        self._mux_video(self.video.encode(frame))

    def _mux_video(self, packets) -> None:
        # The encoder does not pass frame durations on; the container's last one (and so its
        # average rate) would differ from the input's.
        for packet in packets:
            packet.duration = self.durations.pop(packet.pts, None) or packet.duration
            self.container.mux(packet)

    def write_audio(self, packet) -> None:
        output, resampler = self.audio[packet.stream]
        if resampler is None:
            if packet.size:  # the demuxer's final empty packet only flushes decoders
                packet.stream = output
                self.container.mux(packet)
            return
        for frame in packet.decode():
            for resampled in resampler.resample(frame):
                self.container.mux(output.encode(resampled))

    def close(self) -> None:
        self._mux_video(self.video.encode(None))
        for output, resampler in self.audio.values():
            if resampler is not None:
                for resampled in resampler.resample(None):
                    self.container.mux(output.encode(resampled))
                self.container.mux(output.encode(None))
        self.container.close()


def check_codec(codec: str | None, video_format: str) -> str:
    """The codec to write with (the format's default for None); ValueError in plain words if the
    codec is unknown, not a video encoder, or cannot go in the container."""
    import av

    codec = codec or DEFAULT_CODECS[video_format]
    try:
        found = av.Codec(codec, "w")
    except ValueError:
        raise ValueError(f"unknown video encoder {codec!r} (FFmpeg's names: libx264, libx265, libvpx-vp9, mpeg4, ...)") from None
    if found.type != "video":
        raise ValueError(f"{codec!r} is an {found.type} encoder, not a video one")
    with av.open(os.devnull, "w", format=VIDEO_FORMATS[video_format]) as probe:
        if found.canonical_name not in probe.supported_codecs:
            raise ValueError(f"{codec!r} cannot be written into {video_format}; try --video-format mkv")
    return codec


def pixel_format(codec: str, width: int, height: int) -> str:
    """4:2:0 (what every player plays) when the size is even, 4:4:4 when it is odd (4:2:0 would
    need a pixel cropped or added), else the codec's first format."""
    import av

    supported = [video_format.name for video_format in (av.Codec(codec, "w").video_formats or [])]
    wanted = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return wanted if wanted in supported or not supported else supported[0]


def frame_to_rgb(frame) -> np.ndarray:
    """A decoded frame -> uint8 RGB (H, W, 3) as stored (not rotated), with its own YUV matrix and range."""
    return frame.reformat(format="rgb24", src_color_range=frame.color_range or None).to_ndarray()


def expected_frames(container, video_in) -> int | None:
    """The frame count the file announces, or duration x rate, or None."""
    if video_in.frames:
        return int(video_in.frames)
    seconds = _seconds(video_in.duration, video_in.time_base) or (container.duration or 0) / 1e6
    rate = video_in.average_rate or video_in.guessed_rate
    return round(seconds * float(rate)) if seconds and rate else None


def colorize_video(
    source: str | os.PathLike,
    target: str | os.PathLike,
    recipe: FullResolutionColorizer,
    batch_size: int = 8,
    stabiliser: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    overwrite: bool = False,
    on_start: Callable[[int | None], None] = lambda total: None,
    on_frames: Callable[[int], None] = lambda count: None,
) -> VideoResult:
    """Colorize one video into `target` (its suffix picks the container: mp4, mkv, mov or webm).

    `stabiliser(network_input, ab) -> ab` sees every frame in order (`pix2color.colorizing.stabilise`).
    A file that cannot be opened raises `VideoError`; one that ends early (truncated, damaged)
    has its decodable frames written and `problem` set. The file appears only when complete,
    written as a hidden temporary file first; an existing `target` raises `OutputExists` (before
    any work, or at the end if it appeared meanwhile) unless `overwrite`, which replaces it.
    """
    name, target = quoted(source), Path(target)
    video_format = _check_target(source, target, overwrite)
    container = open_video(source)
    result = VideoResult(target, 0)
    with container:
        video_in, audio_in = _input_streams(container)
        total = expected_frames(container, video_in)
        result.notes += _streams_left_out(container)
        output = _Output(lambda first_frame: _Writer(partial, target.name, video_format, codec, crf, video_in,
                                                     audio_in, first_frame, result.notes),
                         recipe, stabiliser)
        on_start(total)
        partial = reserve_temporary(target)  # the file the writer fills (made at the first frame)
        try:
            damaged, last_end = _colorize_streams(container, video_in, audio_in, output, recipe, batch_size,
                                                  result, on_frames)
            if not result.frames:
                raise VideoError(f"{name}: no frame could be decoded" + (f" ({damaged})" if damaged else ""))
            output.close()
        except BaseException:
            output.discard()
            partial.unlink(missing_ok=True)
            raise
        if damaged or _ended_early(container, video_in, result.frames, last_end):
            result.problem = _truncation_problem(name, target, result, video_in, total, damaged)
    move_into_place(partial, target, overwrite)
    result.cuts = list(getattr(stabiliser, "cuts", []))
    return result


def _input_streams(container) -> tuple:
    """The streams the output is made from: the first video stream (decoded on FFmpeg's own
    threads) and every audio stream."""
    video_in = container.streams.video[0]
    video_in.thread_type = "AUTO"
    return video_in, list(container.streams.audio)


def _truncation_problem(name: str, target: Path, result: VideoResult, video_in, total: int | None,
                        damaged: str | None) -> str:
    """`VideoResult.problem` of a video that ended early: how far it got against what it announced
    (a count from the header is exact, one from its duration is not), and that those frames were written."""
    return (
        f"{name}: truncated or damaged: {result.frames} frames decoded"
        + (f" of {'' if video_in.frames else 'about '}{total}" if total else "")
        + f", ending at {result.seconds:.2f} s"
        + (f" ({damaged})" if damaged else "")
        + f"; those frames were written to {target}"
    )


def _check_target(source: str | os.PathLike, target: Path, overwrite: bool) -> str:
    """The output's container format, after checking that `target` may be written."""
    video_format = target.suffix.lstrip(".").lower()
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f"{target}: the output must end in one of {', '.join('.' + f for f in VIDEO_FORMATS)}")
    if Path(source).exists() and target.exists() and os.path.samefile(source, target):
        raise VideoError(f"{quoted(source)}: the output would overwrite the input; choose another output folder")
    if not overwrite and os.path.lexists(target):
        raise OutputExists(errno.EEXIST, "exists", str(target))
    return video_format


def _streams_left_out(container) -> list[str]:
    """A note if the file has streams the output leaves out (other video, subtitles, data)."""
    dropped = [stream.type for stream in container.streams if stream.type not in ("video", "audio")]
    if len(container.streams.video) > 1 or dropped:
        return ["only the first video stream and the audio are written "
                f"({len(container.streams.video) - 1} other video, {len(dropped)} subtitle/data streams left out)"]
    return []


def _colorize_streams(container, video_in, audio_in: list, output: _Output, recipe: FullResolutionColorizer,
                      batch_size: int, result: VideoResult, on_frames: Callable[[int], None]) -> tuple[str | None, dict]:
    """Decode the file in order: video frames are colorized `batch_size` at a time into `output`,
    audio packets passed on. Counts the frames and seconds into `result`; returns what could not be
    decoded (or None) and, per stream index, the end of its last packet (s)."""
    import av

    damaged: str | None = None
    pending: list = []  # decoded frames waiting for a full batch
    last_end: dict[int, float] = {}

    def colorize_pending():
        if pending:
            turns = round(pending[0].rotation / 90) % 4  # players turn the stored frame this much anticlockwise
            output.write_frames(list(pending), turns, *recipe.predict_batch(
                [np.rot90(frame_to_rgb(frame), turns) for frame in pending]))
            result.frames += len(pending)
            result.seconds = _seconds(pending[-1].pts + (pending[-1].duration or 0) - (video_in.start_time or 0),
                                      video_in.time_base)
            on_frames(len(pending))
            pending.clear()

    try:
        for packet in container.demux(video_in, *audio_in):
            if packet.pts is not None and packet.duration:
                end = _seconds(packet.pts + packet.duration, packet.time_base)
                last_end[packet.stream.index] = max(end, last_end.get(packet.stream.index, 0.0))
            if packet.stream is not video_in:
                output.write_audio(packet)
                continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                damaged = damaged or f"undecodable data from {_seconds(packet.pts, packet.time_base):.2f} s"
                continue
            for frame in frames:
                pending.append(frame)
                if len(pending) == batch_size:
                    colorize_pending()
    except av.error.FFmpegError as error:
        damaged = damaged or f"the file could not be read past this point ({getattr(error, 'strerror', error)})"
    colorize_pending()
    return damaged, last_end


class _Output:
    """The output side on its own thread: stabilise, upsample, encode and mux, in input order,
    while the caller decodes and runs the network on the next batch (on two cores this hides
    most of the full-resolution work behind the network)."""

    QUEUED_BATCHES = 2  # bounds memory: the caller waits when the output falls this far behind

    def __init__(self, make_writer: Callable, recipe: FullResolutionColorizer, stabiliser):
        self.make_writer, self.recipe, self.stabiliser = make_writer, recipe, stabiliser
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="pix2color-video-output")
        self.queued: list = []
        self.writer: _Writer | None = None
        self.held_audio: list = []  # audio read before the first frame (the output is made from it)
        self.started = False

    def _submit(self, function, *args) -> None:
        self.queued.append(self.pool.submit(function, *args))
        while len(self.queued) > self.QUEUED_BATCHES or (self.queued and self.queued[0].done()):
            self.queued.pop(0).result()  # the output thread's error is raised here

    def write_frames(self, frames: list, turns: int, prepared: list, ab: np.ndarray) -> None:
        self._submit(self._write_frames, frames, turns, prepared, ab)
        self.started = True
        for packet in self.held_audio:
            self._submit(self._write_audio, packet)
        self.held_audio.clear()

    def write_audio(self, packet) -> None:
        if self.started:
            self._submit(self._write_audio, packet)
        else:
            self.held_audio.append(packet)

    def _write_frames(self, frames, turns, prepared, ab) -> None:
        if self.writer is None:
            self.writer = self.make_writer(frames[0])
        for frame, rgb in zip(frames, self.recipe.finish_batch(prepared, ab, self.stabiliser)):
            self.writer.write_frame(np.ascontiguousarray(np.rot90(rgb, -turns)), frame.pts, frame.duration)

    def _write_audio(self, packet) -> None:
        self.writer.write_audio(packet)

    def close(self) -> Path:
        """Flush everything; returns the finished (still hidden) file."""
        self._submit(lambda: self.writer.close())
        while self.queued:
            self.queued.pop(0).result()
        self.pool.shutdown()
        return self.writer.path

    def discard(self) -> None:
        for future in self.queued:
            future.cancel()
        self.pool.shutdown(wait=True)
        if self.writer is not None:
            try:
                self.writer.container.close()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            self.writer.path.unlink(missing_ok=True)


def _ended_early(container, video_in, frames: int, last_end: dict) -> bool:
    """Fewer frames than the header announces, or every stream stopping well before the file's duration."""
    if video_in.frames:
        return frames < video_in.frames
    duration = (container.duration or 0) / 1e6
    rate = float(video_in.average_rate or video_in.guessed_rate or 25)
    return bool(duration and last_end) and max(last_end.values()) < duration - 1.5 / rate
