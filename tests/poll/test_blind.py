"""A poll cannot be won without looking: a participant's program that downloads every image of a
trial, and measures anything of the files but the colours a person judges, picks the original no
more often than chance.

The stand-in network predicts the photo's own colours, each turned by a random hue angle and
scaled by a random saturation, both centred on no change: colours a person could not prefer on
average, so that only a trace of how the two versions were made could tell them apart. The
attacker plays through the server, as a participant's browser would."""

import io
from contextlib import closing

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from pix2color.data import sample_photos_dir
from pix2color.loading import Network
from pix2color.photos import FullResolutionColorizer, ab_on_grid, lightness_of_8bit, rgb_to_lab
from pix2color.poll import build, storage
from pix2color.web.app import create_app
from test_web import local_client

PAIRS = 30
NETWORK_SIZE = 64
MAX_SIDE = 192  # the photos are 256 px: scaled down as `turing build --max-side` does
LOW, HIGH = 8, 22  # two-sided 99.5%: out of 30 fair coin flips, fewer than 8 or more than 22 heads happen 0.5% of the time
JSON = {"Accept": "application/json"}


def stand_in_network(seed: int = 0) -> Network:
    """Knows the photos of the sample set by their network input, and answers their own colours,
    turned by up to +-40 degrees of hue and scaled by 0.8-1.25 in saturation."""
    rng = np.random.default_rng(seed)
    recipe = FullResolutionColorizer(None, NETWORK_SIZE)
    answers = {}
    for path in sorted(sample_photos_dir().glob("*.jpg")):
        rgb = build.read_scaled(str(path), MAX_SIDE)
        answers[recipe.prepare(rgb)[1].tobytes()] = ab_on_grid(rgb, NETWORK_SIZE) * np.exp(rng.uniform(-0.25, 0.25))

    def predict_ab(batch):
        return np.stack([answers[np.asarray(item, np.float32).tobytes()] for item in batch])

    return Network(predict_ab, NETWORK_SIZE)


@pytest.fixture(scope="module", params=["report", "2afc"])
def served_poll(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"blind_{request.param}") / "poll"
    build.build_poll(stand_in_network(), sample_photos_dir(), folder, pairs=PAIRS, protocol=request.param,
                     max_side=MAX_SIDE, seed=3, log=lambda line: None)
    with local_client(create_app(poll=storage.Poll(folder), admin_token="t")) as client:
        yield request.param, folder, client


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """What pix2color's own recipe makes the gray from: the lightness, rendered with a = b = 0."""
    return FullResolutionColorizer.finish(lightness_of_8bit(rgb), np.zeros((1, 1, 2), np.float32))


# Anything a program can measure of a downloaded colour file (`data`) beside the trial's gray.
STATISTICS = {
    "the gray recomputed from it, pixels equal to the served gray":
        lambda data, gray: float(np.mean(np.all(gray_of(png(data)) == gray, axis=-1))),
    "its lightness, mean distance to the gray's":
        lambda data, gray: float(np.mean(np.abs(lightness_of_8bit(png(data)) - lightness_of_8bit(gray)))),
    "colour detail (mean |Laplacian| of a and b)":
        lambda data, gray: float(np.mean(np.abs(ndimage.laplace(rgb_to_lab(png(data) / 255.0)[..., 1:],
                                                                mode="nearest")))),
    "lightness detail (mean |Laplacian| of L)":
        lambda data, gray: float(np.mean(np.abs(ndimage.laplace(lightness_of_8bit(png(data)))))),
    "pixels equal to their left neighbour":
        lambda data, gray: float(np.mean(np.all(png(data)[:, 1:] == png(data)[:, :-1], axis=-1))),
    "distinct colours": lambda data, gray: len(np.unique(png(data).reshape(-1, 3), axis=0)),
    "file size": lambda data, gray: len(data),
    "pixels with a channel at 0 or 255 (clipped colours)":
        lambda data, gray: float(np.mean(np.any((png(data) == 0) | (png(data) == 255), axis=-1))),
}


def download(client, trial: dict) -> tuple[np.ndarray, list[bytes]]:
    gray = png(client.get(trial["gray"]).content)
    return gray, [client.get(f"/poll/images/{name}").content for name in trial["images"]]


def play(client, choose) -> tuple[list[tuple[dict, np.ndarray, list[bytes]]], int]:
    """One new participant answers every trial with `choose(gray, files, trial)`; returns what they
    saw and how many answers the server counted right."""
    client.cookies.clear()
    trial = client.post("/poll/start", headers=JSON).json()
    seen = []
    while not trial["done"]:
        gray, files = download(client, trial)
        seen.append((trial, gray, files))
        reply = client.post("/poll/answer", headers=JSON, json={
            "pair": trial["pair"], "shown": trial["images"], "answer": choose(gray, files, trial)})
        assert reply.status_code == 200 and reply.json()["recorded"], reply.text
        trial = reply.json()["next"]
    assert trial["answered"] == PAIRS
    return seen, trial["right"]


def originals(folder) -> set[str]:
    with closing(storage.connect(folder / storage.DATABASE)) as database:
        return {row[0] for row in database.execute("SELECT original FROM pairs")}


def test_the_gray_gives_no_version_away(served_poll):
    """The issue's attack, played as a participant: answer "original" for a colour image whose
    recomputed gray is the served gray in every pixel (2afc: pick the image whose gray matches
    in more pixels)."""
    protocol, _, client = served_poll
    matches = STATISTICS["the gray recomputed from it, pixels equal to the served gray"]
    if protocol == "report":
        _, right = play(client, lambda gray, files, trial: "original" if matches(files[0], gray) == 1.0 else "colorized")
    else:
        _, right = play(client, lambda gray, files, trial: max(
            trial["images"], key=lambda name: matches(files[trial["images"].index(name)], gray)))
    assert LOW <= right <= HIGH, f"{right} of {PAIRS} right"


def test_no_statistic_of_the_files_tells_the_original(served_poll):
    """Every version of every pair as participants download them (report: two participants, who
    see each pair in the two versions); for each statistic, the share of pairs whose original has
    the larger value is that of a coin (an attacker may pick either direction)."""
    protocol, folder, client = served_poll
    files_of: dict[int, dict[str, bytes]] = {}
    grays = {}
    for _ in range(3):  # report: two participants in a row see every pair in both versions between them
        seen, _ = play(client, lambda gray, files, trial: "original" if protocol == "report" else trial["images"][0])
        for trial, gray, files in seen:
            files_of.setdefault(trial["pair"], {}).update(zip(trial["images"], files))
            grays[trial["pair"]] = gray
        if all(len(files) == 2 for files in files_of.values()):
            break
    assert len(files_of) == PAIRS and all(len(files) == 2 for files in files_of.values())
    real = originals(folder)
    for name, statistic in STATISTICS.items():
        wins = 0
        for pair, files in files_of.items():
            (first, first_data), (_, second_data) = sorted(files.items())
            values = [statistic(first_data, grays[pair]), statistic(second_data, grays[pair])]
            if values[0] != values[1]:
                wins += (values[0] > values[1]) == (first in real)
            else:
                wins += 0.5  # a tie tells nothing: a coin
        assert LOW <= wins <= HIGH, f"{name}: the original has the larger value in {wins} of {PAIRS} pairs"
