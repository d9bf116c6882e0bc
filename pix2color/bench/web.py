"""`bench web`: the web app under load on loopback: a whole poll answered, concurrent colorize uploads."""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from pix2color.data import load_image_set
from pix2color.networks import build_generator
from pix2color.bench.local_server import LocalServer
from pix2color.photos import read_image
from pix2color.poll.storage import Poll, PollImages, write_poll


def bench_poll(participants: int = 50, pairs: int = 20, workdir: str | None = None, log=print) -> dict:
    """Concurrent participants answering a whole poll on a real server on loopback.

    Returns the counts (for the test that nothing is lost) and answers/s, p50/p95 latency."""
    folder = Path(workdir or tempfile.mkdtemp(prefix="pix2color-poll-bench-")) / "poll"
    rng = np.random.default_rng(0)
    images = []
    for index in range(pairs):
        original = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        images.append(PollImages(f"photo{index}.jpg", original, original, original // 2))
    write_poll(folder, images, "report", seed=1)
    latencies: list[float] = []

    async def participant(base: str) -> int:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Accept": "application/json"},
                                     follow_redirects=True) as client:
            trial = (await client.post("/poll/start")).json()  # 303 to /poll: the first trial
            answered = 0
            while not trial["done"]:
                started = time.perf_counter()
                reply = await client.post("/poll/answer", json={
                    "pair": trial["pair"], "shown": trial["images"], "answer": "original"})
                latencies.append(time.perf_counter() - started)
                reply.raise_for_status()
                answered += reply.json()["recorded"]
                trial = reply.json()["next"]
            return answered

    async def everyone(base: str) -> list[int]:
        return await asyncio.gather(*(participant(base) for _ in range(participants)))

    with LocalServer(["--poll", str(folder)]) as server:
        started = time.perf_counter()
        acknowledged = asyncio.run(asyncio.wait_for(everyone(server.url), timeout=600))
        seconds = time.perf_counter() - started
    answers = Poll(folder).answers()
    stats = {
        "participants": participants, "pairs": pairs, "acknowledged": sum(acknowledged), "stored": len(answers),
        "distinct": len({(row[0], row[1]) for row in answers}), "seconds": seconds,
        "answers_per_s": sum(acknowledged) / seconds,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p95_ms": 1000 * float(np.percentile(latencies, 95)),
        "folder": str(folder),
    }
    log(f"poll: {participants} participants x {pairs} pairs on loopback: {stats['acknowledged']} answers acknowledged, "
        f"{stats['stored']} stored; {stats['answers_per_s']:.0f} answers/s, latency p50 {stats['p50_ms']:.0f} ms, "
        f"p95 {stats['p95_ms']:.0f} ms")
    return stats


def bench_colorize_load(model: str | None, clients: int = 8, requests_each: int = 4, megapixels: float = 1.0,
                        log=print) -> dict:
    """`clients` concurrent uploads of a `megapixels` JPEG to `/api/colorize` on loopback."""

    if model is None:  # an untrained 256 px U-Net: the latency is real, the colours are not
        model = str(Path(tempfile.mkdtemp(prefix="pix2color-web-bench-")) / "generator.keras")
        build_generator(256).save(model)
    photo = read_image(load_image_set("sample", verbose=0).val[0])
    side = int((megapixels * 1e6 / (4 / 3)) ** 0.5)
    buffer = io.BytesIO()
    Image.fromarray(photo).resize((side * 4 // 3, side), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
    upload = buffer.getvalue()
    latencies: list[float] = []

    async def client(base: str) -> int:
        done = 0
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            for _ in range(requests_each):
                started = time.perf_counter()
                reply = await http.post("/api/colorize", files={"image": ("photo.jpg", upload, "image/jpeg")})
                if reply.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                    done += 1
        return done

    async def everyone(base: str) -> list[int]:
        return await asyncio.gather(*(client(base) for _ in range(clients)))

    with LocalServer(["--model", model, "--queue", str(clients)]) as server:
        httpx.post(server.url + "/api/colorize", files={"image": ("w.jpg", upload, "image/jpeg")}, timeout=600)  # warm-up
        started = time.perf_counter()
        completed = sum(asyncio.run(everyone(server.url)))
        seconds = time.perf_counter() - started
    stats = {"clients": clients, "completed": completed, "requested": clients * requests_each, "seconds": seconds,
             "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95)),
             "per_s": completed / seconds}
    log(f"colorize: {clients} concurrent clients x {requests_each} uploads of a {megapixels:.1f} MP JPEG "
        f"({side * 4 // 3}x{side}): {completed}/{clients * requests_each} done, {stats['per_s']:.2f} images/s, "
        f"latency p50 {stats['p50_s']:.2f} s, p95 {stats['p95_s']:.2f} s")
    return stats
