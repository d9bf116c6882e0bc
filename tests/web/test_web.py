"""The web application through the framework's test client: the colorize API and its refusals,
the poll's participant flow, the admin pages, and the Turing-test arithmetic."""

import asyncio
import io
import json
import re
import socket
import sqlite3
import threading

import httpx
import numpy as np
import pytest
from conftest import local_client, sample_photo_paths, tiny_poll
from helpers import png_bytes, poll_column
from PIL import Image

from pix2color.colorizing.loading import Network, load_network
from pix2color.poll import build as poll_build
from pix2color.poll import statistics, storage
from pix2color.web.app import Limits, create_app


@pytest.fixture(scope="module")
def networks(small_generator_file):
    return {mode: load_network(small_generator_file, mode) for mode in ("deterministic", "paper")}


@pytest.fixture(scope="module")
def client(networks):
    limits = Limits(upload_bytes=2 * 2**20, pixels=3_000_000, queue=2)
    with local_client(create_app(networks, limits=limits)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def photo():
    return Image.open(sample_photo_paths(1)[0]).convert("RGB").resize((301, 157))


def upload(client, data: bytes, filename="photo.jpg", content_type="image/jpeg", **params):
    return client.post("/api/colorize", params=params, files={"image": (filename, data, content_type)})


# --------------------------------------------------------------------------- colorize API


@pytest.mark.parametrize("image_format, media_type", [("png", "image/png"), ("jpeg", "image/jpeg")])
def test_colorize_returns_an_image_of_the_upload_size(client, photo, image_format, media_type):
    response = upload(client, png_bytes(photo, "JPEG"), format=image_format)
    assert response.status_code == 200 and response.headers["content-type"] == media_type
    result = Image.open(io.BytesIO(response.content))
    assert result.size == photo.size and result.mode == "RGB"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_colorize_recognises_the_content_not_the_name_or_declared_type(client, photo):
    as_text = upload(client, png_bytes(photo), filename="notes.txt", content_type="text/plain")
    assert as_text.status_code == 200  # a PNG, whatever its name and declared type say
    fake = upload(client, b"<html>not an image</html>", filename="photo.png", content_type="image/png")
    assert fake.status_code == 400 and "not an image" in fake.json()["detail"]


def test_paper_mode_and_grayscale(client, photo):
    paper = upload(client, png_bytes(photo), mode="paper")
    assert paper.status_code == 200 and Image.open(io.BytesIO(paper.content)).size == photo.size
    gray = client.post("/api/grayscale", files={"image": ("p.png", png_bytes(photo), "image/png")})
    pixels = np.asarray(Image.open(io.BytesIO(gray.content)).convert("RGB")).astype(int)
    assert gray.status_code == 200 and np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 2  # neutral grays
    assert upload(client, png_bytes(photo), mode="sepia").status_code == 400


def float64_tiff() -> bytes:
    """A real TIFF whose pixels (64-bit floats) Pillow cannot convert to RGB."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.linspace(0, 1, 64).reshape(8, 8))
    return buffer.getvalue()


@pytest.mark.parametrize("case, status, words", [
    ("zero bytes", 400, "empty"),
    ("not an image", 400, "not an image"),
    ("truncated", 400, "the upload"),
    ("too large a file", 413, "larger than the limit"),
    ("too many pixels", 413, "megapixels"),
    ("unconvertible mode", 415, "cannot be converted"),
    ("a format the page does not offer", 400, "not an image"),  # Pillow reads TGA; EPS would run Ghostscript
    ("no image field", 400, "field 'image'"),
])
def test_bad_uploads_are_one_line_4xx(client, photo, case, status, words):
    data = {
        "zero bytes": b"",
        "not an image": b"hello, world\n" * 10,
        "truncated": png_bytes(photo, "JPEG")[:700],
        "too large a file": b"\xff" * (2 * 2**20 + 1),
        "too many pixels": png_bytes(Image.new("L", (2000, 2000))),  # 4 MP, a small file
        "unconvertible mode": float64_tiff(),
        "a format the page does not offer": png_bytes(photo, "TGA"),
    }.get(case)
    if case == "no image field":
        response = client.post("/api/colorize", files={"picture": ("p.png", png_bytes(photo), "image/png")})
    else:
        response = upload(client, data)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and "Traceback" not in response.text
    page = client.post("/api/colorize", files={"image": ("x.png", data or b"", "image/png")},
                       headers={"Accept": "text/html"}) if data is not None else None
    if page is not None:  # a browser gets a page with the same line
        assert page.status_code == status and "<p class=\"error\"" in page.text


def test_health_and_page(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["colorize"]["deterministic"]["image_size"] == 32
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "paper" in page.text


def test_full_queue_answers_503_with_retry_after(photo):
    """One colorization runs, `queue` wait, the next is turned away at once."""
    release = threading.Event()
    started = threading.Event()

    def slow_network(lightness):
        started.set()
        release.wait(30)
        return np.zeros(lightness.shape[:3] + (2,), np.float32)

    app = create_app({"deterministic": Network(slow_network, 32)}, limits=Limits(queue=1))
    data = png_bytes(photo)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            def post():
                return http.post("/api/colorize", files={"image": ("p.png", data, "image/png")})

            running = asyncio.create_task(post())
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
            waiting = asyncio.create_task(post())
            await asyncio.sleep(0.2)
            refused = await post()
            release.set()
            return refused, await running, await waiting

    refused, running, waiting = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
    assert "busy" in refused.json()["detail"]
    assert running.status_code == 200 and waiting.status_code == 200


# --------------------------------------------------------------------------- the Turing test


def test_report_confusion_matrix_arithmetic():
    """Fed the report's own answers, the rates are the report's: TPR 0.7246, TNR 0.5548, FPR 0.4452."""
    results = statistics.Results.from_matrix(statistics.REPORT_MATRIX)
    tpr, tnr, fpr = results.rates()
    assert (tpr.successes, tpr.trials, tnr.successes, tnr.trials, fpr.successes, fpr.trials) == (
        1292, 1783, 1231, 2219, 988, 2219)
    assert (round(tpr.value, 4), round(tnr.value, 4), round(fpr.value, 4)) == (0.7246, 0.5548, 0.4452)
    text = results.report()
    assert "Original          1292         491" in text and "Colorized          988        1231" in text
    assert "44.5%" in text
    low, high = fpr.interval  # Wilson: strictly inside (0, 1), around the rate
    assert low < fpr.value < high and high - low < 0.05


def test_wilson_interval_matches_published_values():
    """Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I."""
    for (successes, trials), expected in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
                                           (0, 20): (0.0, 0.1611)}.items():
        low, high = statistics.wilson_interval(successes, trials)
        assert (round(low, 4), round(high, 4)) == expected
    assert statistics.wilson_interval(0, 0) is None


def not_a_poll_database(database, kind):
    """A poll.sqlite that holds no pix2color poll: empty, junk, another database, or a poll whose
    build was interrupted before it recorded its protocol."""
    import sqlite3
    from contextlib import closing

    if kind in ("empty", "junk"):
        database.write_bytes(b"" if kind == "empty" else b"SQLite format 2\x00" + bytes(range(256)) * 8)
        return
    with closing(storage.connect(database) if kind == "unfinished" else sqlite3.connect(database)) as connection:
        connection.executescript(storage.SCHEMA if kind == "unfinished" else "CREATE TABLE notes (text TEXT);")


@pytest.mark.parametrize("kind", ["empty", "junk", "another-database", "unfinished"])
def test_a_poll_database_that_holds_no_poll_is_one_line_and_left_as_it_is(tmp_path, kind):
    folder = tmp_path / "poll"
    folder.mkdir()
    not_a_poll_database(folder / storage.DATABASE, kind)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(storage.PollError) as raised:
        storage.Poll(folder)
    message = str(raised.value)
    assert str(folder / storage.DATABASE) in message and "\n" not in message, message
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_poll_folder_is_new_or_empty_and_whole_or_absent(tmp_path, monkeypatch):
    """--out holding other files is refused and left as it is; Ctrl-C while the poll is written
    leaves no folder, and the same build then succeeds."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / storage.SECRET_FILE).write_text("mine")
    with pytest.raises(storage.PollError, match="holds other files"):
        tiny_poll(photos)
    assert [(p.name, p.read_text()) for p in photos.iterdir()] == [(storage.SECRET_FILE, "mine")]

    opaque_name = storage.opaque_name

    def interrupted_at(call):
        calls = iter(range(1000))

        def name():
            if next(calls) == call:
                raise KeyboardInterrupt
            return opaque_name()

        return name

    for call in (1, 7):
        monkeypatch.setattr(storage, "opaque_name", interrupted_at(call))
        with pytest.raises(KeyboardInterrupt):
            tiny_poll(tmp_path / "poll")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    monkeypatch.undo()
    (tmp_path / "poll").mkdir()  # an empty folder is a fine --out
    assert storage.Poll(tiny_poll(tmp_path / "poll")).pair_count == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "poll"]


