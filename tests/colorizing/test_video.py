"""Videos: `pix2color colorize clip.mp4` keeps what a viewer notices; the stabiliser steadies
colours within a shot and starts afresh at a cut."""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import sample_photo_paths
from helpers import colorize

from pix2color.bench import clips
from pix2color.colorizing.recipe import FullResolutionColorizer, lightness_of_8bit
from pix2color.colorizing.stabilise import Stabiliser
from pix2color.colorizing.video import colorize_video


def two_shots(width, height, frames_each=8, fps=24):
    photos = sample_photo_paths(2)
    return clips.render([clips.Shot(photos[0], (0.4, 0.5, 0.8), (0.6, 0.5, 0.8), frames_each),
                         clips.Shot(photos[1], (0.5, 0.5, 0.9), (0.5, 0.5, 0.6), frames_each)], width, height, fps)


def describe(path):
    """What a viewer notices in a video file, and its audio packets' bytes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video))
        description = {
            "frames": len(frames), "size": (video.width, video.height), "rate": video.average_rate,
            "times": [float(frame.pts * video.time_base) for frame in frames], "rotation": frames[0].rotation,
            "audio_codec": container.streams.audio[0].codec_context.name if container.streams.audio else None,
        }
    with av.open(str(path)) as container:
        description["audio"] = [bytes(p) for p in container.demux(audio=0) if p.size] if container.streams.audio else []
    return description


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """A photo, an odd-sized rotated clip with a variable frame rate, a sine tone and a cut, and a broken video."""
    folder = tmp_path_factory.mktemp("videos")
    clip = two_shots(97, 55)
    times = [Fraction(index, 24) + (Fraction(1, 48) if index % 3 == 2 else 0) for index in range(len(clip.frames))]
    clips.write_clip(clip, folder / "home movie.mov", crf=18, rotation=-90, times=times)
    (folder / "photo.jpg").write_bytes(Path(sample_photo_paths(3)[2]).read_bytes())
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return folder


def test_folder_of_photo_video_and_broken_video(video_folder, small_generator_file, tmp_path):
    out = tmp_path / "out"
    result = colorize(video_folder, "-o", out, "--model", small_generator_file, "--batch-size", "3")
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["home movie.mp4", "photo.jpg"]  # nothing partial left
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "cannot be opened" in errors[0], result.stderr
    assert "2 colorized" in result.stdout and "1 failed" in result.stdout

    source, produced = describe(video_folder / "home movie.mov"), describe(out / "home movie.mp4")
    assert produced["frames"] == source["frames"] == 16
    assert produced["size"] == source["size"] == (97, 55)  # odd: written as 4:4:4
    assert produced["rate"] == source["rate"]
    assert np.allclose(produced["times"], source["times"], atol=1e-6) and len(set(np.diff(source["times"]).round(4))) > 1
    assert produced["rotation"] == source["rotation"] == -90
    assert produced["audio_codec"] == "aac" and produced["audio"] == source["audio"] and source["audio"]
    # Lightness is the input's own (the network only adds colour), in the stored orientation.
    lightness_in = [lightness_of_8bit(frame) for frame in clips.read_frames(video_folder / "home movie.mov")]
    lightness_out = [lightness_of_8bit(frame) for frame in clips.read_frames(out / "home movie.mp4")]
    assert max(np.abs(a - b).mean() for a, b in zip(lightness_in, lightness_out)) < 3.0


def test_truncated_video_writes_its_frames_and_one_line(small_generator_file, tmp_path):
    whole = clips.write_clip(two_shots(64, 48, frames_each=24), tmp_path / "whole.mkv", crf=18)
    data = whole.read_bytes()
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = colorize(truncated, "-o", out, "--model", small_generator_file, "--stabilise", "off")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cut.mkv" in errors[0] and "truncated" in errors[0], result.stderr
    written = describe(out / "cut.mp4")["frames"]
    assert 0 < written < 48 and f"{written} frames decoded of about 4" in errors[0]  # Matroska: no frame count


def test_unknown_codec_is_refused_before_any_work(video_folder, small_generator_file, tmp_path):
    from pix2color.cli.colorize import main

    assert main([str(video_folder / "home movie.mov"), "-o", str(tmp_path / "out"), "--model",
                 str(small_generator_file), "--codec", "no-such-codec", "--verbose", "0"]) == 2
    assert main([str(video_folder / "home movie.mov"), "-o", str(tmp_path / "out"), "--model",
                 str(small_generator_file), "--codec", "libx264", "--video-format", "webm", "--verbose", "0"]) == 2
    assert not (tmp_path / "out").exists()


def test_video_outputs_follow_the_rules_of_photos(small_generator_file, tmp_path, capsys):
    """-o the video's own folder: clip_colorized.mp4 (the input is never written); the output
    existing: skipped, status 0; --overwrite: replaced, the input still untouched."""
    from pix2color.cli.colorize import main

    clip = clips.write_clip(two_shots(32, 24, frames_each=2), tmp_path / "clip.mp4", audio_seconds=0)
    original = clip.read_bytes()
    arguments = [str(clip), "-o", str(tmp_path), "--model", str(small_generator_file), "--verbose", "0"]
    for extra, said in (([], "1 colorized"), ([], "1 skipped (their outputs exist"), (["--overwrite"], "1 colorized")):
        status = main(arguments + extra)
        captured = capsys.readouterr()
        assert status == 0 and said in captured.out, captured.err
        assert clip.read_bytes() == original and describe(tmp_path / "clip_colorized.mp4")["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_colorized.mp4"]  # no temporary left


# --------------------------------------------------------------------------- the stabiliser


def network_inputs(clip):
    return [lightness_of_8bit(frame) for frame in clip.frames]


def test_cuts_are_found_where_they_are_and_no_colour_crosses_them():
    clip = clips.render(clips.default_shots(seconds=2.0, fps=24), 160, 90, 24)  # cuts at 16 and 32
    stabiliser = Stabiliser(strength=0.9)
    predictions = [np.full((64, 64, 2), 0.3 if clip.shot_of_frame[t] == 1 else -0.3, np.float32)
                   for t in range(len(clip.frames))]
    outputs = [stabiliser(lightness, ab) for lightness, ab in zip(network_inputs(clip), predictions)]
    assert stabiliser.cuts == clip.cuts == [16, 32]
    for cut in clip.cuts:  # the new shot's own prediction, untouched by the previous shot's colours
        np.testing.assert_allclose(outputs[cut], np.full((256, 256, 2), predictions[cut][0, 0]), atol=1e-6)
    assert outputs[cut + 1].max() == pytest.approx(predictions[cut + 1].max(), abs=1e-6)


def test_stabiliser_steadies_a_steady_scene_and_follows_a_moving_one():
    clip = clips.render([clips.Shot(sample_photo_paths(1)[0], (0.3, 0.5, 0.6), (0.7, 0.5, 0.6), 24)], 160, 90, 24)
    inputs = network_inputs(clip)
    rng = np.random.default_rng(0)
    # Predictions: a colour attached to the scene (it pans with it) plus frame-to-frame noise.
    squashed = [cv2.resize(lightness, (64, 64), interpolation=cv2.INTER_AREA) / 100.0 for lightness in inputs]
    truth = [np.stack([lightness, -lightness], axis=-1) * 0.5 for lightness in squashed]
    noisy = [ab + rng.normal(0, 0.05, ab.shape).astype(np.float32) for ab in truth]
    stabiliser = Stabiliser(resolution=64)
    steadied = [stabiliser(lightness, ab) for lightness, ab in zip(inputs, noisy)]
    inner = np.s_[8:-8, 8:-8]  # away from the edges the pan uncovers
    noise_before = np.mean([np.abs(a - t)[inner].mean() for a, t in zip(noisy[8:], truth[8:])])
    noise_after = np.mean([np.abs(a - t)[inner].mean() for a, t in zip(steadied[8:], truth[8:])])
    assert stabiliser.cuts == []
    assert noise_after < 0.6 * noise_before  # steadier, and still on the moving scene's colours


def test_audio_the_container_cannot_take_is_reencoded_and_said(video_folder, tmp_path):
    """AAC cannot go in WebM: re-encoded as Opus (44.1 -> 48 kHz), with a note; all frames kept."""
    recipe = FullResolutionColorizer(lambda lightness: np.zeros(lightness.shape[:3] + (2,), np.float32), 32)
    result = colorize_video(video_folder / "home movie.mov", tmp_path / "movie.webm", recipe, 4, codec="libvpx-vp9")
    assert any("re-encoded as opus" in note for note in result.notes) and result.problem is None
    produced = describe(tmp_path / "movie.webm")
    assert produced["frames"] == 16 and produced["audio_codec"] == "opus" and len(produced["audio"]) > 10
