"""The web app as users run it: `pix2color serve` and `pix2color turing` as commands, a real
server on loopback under load, and killed mid-poll."""

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ROOT
from helpers import png_bytes, run_cli, serving

from pix2color.bench.local_server import LocalServer
from pix2color.bench.web import bench_poll
from pix2color.poll import statistics, storage
from pix2color.web.app import Limits, create_app


def test_fifty_participants_at_once_lose_no_answer(tmp_path):
    """50 concurrent participants answer 20 pairs each through a real server: every acknowledged
    answer is stored once, none is lost or doubled."""
    stats = bench_poll(participants=50, pairs=20, workdir=str(tmp_path), log=print)
    assert stats["acknowledged"] == stats["stored"] == stats["distinct"] == 1000
    results = statistics.results(storage.Poll(stats["folder"]))
    assert results.total == 1000 and len(results.per_participant) == 50
    assert {sum(map(sum, matrix)) for matrix in results.per_participant.values()} == {20}
    assert sum(results.matrix[0]) == sum(results.matrix[1]) == 500  # balanced per participant
    # ... and per pair, though the participants started at once (they come in twos: see Poll.new_participant)
    assert {(sum(original), sum(colorized)) for original, colorized in results.per_pair.values()} == {(25, 25)}


def answer(client, trial):
    reply = client.post("/poll/answer", json={"pair": trial["pair"], "shown": trial["images"], "answer": "colorized"})
    reply.raise_for_status()
    return reply.json()


def test_sigkill_mid_poll_keeps_every_acknowledged_answer(tmp_path):
    folder = tmp_path / "poll"
    storage.write_poll(folder, [storage.PollImages(f"p{i}.jpg", *turing_arrays(i)) for i in range(6)], "report", seed=3)

    server = LocalServer(["--poll", str(folder)])
    with server:
        client = httpx.Client(base_url=server.url, headers={"Accept": "application/json"}, timeout=30,
                              follow_redirects=True)
        trial = client.post("/poll/start").json()
        seen = []
        for _ in range(3):
            seen.append(trial["pair"])
            trial = answer(client, trial)["next"]
        server.kill()  # SIGKILL, right after three acknowledged answers
    assert len(storage.Poll(folder).answers()) == 3
    server = LocalServer(["--poll", str(folder)], port=server.port)
    with server:
        client.base_url = server.url
        trial = client.get("/poll").json()  # the same cookie: the same participant
        assert trial["position"] == 4 and trial["pair"] not in seen
        while not trial["done"]:
            trial = answer(client, trial)["next"]
    answers = storage.Poll(folder).answers()
    assert len(answers) == 6 and len({row[0] for row in answers}) == 1


def test_a_poll_alone_is_served_without_tensorflow(tmp_path, monkeypatch):
    """`serve --poll` without `--model` never imports TensorFlow: it starts in about a second."""
    folder = tmp_path / "poll"
    storage.write_poll(folder, [storage.PollImages(f"p{i}.jpg", *turing_arrays(i)) for i in range(2)], "report", seed=3)
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # every import, on the server's stderr
    server = LocalServer(["--poll", str(folder)])
    with server:
        started = httpx.post(server.url + "/poll/start", headers={"Accept": "application/json"}, follow_redirects=True)
        assert started.status_code == 200 and started.json()["position"] == 1
    imported = {line.split("|")[-1].strip() for line in server.output.splitlines() if line.startswith("import time:")}
    assert "pix2color.poll.storage" in imported and "tensorflow" not in imported and "keras" not in imported


def turing_arrays(index):
    """gray, original, generated images of one pair (their content does not matter here)."""
    original = np.random.default_rng(index).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    return original, original, original // 2