def test_a_poll_never_takes_its_photos_from_run_or_poll_folders(small_generator_file, tmp_path):
    """Run and poll folders inside --photos hold pictures pix2color drew: left out, as training
    leaves them out, and said so."""

    photos = tmp_path / "photos"
    for name, source in zip(["a.jpg", "sub/b.png"], sample_photo_paths(2)):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(source).convert("RGB").resize((40, 30)).save(photos / name)
    run = photos / "run"
    (run / "plots").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"image_size": 32}))
    for name in ("losses.png", "plots/fig07_samples.png"):
        Image.new("RGB", (40, 30), (200, 30, 30)).save(run / name)
    tiny_poll(photos / "old_poll")
    said = []
    poll = poll_build.build_poll(str(small_generator_file), photos, tmp_path / "poll", pairs=2, log=said.append)
    assert sorted(storage.Poll(poll).sources().values()) == [str(photos / "a.jpg"), str(photos / "sub/b.png")]
    assert f"left out {run}: a pix2color run folder, not photos" in said
    assert f"left out {photos / 'old_poll'}: a pix2color poll folder, not photos" in said
    with pytest.raises(storage.PollError, match="only 2 photos"):
        poll_build.build_poll(str(small_generator_file), photos, tmp_path / "poll3", pairs=3, log=said.append)
    with pytest.raises(storage.PollError, match="a pix2color poll folder, not a folder of photos"):
        poll_build.build_poll(str(small_generator_file), photos / "old_poll", tmp_path / "poll4", pairs=1)


