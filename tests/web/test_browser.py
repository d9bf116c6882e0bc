"""The web pages in a real browser: headless Chromium (Debian's, driven by Playwright).

`.ci/run` installs Chromium; elsewhere, without /usr/bin/chromium, these tests are skipped with
that reason. Screenshots go to the test's folder (and, with PIX2COLOR_SCREENSHOTS=DIR, to DIR:
docs/'s pictures come from there).
"""

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import sample_photo_paths
from helpers import serving
from PIL import Image
from playwright.sync_api import expect

from pix2color.bench.local_server import LocalServer
from pix2color.colorizing.loading import Network
from pix2color.poll import storage
from pix2color.web.app import create_app

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


@contextmanager
def served_at(app):
    """`app` served from this process (helpers.serving: no TensorFlow to start, unlike
    `pix2color serve`); yields its address."""
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


def stand_in_networks() -> dict:
    """The two modes without TensorFlow: a fixed warm tint, and a random one each time."""
    rng = np.random.default_rng(0)

    def fixed(lightness):
        return np.full(lightness.shape[:3] + (2,), 0.15, np.float32)

    def random(lightness):
        return rng.uniform(-0.3, 0.3, lightness.shape[:3] + (2,)).astype(np.float32)

    return {"deterministic": Network(fixed, 32), "paper": Network(random, 32)}


@pytest.fixture(scope="module")
def colorize_url():
    """The colorize page and API, with stand-in networks (the page is under test, not a model)."""
    with served_at(create_app(stand_in_networks())) as url:
        yield url


def small_photo(folder: Path, name: str = "holiday.jpg", index: int = 2) -> Path:
    photo = folder / name
    Image.open(sample_photo_paths(3)[index]).convert("RGB").resize((400, 300)).save(photo, quality=92)
    return photo


def shows_no_result(page) -> None:
    """No result area, no image box and no download link: nothing of a photo that is not there."""
    for selector in ("#result", "#gray", "#colorized", "#original", "#download"):
        assert not page.is_visible(selector), selector
    assert page.get_attribute("#download", "href") is None
    for image in ("gray", "colorized", "original"):
        assert not page.get_attribute(f"#{image}", "src"), image


def wait_until(page, condition, seconds: float = 30):
    """Let the page run until `condition()` holds (events such as held requests arrive meanwhile)."""
    for _ in range(int(seconds * 20)):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still not so after {seconds} s")


def test_the_empty_colorize_page_shows_no_result(browser, colorize_url):
    page = browser.new_page()
    page.goto(colorize_url + "/")
    shows_no_result(page)
    page.close()


def test_upload_a_photo_and_download_its_colorization(browser, colorize_url, tmp_path):
    photo = small_photo(tmp_path)
    page = browser.new_page(accept_downloads=True)
    page.goto(colorize_url + "/")
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
    page.close()


@pytest.mark.parametrize("kind", ["tiff", "float-tiff"])
def test_a_tiff_original_is_shown(browser, colorize_url, tmp_path, kind):
    """Chromium cannot show TIFF: the page shows the photo as pix2color read it instead of a broken
    image; a float TIFF in 0..1 is read as such, not as a black image."""
    rgb = np.asarray(Image.open(small_photo(tmp_path)).convert("RGB"))
    photo = tmp_path / "scan.tif"
    if kind == "tiff":
        Image.fromarray(rgb).save(photo, "TIFF")
    else:
        Image.fromarray(rgb.mean(axis=-1).astype(np.float32) / 255.0, "F").save(photo, "TIFF")
    page = browser.new_page()
    page.goto(colorize_url + "/")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    for image in ("gray", "colorized", "original"):
        size = page.eval_on_selector(f"#{image}", "img => [img.naturalWidth, img.naturalHeight]")
        assert size == [400, 300], (image, size)
    mean = page.eval_on_selector("#original", """img => {
        const canvas = document.createElement("canvas");
        [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let index = 0; index < data.length; index += 4) sum += data[index + 1];
        return sum / (data.length / 4);
    }""")
    assert abs(mean - rgb[..., 1 if kind == "tiff" else slice(None)].mean()) < 2, mean
    page.close()