@pytest.mark.slow
def test_turing_commands_end_to_end(small_generator_file, tmp_path):
    from conftest import sample_photo_paths

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sample_photo_paths(6):
        (photos / Path(path).name).write_bytes(Path(path).read_bytes())
    poll = tmp_path / "poll"
    built = run_cli("turing", "build", "--model", small_generator_file, "--photos", photos, "--pairs", 4,
                    "--out", poll, "--seed", 5)
    assert built.returncode == 0, built.stderr
    again = run_cli("turing", "build", "--model", small_generator_file, "--photos", photos, "--pairs", 4, "--out", poll)
    assert again.returncode == 2 and "already holds a poll" in again.stderr and "Traceback" not in again.stderr
    too_many = run_cli("turing", "build", "--model", small_generator_file, "--photos", photos, "--pairs", 40,
                       "--out", tmp_path / "poll2")
    assert too_many.returncode == 2 and "only 6 photos" in too_many.stderr
    empty = run_cli("turing", "results", poll)
    assert empty.returncode == 0 and "n/a" in empty.stdout and "0 answers" in empty.stdout
    both = run_cli("serve", "--poll", poll, "--model", small_generator_file)
    assert both.returncode == 2 and "a poll is served alone" in both.stderr and len(both.stderr.splitlines()) == 1
    with LocalServer(["--poll", str(poll), "--admin-token", "tok"]) as server:  # as docs/web.md starts it
        client = httpx.Client(base_url=server.url, headers={"Accept": "application/json"}, timeout=30,
                              follow_redirects=True)
        trial = client.post("/poll/start").json()
        image = client.get(f"/poll/images/{trial['images'][0]}").content
        for path in ("/api/colorize", "/api/grayscale", "/api/original"):  # no colorizer to hand the answer out
            assert client.post(path, files={"image": ("trial.png", image, "image/png")}).status_code == 404
        home = httpx.get(server.url + "/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == "/poll"
        page = httpx.post(server.url + "/poll/start", follow_redirects=True).text
        assert re.findall(r'href="([^"]*)"', page.split("</header>")[0]) == ["/static/style.css", "/favicon.ico",
                                                                            "/poll"]
        while not trial["done"]:
            trial = answer(client, trial)["next"]
        assert httpx.get(server.url + "/admin").status_code == 401
        assert httpx.get(server.url + "/admin", params={"token": "tok"}).status_code == 200
    counted = run_cli("turing", "results", poll, "--csv", tmp_path / "r.csv", "--png", tmp_path / "r.png",
                      "--exclude", "1")
    assert counted.returncode == 0, counted.stderr
    assert "3 answers from 1 participant" in counted.stdout and "pairs left out: 1" in counted.stdout
    assert (tmp_path / "r.png").stat().st_size > 0 and len((tmp_path / "r.csv").read_text().splitlines()) == 4


def test_turing_results_never_replace_a_poll_file_and_others_only_with_overwrite(tmp_path):
    folder = tmp_path / "poll"
    storage.write_poll(folder, [storage.PollImages(f"p{i}.jpg", *turing_arrays(i)) for i in range(2)], "report")
    image = next((folder / storage.IMAGES).iterdir())
    mine = {tmp_path / "results.csv": b"my results", tmp_path / "mine.jpg": b"my photo"}
    for path, content in mine.items():
        path.write_bytes(content)

    def files():
        return {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}

    before = files()
    for extra in ([], ["--overwrite"]):
        for flag, path in [("--csv", folder / storage.DATABASE), ("--png", folder / storage.SECRET_FILE),
                           ("--png", image), ("--csv", folder / "poll.sqlite-wal")]:
            refused = run_cli("turing", "results", folder, flag, path, *extra)
            lines = [line for line in refused.stderr.splitlines() if line.strip()]
            assert refused.returncode == 2 and len(lines) == 1 and str(path) in lines[0], refused.stderr
            assert "a file of the poll" in lines[0] and files() == before
    fifo = tmp_path / "a.fifo"
    os.mkfifo(fifo)  # no option replaces what is not a file: a FIFO, a device (/dev/full), a socket
    special = run_cli("turing", "results", folder, "--answers", fifo, "--overwrite")
    assert special.returncode == 2 and "not a regular file" in special.stderr and fifo.is_fifo(), special.stderr
    kept = run_cli("turing", "results", folder, "--csv", tmp_path / "results.csv", "--png", tmp_path / "mine.jpg")
    assert kept.returncode == 2 and "results.csv exists" in kept.stderr and "--overwrite" in kept.stderr, kept.stderr
    assert files() == before and "Traceback" not in kept.stderr
    replaced = run_cli("turing", "results", folder, "--csv", tmp_path / "results.csv", "--png", tmp_path / "mine.jpg",
                       "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert (tmp_path / "results.csv").read_text().startswith("pair,photo")
    assert (tmp_path / "mine.jpg").read_bytes().startswith(b"\x89PNG")
    assert {path: content for path, content in files().items() if path not in mine} == {
        path: content for path, content in before.items() if path not in mine}


def test_serve_refuses_what_it_cannot_serve(tmp_path):
    nothing = run_cli("serve")
    assert nothing.returncode == 2 and "give --model" in nothing.stderr
    not_a_poll = run_cli("serve", "--poll", tmp_path)
    assert not_a_poll.returncode == 2 and "not a poll folder" in not_a_poll.stderr
    assert "Traceback" not in not_a_poll.stderr


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return connection


def answer_head(port: int, length: str = "Content-Length: 1000") -> str:
    """The head of an answer by a new participant (whose answer the server reads)."""
    cookie = httpx.post(f"http://127.0.0.1:{port}/poll/start").cookies["pix2color_poll"]
    return (f"POST /poll/answer HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
            f"Cookie: pix2color_poll={cookie}\n{length}\n")


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def small_poll(folder, pairs=3):
    return storage.write_poll(folder, [storage.PollImages(f"p{i}.jpg", *turing_arrays(i)) for i in range(pairs)])


def test_a_stalled_body_is_timed_out_and_the_server_stays_responsive(tmp_path):
    """Twenty clients send headers and part of a body, then nothing: each gets a 408 and its
    connection closed once the read timeout (short here) has passed, while others are served."""
    app = create_app(poll=storage.Poll(small_poll(tmp_path / "poll")), limits=Limits(read_timeout=1.0))
    with serving(app) as port:
        stalled = [raw_request(port, answer_head(port), b'{"pair": 1, ') for _ in range(20)]
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
        for connection in stalled:
            with connection:
                reply = read_until_closed(connection)
                assert reply.startswith(b"HTTP/1.1 408 ") and b"stopped arriving" in reply, reply
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200


def test_a_body_over_its_limit_is_never_read(tmp_path):
    """A declared 200 MB answer is refused before a byte of it is read (the client sends none and
    still gets its 413); a chunked one is cut off as soon as it passes the limit."""
    app = create_app(poll=storage.Poll(small_poll(tmp_path / "poll")), limits=Limits(read_timeout=120.0))
    with serving(app) as port:
        with raw_request(port, answer_head(port, "Content-Length: 200000000")) as declared:
            reply = read_until_closed(declared)
        assert reply.startswith(b"HTTP/1.1 413 ") and b"larger than the limit of 8 KB" in reply, reply
        with raw_request(port, answer_head(port, "Transfer-Encoding: chunked")) as chunked:
            chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
            with pytest.raises((BrokenPipeError, ConnectionResetError)):  # the server closes the connection
                for _ in range(100_000):  # 100 MB, if the server read it all
                    chunked.sendall(chunk)


def test_serve_answers_only_host_names_of_this_machine_and_allowed_ones(tmp_path):
    folder = small_poll(tmp_path / "poll")
    with LocalServer(["--poll", str(folder), "--allowed-hosts", "poll.example,Other.Example"]) as server:
        port = server.port
        for host, status in [(f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200), (f"poll.example:{port}", 200),
                             ("other.example", 200), (f"evil.example:{port}", 400), ("127.0.0.1.evil.example", 400)]:
            assert httpx.get(server.url + "/api/health", headers={"Host": host}).status_code == status, host
    bad = run_cli("serve", "--poll", folder, "--allowed-hosts", "poll.*.example")
    assert bad.returncode == 2 and "--allowed-hosts" in bad.stderr and "Traceback" not in bad.stderr


def test_serve_prints_addresses_a_browser_opens_and_warns_when_every_host_is_allowed(tmp_path):
    folder = small_poll(tmp_path / "poll")
    with LocalServer(["--poll", str(folder)], host="::1") as server:
        assert httpx.get(server.url + "/api/health").status_code == 200
    assert f"http://[::1]:{server.port}/poll" in server.output, server.output
    assert "DNS rebinding" not in server.output
    with LocalServer(["--poll", str(folder), "--allowed-hosts", "*"]) as server:
        assert httpx.get(server.url + "/api/health", headers={"Host": "evil.example"}).status_code == 200
    assert "--allowed-hosts '*': any Host name is served" in server.output, server.output


def test_turing_results_end_quietly_when_the_reader_is_gone(tmp_path):
    """`pix2color turing results POLL | head -1`: the pipe closes before the report is written."""
    folder = small_poll(tmp_path / "poll")
    reader, writer = os.pipe()
    os.close(reader)  # a reader that is gone before anything is written
    try:
        ended = subprocess.run([sys.executable, "-m", "pix2color.cli", "turing", "results", str(folder)],
                               stdout=writer, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300)
    finally:
        os.close(writer)
    assert ended.stderr == "" and ended.returncode == 141


def test_turing_results_name_the_pairs_that_do_not_exist(tmp_path):
    folder = small_poll(tmp_path / "poll")
    refused = run_cli("turing", "results", folder, "--exclude", "2,99")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == "pix2color turing results: error: --exclude 99: no such pair (the poll's pairs are 1..3)"


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak) of a process, in kB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def fifty_megapixel_png() -> bytes:
    """A 7071 x 7071 photo (49.99 MP, inside the 50 MP limit) that compresses to a few hundred KB."""
    from PIL import Image

    side = 7071
    ramp = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", [ramp, ramp.transpose(Image.Transpose.ROTATE_90), ramp.point(lambda v: 255 - v)])
    return png_bytes(image)


@pytest.mark.slow
def test_a_50_megapixel_upload_stays_within_its_memory_bound(small_generator_file):
    """Colorizing the largest photo accepted raises the server's peak memory by at most 1.5 GB
    (the full-resolution recipe works on bands of rows, never on whole-image float planes)."""
    data = fifty_megapixel_png()
    with LocalServer(["--model", str(small_generator_file)]) as server:
        pid = server.process.pid
        httpx.get(server.url + "/")  # everything a request needs is loaded
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from what is resident now
        idle = memory_kb(pid, "VmRSS")
        reply = httpx.post(server.url + "/api/colorize", files={"image": ("big.png", data, "image/png")}, timeout=900)
        peak = memory_kb(pid, "VmHWM")
    assert reply.status_code == 200, reply.text
    from PIL import Image

    assert Image.open(io.BytesIO(reply.content)).size == (7071, 7071)
    print(f"50 MP upload ({len(data) / 1e3:.0f} kB): idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB, "
          f"{(peak - idle) / 1024:.0f} MB above idle")
    assert peak - idle <= 1.5 * 2**20, f"{(peak - idle) / 2**20:.2f} GB above idle"


def test_a_request_head_that_never_ends_is_timed_out(tmp_path):
    """A client that opens a connection and sends nothing, or half a request head, and one that
    starts a second request on a kept-alive connection and stalls: each connection is closed after
    the head timeout (short here), and the server keeps serving."""
    app = create_app(poll=storage.Poll(small_poll(tmp_path / "poll")))
    with serving(app, head_timeout=1.0) as port:
        silent = socket.create_connection(("127.0.0.1", port), timeout=60)
        partial = raw_request(port, "GET /api/health HTTP/1.1\nHost: 127.0.0.1")
        kept = raw_request(port, "GET /api/health HTTP/1.1\nHost: 127.0.0.1\n", b"GET /api/health HTTP/1.1\r\nHo")
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
        for connection in (silent, partial):
            with connection:
                assert read_until_closed(connection) == b""
        with kept:
            replies = read_until_closed(kept)
        assert replies.startswith(b"HTTP/1.1 200 ") and replies.count(b"HTTP/1.1") == 1
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200


@pytest.mark.slow
def test_a_client_that_stops_reading_is_cut_off(tmp_path):
    """A client that asks for a large image and reads none of it loses its connection after the
    timeout (short here), instead of the server holding the response for it; one reading slowly
    gets every byte."""
    gray = np.zeros((1200, 1600, 3), np.uint8)  # 5.8 MB as the poll's uncompressed PNG
    noise = np.random.default_rng(0).integers(0, 256, gray.shape, dtype=np.uint8)
    folder = storage.write_poll(tmp_path / "poll", [storage.PollImages("big.jpg", gray, noise, noise // 2)])
    poll = storage.Poll(folder)
    image = max(poll.image_names, key=lambda name: poll.image_path(name).stat().st_size)
    size = poll.image_path(image).stat().st_size
    app = create_app(poll=poll)
    with serving(app, head_timeout=1.0) as port:
        def ask() -> socket.socket:
            connection = socket.socket()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel takes little for us
            connection.settimeout(60)
            connection.connect(("127.0.0.1", port))
            connection.sendall(f"GET /poll/images/{image} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return connection

        with ask() as stalled:
            time.sleep(4)  # reads nothing for four timeouts
            received = b""
            with contextlib.suppress(ConnectionResetError):
                received = read_until_closed(stalled)
        assert len(received) < size, "the server kept the whole response for a client that read none of it"
        with ask() as slow:
            received = b""
            while len(received) < size and (chunk := slow.recv(65536)):  # pausing 10 ms between reads
                received += chunk
                time.sleep(0.01)
        assert received.startswith(b"HTTP/1.1 200 ") and len(received) > size
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200