def test_empty_poll_results_are_n_a(tmp_path):
    results = statistics.results(storage.Poll(tiny_poll(tmp_path / "poll")))
    assert results.total == 0 and "n/a" in results.report()


@pytest.mark.parametrize("protocol", ["report", "2afc"])
def test_results_chart_keeps_its_legend_off_the_bars_and_tells_n_a_from_0(protocol):
    """Pair 1: every colorization caught (a share of 0); pair 2: no answers (n/a); pair 3: some."""
    from pix2color.poll import chart

    per_pair = {1: [[2, 0], [0, 2]], 2: [[0, 0], [0, 0]], 3: [[1, 1], [1, 1]]}
    results = statistics.Results(protocol, [[3, 1], [1, 3]], per_pair)
    figure = chart.turing_figure(results)
    figure.canvas.draw()
    axis, = figure.axes
    legends = [*figure.legends, *([axis.get_legend()] if axis.get_legend() else [])]
    assert legends and not any(legend.get_window_extent().overlaps(axis.get_window_extent()) for legend in legends)
    labels = sorted((round(text.get_position()[0], 1), text.get_text()) for text in axis.texts)
    if protocol == "report":  # bars at pair index - 0.2 (originals) and + 0.2 (colorizations)
        assert labels == [(0.2, "0"), (0.8, "n/a"), (1.2, "n/a")]
    else:  # one bar per pair: the share fooled
        assert labels == [(0.0, "0"), (1.0, "n/a")]
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_poll_files_tell_nothing(tmp_path):
    folder = tiny_poll(tmp_path / "poll")
    poll = storage.Poll(folder)
    files = sorted((folder / "images").iterdir())
    assert len(files) == 12 and all(re.fullmatch(r"[0-9a-f]{32}\.png", f.name) for f in files)
    images = [Image.open(f) for f in files]
    assert {(i.size, i.mode, i.format) for i in images} == {((32, 24), "RGB", "PNG")}
    assert not any(i.info or i.getexif() for i in images)  # no metadata
    assert poll.image_path("../poll.sqlite") is None and poll.image_path(files[0].name) == files[0]


@pytest.fixture
def poll_client(tmp_path):
    folder = tiny_poll(tmp_path / "poll", source_names={2: "<script>alert(1)</script>.jpg"})
    app = create_app(poll=storage.Poll(folder), admin_token="s3cret")
    with local_client(app) as test_client:
        yield test_client, folder


