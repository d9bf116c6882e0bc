"""The web application: a colorize page and HTTP API, and the Turing-test poll.

Built on FastAPI (Starlette + uvicorn): async request handling lets one model worker serve the
colorizations one at a time while the poll's pages and answers, which touch only SQLite, are
answered at once; uploads, signed session cookies, templates (Jinja2, escaped) and the test
client come with the framework.

    create_app(networks={"deterministic": ..., "paper": ...}, poll=Poll(folder), admin_token="...")

Either part may be left out: a server for the colorize page only, the poll only, or both.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from pix2color.lite import FullResolutionColorizer, ImageError, TooManyPixels, read_image
from pix2color.turing import Poll

HERE = Path(__file__).resolve().parent
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'",
}


@dataclass
class Limits:
    upload_bytes: int = 25 * 1024 * 1024  # 25 MB
    pixels: int = 50_000_000  # 50 MP: above any phone photo, far below a decompression bomb
    queue: int = 8  # colorize requests that may wait while one runs


class ModelQueue:
    """Runs jobs one at a time; at most `waiting` more may wait, later ones are turned away."""

    def __init__(self, waiting: int):
        self.waiting_limit = waiting
        self.pending = 0  # running + waiting
        self._lock: asyncio.Lock | None = None

    @property
    def busy(self) -> bool:
        return self.pending > 0

    async def run(self, function, *args):
        if self.pending >= 1 + self.waiting_limit:
            raise HTTPException(503, "the colorizer is busy; try again in a few seconds", headers={"Retry-After": "5"})
        if self._lock is None:
            self._lock = asyncio.Lock()
        self.pending += 1
        try:
            async with self._lock:
                return await run_in_threadpool(function, *args)
        finally:
            self.pending -= 1


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def create_app(
    networks: dict | None = None,
    poll: Poll | None = None,
    admin_token: str | None = None,
    limits: Limits | None = None,
    default_mode: str = "deterministic",
) -> FastAPI:
    """networks: mode -> `pix2color.loading.Network` (the colorize page and API); poll: a Turing
    test to serve; admin_token: opens the poll's results (a random one if not given)."""
    limits = limits or Limits()
    app = FastAPI(title="pix2color", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.admin_token = admin_token or secrets.token_urlsafe(18)
    queue = ModelQueue(limits.queue)
    recipes = {mode: FullResolutionColorizer(network.predict_ab, network.image_size)
               for mode, network in (networks or {}).items()}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException, and the router's 404/405
    async def one_line_errors(request: Request, error: StarletteHTTPException):
        """Every refusal is one line: JSON for programs, a small page for browsers."""
        headers = getattr(error, "headers", None)
        if wants_html(request):
            page = templates.TemplateResponse(request, "error.html", {"message": error.detail}, status_code=error.status_code)
            page.headers.update(headers or {})
            return page
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)

    @app.get("/api/health")
    async def health():
        return {
            "status": "ok",
            "colorize": {mode: {"image_size": recipe.image_size} for mode, recipe in recipes.items()},
            "queue": {"pending": queue.pending, "limit": 1 + limits.queue},
            "poll": None if poll is None else {"protocol": poll.protocol, "pairs": poll.pair_count},
        }

    # ------------------------------------------------------------------ colorize

    if recipes:
        async def uploaded_image(request: Request) -> tuple[bytes, str]:
            """The bytes of the multipart field `image`, size-checked before anything is stored."""
            length = request.headers.get("content-length")
            if length is None:
                raise HTTPException(411, "send the upload with a Content-Length (no chunked uploads)")
            if not length.isdigit() or int(length) > limits.upload_bytes + 64 * 1024:
                raise HTTPException(413, f"the upload is larger than the limit of {limits.upload_bytes // 2**20} MB")
            try:
                form = await request.form(max_files=1, max_fields=4)
            except Exception:  # noqa: BLE001 - malformed multipart bodies raise several kinds
                raise HTTPException(400, "not a multipart/form-data upload with a field named 'image'") from None
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise HTTPException(400, "no file in the form field 'image'")
            data = await upload.read(limits.upload_bytes + 1)
            await upload.close()
            if len(data) > limits.upload_bytes:
                raise HTTPException(413, f"the upload is larger than the limit of {limits.upload_bytes // 2**20} MB")
            if not data:
                raise HTTPException(400, "the uploaded file is empty (0 bytes)")
            return data, str(form.get("mode") or request.query_params.get("mode") or default_mode)

        def decode(data: bytes) -> np.ndarray:
            """Uploads are recognised by their content (Pillow), never by file name or declared type."""
            try:
                return read_image(io.BytesIO(data), limits.pixels, name="the upload")
            except ImageError as error:
                message = str(error)
                status = 413 if isinstance(error, TooManyPixels) else 415 if "cannot be converted" in message else 400
                raise HTTPException(status, message) from None

        def encode(rgb: np.ndarray, image_format: str) -> bytes:
            pil_format, _ = OUTPUT_FORMATS[image_format]
            buffer = io.BytesIO()
            from PIL import Image

            Image.fromarray(rgb).save(buffer, pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
            return buffer.getvalue()

        def output_format(request: Request) -> str:
            image_format = request.query_params.get("format", "png").lower().replace("jpg", "jpeg")
            if image_format not in OUTPUT_FORMATS:
                raise HTTPException(400, f"format must be one of {', '.join(OUTPUT_FORMATS)}")
            return image_format

        def recipe_for(mode: str) -> FullResolutionColorizer:
            if mode not in recipes:
                raise HTTPException(400, f"mode must be one of {', '.join(recipes)}")
            return recipes[mode]

        @app.post("/api/colorize", response_class=Response, responses={200: {"content": {"image/png": {}}}})
        async def colorize(request: Request):
            """Multipart field `image` in; the colorized photo out, same size (upright by its EXIF).
            Query: `format=png|jpeg`, `mode=deterministic|paper`."""
            image_format = output_format(request)
            data, mode = await uploaded_image(request)
            recipe = recipe_for(mode)
            result = await queue.run(lambda: encode(recipe.colorize(decode(data)), image_format))
            return Response(result, media_type=OUTPUT_FORMATS[image_format][1],
                            headers={"Content-Disposition": f'inline; filename="colorized.{image_format}"'})

        @app.post("/api/grayscale", response_class=Response)
        async def grayscale(request: Request):
            """What the network is given: the photo's lightness alone, as a PNG of the same size."""
            data, mode = await uploaded_image(request)
            recipe = recipe_for(mode)
            result = await queue.run(lambda: encode(recipe.grayscale(decode(data)), "png"))
            return Response(result, media_type="image/png")

        @app.get("/", response_class=HTMLResponse)
        async def colorize_page(request: Request):
            return templates.TemplateResponse(request, "colorize.html", {
                "modes": list(recipes), "default_mode": default_mode, "poll": poll is not None,
                "max_mb": limits.upload_bytes // 2**20, "max_mp": limits.pixels / 1e6,
            })

    # ------------------------------------------------------------------ the Turing test

    if poll is not None:
        from pix2color.web import poll_routes

        poll_routes.add(app, poll, templates)
        app.add_middleware(SessionMiddleware, secret_key=poll.secret, session_cookie="pix2color_poll",
                           max_age=90 * 24 * 3600, same_site="lax")
        if not recipes:
            @app.get("/")
            async def home():
                return RedirectResponse("/poll", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    return app
