"""The web pages in a real browser: headless Chromium (Debian's, driven by Playwright).

`.ci/run` installs Chromium; elsewhere, without /usr/bin/chromium, these tests are skipped with
that reason. Screenshots go to the test's folder (and, with PIX2COLOR_SCREENSHOTS=DIR, to DIR:
the README's pictures come from there).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import sample_photo_paths
from pix2color import turing
from pix2color.web.local_server import LocalServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium (apt-get install chromium)")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("PIX2COLOR_SCREENSHOTS"):
        folder = Path(os.environ["PIX2COLOR_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)


def test_upload_a_photo_and_download_its_colorization(browser, small_generator_file, tmp_path):
    photo = tmp_path / "holiday.jpg"
    Image.open(sample_photo_paths(3)[2]).convert("RGB").resize((400, 300)).save(photo, quality=92)
    with LocalServer(["--model", str(small_generator_file)]) as server:
        page = browser.new_page(accept_downloads=True)
        page.goto(server.url + "/")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        assert page.inner_text("#status").startswith("Done")
        for image in ("gray", "colorized", "original"):  # all three shown, at the photo's size
            size = page.eval_on_selector(f"#{image}", "img => [img.naturalWidth, img.naturalHeight]")
            assert size == [400, 300], (image, size)
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.name == "holiday_colorized.png" and Image.open(saved).size == (400, 300)
        screenshot(page, tmp_path / "colorize_page.png")

        page.set_input_files("#file", {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"})
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "not an image" in page.inner_text("#error")
        page.close()


def test_take_a_whole_poll_to_the_score_page(browser, tmp_path):
    rng = np.random.default_rng(0)
    pairs = []
    for index, path in enumerate(sample_photo_paths(4)):
        original = np.asarray(Image.open(path).convert("RGB").resize((256, 192)))
        generated = np.clip(original.astype(int) + rng.integers(-30, 30, 3), 0, 255).astype(np.uint8)
        gray = np.repeat(original.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
        pairs.append(turing.PollImages(path, gray, original, generated))
    folder = turing.write_poll(tmp_path / "poll", pairs, "report", seed=2)
    with LocalServer(["--poll", str(folder), "--admin-token", "tok"]) as server:
        page = browser.new_page()
        page.goto(server.url + "/")  # a poll-only server sends participants to /poll
        for number in range(1, 5):
            assert page.inner_text("#progress") == f"{number} / 4"
            if number == 2:
                screenshot(page, tmp_path / "poll_page.png")
            page.click("#answer-original" if number % 2 else "#answer-generated")
        page.wait_for_selector("#score")
        assert "out of 4" in page.inner_text("#score")
        screenshot(page, tmp_path / "poll_score.png")
        page.reload()  # the cookie keeps the participant: still done, no new trials
        assert page.is_visible("#score")
        admin = browser.new_page()
        admin.goto(server.url + "/admin?token=tok")
        assert "4 answers from 1 participant" in admin.inner_text("#report")
        screenshot(admin, tmp_path / "poll_results.png")
    assert len(turing.Poll(folder).answers()) == 4