def answer_all(client, choose):
    """Answer every trial through the JSON API; `choose(trial)` -> the answer."""
    trial = json_trial(client)
    answered = []
    while not trial["done"]:
        body = {"pair": trial["pair"], "shown": trial["images"], "answer": choose(trial)}
        reply = client.post("/poll/answer", json=body, headers={"Accept": "application/json"})
        assert reply.status_code == 200 and reply.json()["recorded"], reply.text
        answered.append(body)
        trial = reply.json()["next"]
    return answered, trial


def test_participant_sees_every_pair_once_half_originals(poll_client):
    client, folder = poll_client
    poll = storage.Poll(folder)
    intro = client.get("/poll")
    assert intro.status_code == 200 and "You will see 4 photos" in intro.text and 'id="progress"' not in intro.text
    assert not poll.answers() and "pix2color_poll" not in client.cookies  # no participant until Start
    started = client.post("/poll/start", follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == "/poll"
    page = client.get("/poll")
    assert page.status_code == 200 and "1 / 4" in page.text and "pix2color_poll" in client.cookies
    answered, done = answer_all(client, lambda trial: "original")
    assert sorted(a["pair"] for a in answered) == [1, 2, 3, 4]
    versions = [row[2] for row in poll.answers()]
    assert sorted(versions) == ["generated", "generated", "original", "original"]  # balanced
    assert done == {"done": True, "right": 2, "answered": 4}
    final = client.get("/poll")
    assert "You were right 2 times out of 4" in final.text
    other = local_client(client.app)
    other.post("/poll/start")  # a second participant: their own order
    assert storage.Poll(folder).answers() and len(poll.answers()) == 4


def test_trial_pages_are_the_same_whichever_version_is_shown(poll_client):
    """Blind: apart from the opaque image names and the trial numbers, every trial page is the
    same HTML, whether it shows the original or the colorization; no source name appears."""
    client, folder = poll_client
    client.post("/poll/start")
    pages, versions = set(), set()
    for _ in range(4):
        html = client.get("/poll").text
        assert not any(f"photo{index}.jpg" in html for index in range(4)) and "script>alert" not in html
        pair = int(re.search(r'name="pair" value="(\d+)"', html).group(1))
        shown = re.search(r'name="shown" value="([^"]+)"', html).group(1)
        pages.add(re.sub(r"[0-9a-f]{32}\.png|value=\"\d+\"|\d+ / 4", "X", html))
        client.post("/poll/answer", data={"pair": pair, "shown": shown, "answer": "original"})
    versions = {row[2] for row in storage.Poll(folder).answers()}
    assert versions == {"original", "generated"} and len(pages) == 1


def test_answers_are_checked_and_idempotent(poll_client):
    client, folder = poll_client
    trial = json_trial(client)
    body = {"pair": trial["pair"], "shown": trial["images"], "answer": "colorized"}
    first = client.post("/poll/answer", json=body, headers={"Accept": "application/json"})
    again = client.post("/poll/answer", json={**body, "answer": "original"}, headers={"Accept": "application/json"})
    assert first.json()["recorded"] is True and again.status_code == 200 and again.json()["recorded"] is False
    assert [row[3] for row in storage.Poll(folder).answers()] == ["generated"]  # the first answer stands
    unknown = client.post("/poll/answer", json={**body, "pair": 99})
    assert unknown.status_code == 422 and "not one of this participant's pairs" in unknown.json()["detail"]
    poll = storage.Poll(folder)
    second = client.get("/poll", headers={"Accept": "application/json"}).json()
    other_image = next(name for name in poll.image_names  # an image of neither trial (names are random)
                       if name not in trial["images"] + second["images"]
                       + [trial["gray"].rsplit("/", 1)[-1], second["gray"].rsplit("/", 1)[-1]])
    wrong = client.post("/poll/answer", json={"pair": second["pair"], "shown": [other_image], "answer": "original"})
    assert wrong.status_code == 422 and "not about the images" in wrong.json()["detail"]
    bad = client.post("/poll/answer", json={"pair": second["pair"], "shown": second["images"], "answer": "maybe"})
    assert bad.status_code == 422
    stranger = local_client(client.app).post("/poll/answer", json=body)
    assert stranger.status_code == 403


def test_html_form_flow_redirects_to_the_next_trial(poll_client):
    client, _ = poll_client
    page = client.post("/poll/start").text  # redirected to the first trial
    pair = re.search(r'name="pair" value="(\d+)"', page).group(1)
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    reply = client.post("/poll/answer", data={"pair": pair, "shown": shown, "answer": "original"},
                        follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/poll"
    assert "2 / 4" in client.get("/poll").text


def test_admin_needs_the_token_and_escapes_what_it_shows(poll_client):
    client, _ = poll_client
    answer_all(client, lambda trial: "generated")
    for path in ("/admin", "/admin/results.csv", "/admin/results.png"):
        assert client.get(path).status_code == 401
        assert client.get(path, params={"token": "wrong"}).status_code == 401
    page = client.get("/admin", params={"token": "s3cret"})
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    csv_text = client.get("/admin/results.csv", headers={"Authorization": "Bearer s3cret"}).text
    assert csv_text.splitlines()[0].startswith("pair,photo,") and len(csv_text.splitlines()) == 5
    chart = client.get("/admin/results.png", params={"token": "s3cret", "exclude": "2"})
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"
    assert "pairs left out: 2" in client.get("/admin", params={"token": "s3cret", "exclude": "2"}).text


def test_one_address_makes_a_bounded_number_of_participants_a_minute(tmp_path):
    """A client dropping its cookie becomes a new participant each time; past the limit it gets a
    one-line 429 and nothing is stored, while participants it already made go on answering."""
    folder = tiny_poll(tmp_path / "poll")
    app = create_app(poll=storage.Poll(folder), limits=Limits(new_participants=3))
    with local_client(app) as client:
        for _ in range(3):
            client.cookies.clear()
            assert client.post("/poll/start").status_code == 200
        kept = dict(client.cookies)
        client.cookies.clear()
        refused = client.post("/poll/start", headers={"Accept": "application/json"}, follow_redirects=False)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert "new participants from one address" in refused.json()["detail"]
        assert client.post("/poll/start", headers={"Accept": "application/json"}).status_code == 429  # programs, too
        assert _participants(folder) == 3
        client.cookies.update(kept)
        trial = client.get("/poll", headers={"Accept": "application/json"}).json()
        assert trial["done"] is False and trial["position"] == 1


def _participants(folder) -> int:
    with sqlite3.connect(folder / storage.DATABASE) as database:
        return database.execute("SELECT COUNT(*) FROM participants").fetchone()[0]


def test_2afc_poll_reports_percent_fooled(tmp_path):
    folder = tiny_poll(tmp_path / "poll2", protocol="2afc")
    poll = storage.Poll(folder)
    with local_client(create_app(poll=poll, admin_token="t")) as client:
        page = client.post("/poll/start").text
        assert "Which one is the real photo?" in page and page.count("This one is real") == 2

        def pick_generated(trial):
            originals = {storage.Poll(folder).image_path(n) for n in trial["images"]}
            assert len(originals) == 2
            return next(name for name in trial["images"] if name in generated_names)

        generated_names = set(poll_column(folder, "generated"))
        answer_all(client, pick_generated)
    results = statistics.results(poll)
    assert results.matrix == [[0, 4], [0, 0]]
    assert "% fooled: 100.0%" in results.report()


def json_trial(client):
    """Start (or go on) as a program does: POST /poll/start, redirected to /poll, as JSON."""
    return client.post("/poll/start", headers={"Accept": "application/json"}).json()


@pytest.mark.parametrize("body", [
    {"pair": 100000000000000000000000, "shown": ["x.png"], "answer": "original"},  # beyond SQLite's 64 bits
    {"pair": -(2**63) - 1, "shown": ["x.png"], "answer": "original"},
    [1, 2, 3], "pair", None, 7,
    {"pair": [1], "shown": ["x.png"], "answer": "original"},
    {"pair": 1, "shown": {"a": 1}, "answer": "original"},
    {"pair": 1, "shown": ["x.png"], "answer": ["original"]},
])
def test_malformed_json_answers_are_one_line_4xx(poll_client, body):
    client, folder = poll_client
    json_trial(client)
    reply = client.post("/poll/answer", content=json.dumps(body),
                        headers={"Accept": "application/json", "Content-Type": "application/json"})
    assert 400 <= reply.status_code < 500, reply.text
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in reply.text
    assert storage.Poll(folder).answers() == []


def test_json_nested_too_deep_to_parse_is_a_400(poll_client):
    """6 KB of nested brackets (within the body limit) exceed Python's recursion limit in the parser."""
    client, folder = poll_client
    json_trial(client)
    reply = client.post("/poll/answer", content="[" * 3000 + "]" * 3000,
                        headers={"Accept": "application/json", "Content-Type": "application/json"})
    assert reply.status_code == 400 and "not JSON" in reply.json()["detail"]
    assert storage.Poll(folder).answers() == []


def test_a_form_answer_with_a_huge_pair_number_is_a_4xx(poll_client):
    client, folder = poll_client
    json_trial(client)
    reply = client.post("/poll/answer", data={"pair": "100000000000000000000000", "shown": "x.png",
                                              "answer": "original"})
    assert reply.status_code == 422 and "not one of this participant's pairs" in reply.json()["detail"]
    assert storage.Poll(folder).answers() == []


def test_only_the_trial_shown_now_can_be_answered(poll_client):
    """The server keeps each participant's place: an answer about a later pair (its images named
    right, as a participant reading the page's source could) is refused and not counted."""
    client, folder = poll_client
    current = json_trial(client)
    later = next(pair for pair in range(1, 5) if pair != current["pair"])
    with sqlite3.connect(folder / storage.DATABASE) as database:
        version, original, generated = database.execute(
            "SELECT t.version, p.original, p.generated FROM trials t JOIN pairs p ON p.id = t.pair WHERE t.pair = ?",
            (later,)).fetchone()
    shown = [original if version == "original" else generated]
    reply = client.post("/poll/answer", json={"pair": later, "shown": shown, "answer": "original"},
                        headers={"Accept": "application/json"})
    assert reply.status_code == 409 and "not the trial shown" in reply.json()["detail"], reply.text
    assert storage.Poll(folder).answers() == []
    assert json_trial(client) == current  # still at the same place


# --------------------------------------------------------------------------- what every request passes


def test_a_body_larger_than_its_limit_is_refused_before_it_is_read(poll_client):
    """An answer's body is bounded (a few KB), declared or streamed: 413 (on a real server:
    test_web_server.py's raw-socket tests)."""
    client, folder = poll_client
    trial = json_trial(client)
    declared = client.post("/poll/answer", content=b"{" + b" " * 200_000 + b"}",
                           headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert declared.status_code == 413 and "larger than the limit" in declared.json()["detail"], declared.text
    chunks = (b" " * 1024 for _ in range(1000))  # no Content-Length: sent chunked, counted as it comes
    streamed = client.post("/poll/answer", content=chunks,
                           headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert streamed.status_code == 413 and streamed.headers["connection"] == "close", streamed.text
    assert storage.Poll(folder).answers() == [] and json_trial(client) == trial


def test_uploads_keep_their_own_larger_limit(client, photo):
    """The colorize API takes uploads up to its upload limit (2 MB here), not the answers' few KB."""
    big = np.random.default_rng(1).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    data = png_bytes(Image.fromarray(big))
    assert 1_000_000 < len(data) < 2 * 2**20
    assert upload(client, data).status_code == 200


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9000", "http://localhost:9000", "https://localhost:8000",
                                    "http://evil.example", "null"])
def test_writes_from_another_origin_are_refused(poll_client, origin):
    """Same origin is the scheme, host and port the request was addressed to (here
    http://localhost:8000): a page on another port of the same machine is another site."""
    client, folder = poll_client
    page = client.post("/poll/start").text
    pair = re.search(r'name="pair" value="(\d+)"', page).group(1)
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    form = {"pair": pair, "shown": shown, "answer": "original"}
    refused = client.post("/poll/answer", data=form, headers={"Origin": origin}, follow_redirects=False)
    assert refused.status_code == 403 and "another site" in refused.json()["detail"], refused.text
    assert storage.Poll(folder).answers() == []
    for same in ("http://localhost:8000", "HTTP://LOCALHOST:8000", None):  # scripts send no Origin
        headers = {"Origin": same} if same else {}
        reply = client.post("/poll/answer", data=form, headers=headers, follow_redirects=False)
        assert reply.status_code == 303, reply.text
    assert len(storage.Poll(folder).answers()) == 1


@pytest.mark.parametrize("headers", [
    {"Accept": "application/json", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Accept": "application/json"},  # a program, or a browser that sends neither
])
def test_only_a_post_makes_a_participant(poll_client, headers):
    """GET never makes a participant: another site's page can make its visitors GET /poll (a
    script asking for JSON, an image), never POST /poll/start (`SameOriginWrites`)."""
    client, folder = poll_client
    refused = client.get("/poll", headers=headers)
    assert refused.status_code == 403 and "POST /poll/start" in refused.json()["detail"]
    assert "pix2color_poll" not in client.cookies and _participants(folder) == 0
    cross_site = client.post("/poll/start", headers=headers, follow_redirects=False)
    assert cross_site.status_code == (403 if "Origin" in headers else 303) and _participants(folder) == (
        0 if "Origin" in headers else 1)


FORBIDDEN_WORDS = ("the report", "report's", "pix2pix", "pillow", "generated", " --", "tensorflow", "keras")


@pytest.mark.parametrize("protocol", ["report", "2afc"])
def test_every_page_a_participant_or_organiser_sees_is_in_plain_words(tmp_path, protocol):
    """No "the report", "pix2pix", library names or command-line flags; "colorized", one term."""
    folder = tiny_poll(tmp_path / "poll", protocol)
    seen = {}
    with local_client(create_app(poll=storage.Poll(folder), admin_token="t")) as client:
        seen["intro"] = client.get("/poll").text
        seen["trial"] = client.post("/poll/start").text
        answer_all(client, lambda trial: trial["images"][0] if protocol == "2afc" else "colorized")
        seen["score"] = client.get("/poll").text
        seen["results"] = client.get("/admin", params={"token": "t", "exclude": "1", "complete_only": "1"}).text
        seen["missing"] = client.get("/poll/images/nothing.png", headers={"Accept": "text/html"}).text
        seen["refused"] = client.get("/admin", params={"token": "t", "exclude": "9"}, headers={"Accept": "text/html"}).text
        seen["no token"] = client.get("/admin", headers={"Accept": "text/html"}).text
    for page, html in seen.items():
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)).lower()
        text = text.replace("-->", "")
        assert not [word for word in FORBIDDEN_WORDS if word in text], (page, text)
    assert all("colorized" in seen[page].lower() for page in ("intro", "score", "results"))


def test_pages_let_the_browser_name_their_origin_in_forms(poll_client):
    """Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` with every form it
    posts, the poll's own included (which `null` refuses); `same-origin` sends the page's origin
    to this server and no address to any other."""
    client, _ = poll_client
    assert client.get("/poll").headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("host, status", [
    ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST", 200),
    ("evil.example", 400), ("evil.example:8000", 400), ("localhost.evil.example", 400), ("127.0.0.2", 400),
])
def test_only_requests_addressed_to_this_machine_are_served(poll_client, host, status):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    client, _ = poll_client
    assert client.get("/api/health", headers={"Host": host}).status_code == status


def test_the_allowed_host_names_of_every_interface(monkeypatch):
    from pix2color.web.guards import allowed_host_names

    assert set(allowed_host_names("127.0.0.1")) == {"localhost", "127.0.0.1", "[::1]"}
    assert "[fe80::1]" in allowed_host_names("fe80::1", ["poll.example"])
    assert "poll.example" in allowed_host_names("127.0.0.1", ["poll.example"])
    everywhere = allowed_host_names("0.0.0.0")
    assert socket.gethostname().lower() in everywhere and "127.0.0.1" in everywhere
    import psutil

    addresses = {address.address.split("%")[0] for addresses in psutil.net_if_addrs().values()
                 for address in addresses if address.family in (socket.AF_INET, socket.AF_INET6)}
    assert {address if ":" not in address else f"[{address}]" for address in addresses} <= set(everywhere)


def test_every_page_answers_head(poll_client):
    client, _ = poll_client
    for path in ("/", "/poll", "/api/health", "/favicon.ico", "/static/style.css"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"]


# --------------------------------------------------------------------------- the poll's images


@pytest.mark.parametrize("protocol", ["report", "2afc"])
def test_the_two_colour_versions_differ_only_in_their_pixels(tmp_path, protocol):
    """Same format, size, mode and byte length, no metadata, and served with the same headers:
    only looking at the pictures can tell the original from the colorization."""
    rng = np.random.default_rng(3)
    pairs = []
    for index in range(4):
        original = rng.integers(0, 256, (24 + index, 32, 3), dtype=np.uint8)  # noise: compresses badly
        generated = np.repeat(original[..., :1], 3, -1) // 4  # compresses well
        pairs.append(storage.PollImages(f"p{index}.jpg", original, original, generated))
    folder = storage.write_poll(tmp_path / "poll", pairs, protocol)
    with local_client(create_app(poll=storage.Poll(folder))) as client:
        with sqlite3.connect(folder / storage.DATABASE) as database:
            names = database.execute("SELECT original, generated FROM pairs ORDER BY id").fetchall()
        for (original_name, generated_name), images in zip(names, pairs):
            files = [folder / "images" / original_name, folder / "images" / generated_name]
            assert files[0].stat().st_size == files[1].stat().st_size
            assert png_chunks(files[0]) == png_chunks(files[1])  # types and lengths: nothing labels one
            opened = [Image.open(path) for path in files]
            for image, pixels in zip(opened, [images.original, images.generated]):
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", pixels.shape[1::-1])
                assert np.array_equal(np.asarray(image), pixels)
                assert image.info == {} and not image.getexif() and not getattr(image, "text", {})
            served = [client.get(f"/poll/images/{path.name}") for path in files]
            assert [reply.content for reply in served] == [path.read_bytes() for path in files]
            assert served[0].headers == served[1].headers
            assert "last-modified" not in served[0].headers and "etag" not in served[0].headers


def png_chunks(path) -> list[tuple[bytes, int]]:
    """A PNG file's chunks: (type, length) in order."""
    data, chunks, offset = path.read_bytes(), [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        chunks.append((data[offset + 4:offset + 8], length))
        offset += length + 12
    return chunks


def test_a_poll_with_compressed_images_is_still_served(tmp_path):
    folder = tiny_poll(tmp_path / "poll")
    plain = png_bytes(Image.new("RGB", (32, 24), (10, 20, 30)))  # a compressed PNG, as another build may have written
    name = poll_column(folder, "original")[0]
    (folder / "images" / name).write_bytes(plain)
    with local_client(create_app(poll=storage.Poll(folder))) as client:
        reply = client.get(f"/poll/images/{name}")
    assert reply.status_code == 200 and reply.content == plain and reply.headers["content-type"] == "image/png"


def test_results_count_in_plain_words_and_refuse_pairs_that_do_not_exist(poll_client):
    client, folder = poll_client
    trial = json_trial(client)
    client.post("/poll/answer", json={"pair": trial["pair"], "shown": trial["images"], "answer": "original"})
    poll = storage.Poll(folder)
    assert "1 answer from 1 participant\n" in statistics.results(poll).report() + "\n"
    with pytest.raises(storage.PollError, match=r"^9, 99: no such pairs \(the poll's pairs are 1\.\.4\)"):
        statistics.results(poll, (2, 9, 99))
    page = client.get("/admin", params={"token": "s3cret", "exclude": "2,99"})
    assert page.status_code == 400 and page.json()["detail"] == "pairs to leave out: 99: no such pair (the poll's pairs are 1..4)"


# --------------------------------------------------------------------------- the API's documentation


def api_docs(app) -> tuple[str, list[tuple[str, str]]]:
    """The /api/docs page of `app` (checked to be a page without scripts) and its schema's operations."""
    with local_client(app) as client:
        page = client.get("/api/docs")
        schema = client.get("/api/openapi.json").json()
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text and " style=" not in page.text and "cdn" not in page.text.lower()
    operations = [(method.upper(), path) for path, item in schema["paths"].items() for method in item]
    for method, path in operations:
        assert f"<code>{method} {path}</code>" in page.text, (method, path)
    return page.text, operations


def operation_section(page: str, operation: str) -> str:
    section = page[page.index(f"<code>{operation}</code></h2>"):]
    return section[:section.index("</section>")]


def test_the_poll_s_api_docs_say_what_each_operation_returns(tmp_path):
    page, operations = api_docs(create_app(poll=storage.Poll(tiny_poll(tmp_path / "poll"))))
    assert ("POST", "/poll/answer") in operations and ("POST", "/api/colorize") not in operations
    start = operation_section(page, "POST /poll/start")
    assert "<td>303</td>" in start and "<td>200</td>" not in start and "429" in start
    assert "403" in operation_section(page, "GET /poll")


def test_the_api_docs_are_a_page_without_scripts_listing_every_operation(networks):
    """Swagger UI would need a CDN and an inline script, both refused by the page's own CSP."""
    page, operations = api_docs(create_app(networks))
    assert ("POST", "/api/colorize") in operations and ("POST", "/api/original") in operations
    colorize = operation_section(page, "POST /api/colorize")
    for words in ("multipart/form-data", "<code>image</code>", "file", "<code>format</code>", "one of png, jpeg",
                  "413", "image/png"):
        assert words in colorize, words