def test_switching_the_mode_colorizes_the_photo_again(browser, colorize_url, tmp_path):
    page = browser.new_page()
    page.goto(colorize_url + "/")
    labels = {page.get_attribute(f'label:has(input[value="{mode}"])', "title"): page.inner_text(
        f'label:has(input[value="{mode}"])').strip() for mode in ("deterministic", "paper")}
    assert list(labels.values()) == ["Same colours every time", "Random variation, as in the report"]
    deterministic, paper = labels  # the technical names are in the tooltips
    assert deterministic.startswith("deterministic mode") and paper.startswith("paper mode: dropout on at test time")

    page.set_input_files("#file", str(small_photo(tmp_path)))
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    first = page.get_attribute("#colorized", "src")
    with page.expect_request(lambda request: "/api/colorize" in request.url) as sent:
        page.check('input[name="mode"][value="paper"]')
    assert "mode=paper" in sent.value.url
    expect(page.locator("#status")).to_have_text(re.compile("^Done: holiday"), timeout=60_000)
    second = page.get_attribute("#colorized", "src")
    assert second.startswith("blob:") and second != first and page.get_attribute("#download", "href") == second
    assert page.is_visible("#result")
    page.close()


def test_a_new_upload_and_an_error_clear_the_old_result(browser, colorize_url, tmp_path):
    page = browser.new_page()
    page.goto(colorize_url + "/")
    page.set_input_files("#file", str(small_photo(tmp_path)))
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    old_link = page.get_attribute("#download", "href")
    assert old_link.startswith("blob:")

    held = []  # the next photo's colorization is held back: meanwhile no old result shows
    page.route("**/api/colorize*", lambda route: held.append(route))
    page.set_input_files("#file", str(small_photo(tmp_path, "second.jpg", 1)))
    wait_until(page, lambda: held)
    shows_no_result(page)
    held[0].continue_()
    page.unroute("**/api/colorize*")
    expect(page.locator("#status")).to_have_text(re.compile("^Done: second"), timeout=60_000)
    assert page.is_visible("#result") and page.get_attribute("#download", "href") not in (None, old_link)

    page.set_input_files("#file", {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"})
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "not an image" in page.inner_text("#error")
    shows_no_result(page)
    page.close()


def poll_pairs(sizes: list[tuple[int, int]]) -> list[storage.PollImages]:
    """A pair per (width, height): a sample photo, its grayscale and a "colorization" (shifted colours)."""
    rng = np.random.default_rng(0)
    pairs = []
    for path, size in zip(sample_photo_paths(len(sizes)), sizes):
        original = np.asarray(Image.open(path).convert("RGB").resize(size))
        generated = np.clip(original.astype(int) + rng.integers(-30, 30, 3), 0, 255).astype(np.uint8)
        gray = np.repeat(original.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
        pairs.append(storage.PollImages(path, gray, original, generated))
    return pairs


def poll_server(folder: Path):
    """The poll of `folder`, served from this process (admin token "tok"); yields its address."""
    return served_at(create_app(poll=storage.Poll(folder), admin_token="tok"))


def test_error_pages_link_back_without_javascript(browser, tmp_path):
    folder = storage.write_poll(tmp_path / "poll", poll_pairs([(256, 192)] * 2), "report")
    with poll_server(folder) as url:
        page = browser.new_page()
        for address, back in [("/poll/images/no-such-image.png", "/poll"), ("/nowhere", "/")]:
            page.goto(url + address)
            assert page.inner_text(".error")
            assert not page.query_selector_all('[href^="javascript:"], [onclick]')
            page.click("#back")
            page.wait_for_url(url + back + "*")
            assert page.is_visible("main") and not page.query_selector(".error")
        page.close()


PHOTO_SIZES = [(256, 192), (192, 256), (256, 256), (640, 427)]  # the network's 256 px, upright, square, larger
SCREENS = {"laptop": {"viewport": {"width": 1366, "height": 768}},
           "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
                     "has_touch": True}}


@contextmanager
def poll_page(browser, tmp_path, protocol: str, screen: str = "laptop", sizes=PHOTO_SIZES):
    """A new participant's page on a poll of photos of `sizes`, on a screen of SCREENS; yields the
    page and the poll's folder."""
    folder = storage.write_poll(tmp_path / f"poll_{protocol}_{screen}", poll_pairs(sizes), protocol, seed=1)
    with poll_server(folder) as url:
        context = browser.new_context(**SCREENS[screen])
        page = context.new_page()
        page.goto(url + "/poll")
        try:
            yield page, folder
        finally:
            context.close()


def answer_buttons(page) -> list:
    return page.query_selector_all('button[name="answer"]')


def images_loaded(page) -> list[dict]:
    """The trial's images once the page has loaded: their natural and displayed sizes and scaling."""
    page.wait_for_load_state("load")  # images loaded, and the page's handlers of their load events run
    return page.eval_on_selector_all(".pair img", """images => images.map((image) => ({
        natural: [image.naturalWidth, image.naturalHeight],
        box: [image.getBoundingClientRect().width, image.getBoundingClientRect().height],
        rendering: getComputedStyle(image).imageRendering}))""")


@pytest.mark.parametrize("protocol, task", [("report", "Say which you think it is"), ("2afc", "Pick the real one")])
def test_the_poll_starts_with_what_the_study_is(browser, tmp_path, protocol, task):
    with poll_page(browser, tmp_path, protocol) as (page, _):
        text = page.inner_text("main")
        assert "tell a real photo from a colorized one" in text and task in text
        assert f"You will see {len(PHOTO_SIZES)} photos" in text and "anonymous" in text
        assert not page.query_selector("#progress") and not answer_buttons(page)
        page.click("#start")
        expect(page.locator("#progress")).to_have_text(f"1 / {len(PHOTO_SIZES)}")
        page.reload()  # the participant's cookie: the trials go on, no second introduction
        expect(page.locator("#progress")).to_have_text(f"1 / {len(PHOTO_SIZES)}")


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("protocol", storage.PROTOCOLS)
def test_every_trial_fits_the_screen_without_scrolling(browser, tmp_path, protocol, screen):
    with poll_page(browser, tmp_path, protocol, screen) as (page, _):
        viewport = page.viewport_size
        page.click("#start")
        for number in range(1, len(PHOTO_SIZES) + 1):
            expect(page.locator("#progress")).to_have_text(f"{number} / {len(PHOTO_SIZES)}")
            images_loaded(page)
            buttons = answer_buttons(page)
            assert len(buttons) == 2
            for button in buttons:
                box = button.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
                assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
            scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            assert scroll == [viewport["width"], viewport["height"]], scroll  # nothing to scroll to
            if number == 1:
                screenshot(page, tmp_path / f"poll_{protocol}_{screen}.png")
            buttons[0].click()
        expect(page.locator("#score")).to_be_visible()


@pytest.mark.parametrize("protocol", storage.PROTOCOLS)
def test_poll_images_are_at_most_twice_their_size_and_the_two_alike(browser, tmp_path, protocol):
    with poll_page(browser, tmp_path, protocol, sizes=[(256, 192), (192, 256)]) as (page, _):
        page.click("#start")
        for number in (1, 2):
            expect(page.locator("#progress")).to_have_text(f"{number} / 2")
            images = images_loaded(page)
            assert len(images) == 2
            for image in images:
                (width, height), (shown_width, shown_height) = image["natural"], image["box"]
                assert shown_width <= 2 * width and shown_height <= 2 * height, image
                if shown_width > width:  # enlarged: crisp pixels, not a blur
                    assert image["rendering"] == "pixelated", image
            assert images[0]["box"] == images[1]["box"]
            answer_buttons(page)[1].click()


@pytest.mark.parametrize("protocol, button", [("report", "#answer-original"), ("2afc", "#answer-1")])
def test_the_score_page_says_what_the_score_means(browser, tmp_path, protocol, button):
    """report: every answer "Real photo", so every colorized photo was taken for real; 2afc:
    always the left one, which is the colorization about half the time."""
    with poll_page(browser, tmp_path, protocol) as (page, folder):
        page.click("#start")
        for number in range(1, len(PHOTO_SIZES) + 1):
            expect(page.locator("#progress")).to_have_text(f"{number} / {len(PHOTO_SIZES)}")
            page.click(button)
        score, meaning = page.inner_text("#score"), " ".join(page.inner_text("#meaning").split())
        if protocol == "report":  # half the photos shown were colorized
            assert score == "You were right 2 times out of 4."
            assert "Of the 2 colorized photos you saw, you took 2 for real ones (100%)." in meaning
            assert "guessing at random is right about half the time" in meaning
        else:  # 2afc answers are the version picked as the real photo
            fooled = [answer for *_, answer, _, _ in storage.Poll(folder).answers()].count("generated")
            assert score == f"You picked the real photo {4 - fooled} times out of 4."
            assert f"the colorized one looked more real to you {fooled} times ({25 * fooled}%)" in meaning
            assert "at 50% you could not tell the colorizations from the real photos" in meaning


def table(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tr", """rows => rows.map(
        (row) => [...row.children].map((cell) => cell.innerText.trim()))""")


def test_the_results_page_shows_tables_and_the_chart(browser, tmp_path):
    """One participant answers "Real photo" to all 4 trials (2 originals, 2 colorizations shown)."""
    with poll_page(browser, tmp_path, "report") as (page, folder):
        page.click("#start")
        for number in range(1, len(PHOTO_SIZES) + 1):
            expect(page.locator("#progress")).to_have_text(f"{number} / {len(PHOTO_SIZES)}")
            page.click("#answer-original")
        page.goto(page.url.replace("/poll", "/admin?token=tok"))
        assert page.inner_text("#summary") == "Turing test (one colour version a trial): 4 answers from 1 participant"
        assert table(page, "#matrix")[1:] == [["original shown", "2", "0"], ["colorization shown", "2", "0"]]
        rates = {row[0].split(" ")[0]: row[1:] for row in table(page, "#rates")[1:]}
        assert rates["TPR"][:2] == ["1.0000", "2/2"] and rates["FPR"][:2] == ["1.0000", "2/2"]
        assert rates["TNR"][:2] == ["0.0000", "0/2"] and rates["TNR"][2].startswith("0.0000 to 0.")
        assert rates["TNR"][3] == "n/a"  # one participant: nothing to resample
        pairs = table(page, "#pairs")[1:]
        assert [row[0] for row in pairs] == ["1", "2", "3", "4"] and all(row[1] == "1" for row in pairs)
        shares = sorted(row[2:4] for row in pairs)  # each pair was shown once: its original or its colorization
        assert shares == [["0/0 (n/a)", "1/1 (1.00)"]] * 2 + [["1/1 (1.00)", "0/0 (n/a)"]] * 2
        sources = storage.Poll(folder).sources()
        assert [row[4] for row in pairs] == [sources[pair] for pair in (1, 2, 3, 4)]
        assert page.eval_on_selector("img.chart", "image => image.complete && image.naturalWidth") > 0
        screenshot(page, tmp_path / "poll_results.png")


@pytest.mark.slow
def test_take_a_whole_poll_to_the_score_page(browser, tmp_path):
    folder = storage.write_poll(tmp_path / "poll", poll_pairs([(256, 192)] * 4), "report", seed=2)
    with LocalServer(["--poll", str(folder), "--admin-token", "tok"]) as server:
        page = browser.new_page()
        page.goto(server.url + "/")  # a poll-only server sends participants to /poll
        page.click("#start")
        for number in range(1, 5):
            assert page.inner_text("#progress") == f"{number} / 4"
            if number == 2:
                screenshot(page, tmp_path / "poll_page.png")
            page.click("#answer-original" if number % 2 else "#answer-colorized")
        page.wait_for_selector("#score")
        assert "out of 4" in page.inner_text("#score")
        screenshot(page, tmp_path / "poll_score.png")
        page.reload()  # the cookie keeps the participant: still done, no new trials
        assert page.is_visible("#score")
        admin = browser.new_page()
        admin.goto(server.url + "/admin?token=tok")
        assert "4 answers from 1 participant" in admin.inner_text("#summary")
        screenshot(admin, tmp_path / "poll_results.png")
    assert len(storage.Poll(folder).answers()) == 4


def test_the_api_docs_page_shows_its_operations_within_the_content_security_policy(browser):
    with served_at(create_app(stand_in_networks())) as url:
        page = browser.new_page()
        refused = []
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.on("pageerror", lambda error: refused.append(str(error)))
        try:
            page.goto(url + "/api/docs")
            expect(page.locator("body")).to_contain_text(re.compile(r"POST\s+/api/colorize"), timeout=5_000)
            page.wait_for_load_state("networkidle")
            assert not refused
        finally:
            page.close()


@pytest.mark.parametrize("address", ["/api/docs", "/admin?token=tok"])
def test_the_api_docs_and_the_results_fit_a_phone_s_width(browser, tmp_path, address):
    """The page itself never scrolls sideways on a phone; a wide table scrolls within its box."""
    with poll_page(browser, tmp_path, "report", screen="phone") as (page, _folder):
        page.click("#start")
        page.click("#answer-original")  # one answer, so the results have rows
        page.goto(page.url.split("/poll")[0] + address)
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= SCREENS["phone"]["viewport"]["width"], width
