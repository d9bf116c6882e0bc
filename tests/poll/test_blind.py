"""A poll cannot be won without looking: a participant's program that downloads every image of a
trial, and measures anything of the files but the colours a person judges, picks the original no
more often than chance.

The photos and the stand-in network (`photos_and_network`) make originals and colorizations whose
colours are alike in distribution, and the colorizations carry a network's faint fingerprint.
The attacker plays through the server, as a participant's browser would."""

import io

import numpy as np
import pytest
from conftest import local_client
from helpers import poll_column
from PIL import Image
from scipy import ndimage

from pix2color.colorizing.loading import Network
from pix2color.colorizing.recipe import (
    FullResolutionColorizer,
    ab_on_grid,
    lab_to_8bit_rgb,
    lightness_of_8bit,
    rgb_to_lab,
)
from pix2color.data import sample_photos_dir
from pix2color.poll import build, storage
from pix2color.web.app import create_app

PAIRS = 30
NETWORK_SIZE = 64
MAX_SIDE = 192  # the photos are 256 px: scaled down as `turing build --max-side` does
LOW, HIGH = 8, 22  # two-sided 99.5%: out of 30 fair coin flips, fewer than 8 or more than 22 heads happen 0.5% of the time
JSON = {"Accept": "application/json"}


# A network's fingerprint: its decoder's transposed convolutions leave a faint pattern of period 2
# on its grid (about 0.5 delta E in a trained U-Net's colorizations, invisible, and a perfect tell).
CHECKERBOARD = (np.indices((NETWORK_SIZE, NETWORK_SIZE)).sum(axis=0) % 2 * 2 - 1)[..., None] * np.float32(3 / 110)


def saturation() -> float:
    return float(np.exp(RNG.uniform(-0.25, 0.25)))


RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def photos_and_network(tmp_path_factory):
    """Photos whose colours are the sample photos' at a random saturation (0.78-1.28), and a
    stand-in network that knows each of them by its input and answers the sample photo's colours
    at another random saturation, with a network's faint pattern on its grid: the originals'
    colours and the colorizations' are alike in distribution, so that only a trace of how the two
    versions were made could tell them apart."""
    folder = tmp_path_factory.mktemp("photos")
    recipe = FullResolutionColorizer(None, NETWORK_SIZE)
    answers = {}
    for path in sorted(sample_photos_dir().glob("*__view.jpg"))[:PAIRS + 10]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        lab = rgb_to_lab(rgb / 255.0)
        lab[..., 1:] *= saturation()
        Image.fromarray(lab_to_8bit_rgb(lab)).save(folder / f"{path.stem}.png")
        shown = build.read_scaled(str(folder / f"{path.stem}.png"), MAX_SIDE)
        own = ab_on_grid(build.read_scaled(str(path), MAX_SIDE), NETWORK_SIZE)
        answers[recipe.prepare(shown)[1].tobytes()] = own * saturation() + CHECKERBOARD

    def predict_ab(batch):
        return np.stack([answers[np.asarray(item, np.float32).tobytes()] for item in batch])

    return folder, Network(predict_ab, NETWORK_SIZE)


@pytest.fixture(scope="module", params=["report", "2afc"])
def served_poll(request, tmp_path_factory, photos_and_network):
    photos, network = photos_and_network
    folder = tmp_path_factory.mktemp(f"blind_{request.param}") / "poll"
    build.build_poll(network, photos, folder, pairs=PAIRS, protocol=request.param, max_side=MAX_SIDE, seed=3,
                     log=lambda line: None)
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
    "a pattern of period 2 on the network's grid": lambda data, gray: grid_pattern(png(data), 2),
    "a pattern of period 4 on the network's grid": lambda data, gray: grid_pattern(png(data), 4),
    "file size": lambda data, gray: len(data),
    "pixels with a channel at 0 or 255 (clipped colours)":
        lambda data, gray: float(np.mean(np.any((png(data) == 0) | (png(data) == 255), axis=-1))),
}


def grid_pattern(rgb: np.ndarray, period: int) -> float:
    """How much the colour steps between the network's grid cells depend on their place modulo
    `period` (a checkerboard's steps alternate strong and weak): the spread of the mean step
    size over the phases, relative to their mean."""
    cell = rgb.shape[1] // NETWORK_SIZE
    ab = rgb_to_lab(rgb / 255.0)[..., 1:]
    grid = ab.reshape(NETWORK_SIZE, cell, NETWORK_SIZE, cell, 2).mean(axis=(1, 3))
    across, down = np.abs(np.diff(grid, axis=1)).mean(axis=(0, 2)), np.abs(np.diff(grid, axis=0)).mean(axis=(1, 2))
    steps = np.array([np.r_[across[phase::period], down[phase::period]].mean() for phase in range(period)])
    return float(steps.std() / steps.mean())


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
    real = set(poll_column(folder, "original"))
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
