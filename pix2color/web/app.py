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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pix2color.photos import FullResolutionColorizer, ImageError, TooManyPixels, read_image
from pix2color.turing import Poll
from pix2color.web import poll_routes
from pix2color.web.api_docs import operations as api_operations
from pix2color.web.guards import LOCAL_HOSTS, BoundedBodies, HeadAsGet, SameOriginWrites, SecurityHeaders

HERE = Path(__file__).resolve().parent
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No address (the admin's token, the poll's image names) is told to another site; and unlike
    # no-referrer, under which browsers send `Origin: null` with every form, same-origin lets a
    # form of this server name its origin (SameOriginWrites refuses null).
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'",
}


UPLOAD_PATHS = ("/api/colorize", "/api/grayscale")
MULTIPART_ALLOWANCE = 64 * 1024  # an upload's form fields and part headers, around the file itself


# What the page offers; Pillow reads more, some through outside programs (EPS runs Ghostscript),
# which a server does not run on a stranger's file.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes MPO (multi-picture JPEGs)


@dataclass
class Limits:
    upload_bytes: int = 25 * 1024 * 1024  # 25 MB
    pixels: int = 50_000_000  # 50 MP: above any phone photo, far below a decompression bomb
    queue: int = 8  # colorize requests that may wait while one runs
    form_bytes: int = 8 * 1024  # any other request's body (an answer is about 100 bytes)
    read_timeout: float = 30.0  # seconds without any part of a request's body: 408
    body_timeout: float = 300.0  # seconds for a whole body (25 MB at 0.7 Mbit/s): 408

    def body_bytes(self, path: str) -> int:
        """The largest body a request to `path` may send."""
        return self.upload_bytes + MULTIPART_ALLOWANCE if path in UPLOAD_PATHS else self.form_bytes


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


templates = Jinja2Templates(directory=str(HERE / "templates"))


def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
    """A refusal in one line: JSON `{"detail": ...}` for programs, a small page for browsers."""
    if wants_html(request):
        page = templates.TemplateResponse(request, "error.html", {"message": message}, status_code=status)
        page.headers.update(headers or {})
        return page
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def guards(limits: Limits, allowed_hosts: Sequence[str], session_secret: str | None) -> list[Middleware]:
    """The middleware every request passes, outermost first (see `pix2color.web.guards`)."""
    layers = [
        Middleware(SecurityHeaders, headers=SECURITY_HEADERS),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False),
        Middleware(SameOriginWrites, refuse=error_response),
        Middleware(BoundedBodies, limit_for=limits.body_bytes, read_timeout=limits.read_timeout,
                   body_timeout=limits.body_timeout, refuse=error_response),
        Middleware(HeadAsGet),
    ]
    if session_secret is not None:  # the poll's participants
        layers.append(Middleware(SessionMiddleware, secret_key=session_secret, session_cookie="pix2color_poll",
                                 max_age=90 * 24 * 3600, same_site="lax"))
    return layers


def upload_schema(recipes: dict, with_format: bool = False) -> dict:
    """The OpenAPI description of an upload the handler reads itself: the multipart body, `mode`
    and (for results) `format`."""
    modes = {"type": "string", "enum": list(recipes)}
    parameters = [{"name": "mode", "in": "query", "required": False, "schema": modes,
                   "description": "the network's mode (also a form field)"}]
    if with_format:
        parameters.append({"name": "format", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": list(OUTPUT_FORMATS), "default": "png"},
                           "description": "the result's format"})
    form = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary",
                  "description": f"the photo ({', '.join(UPLOAD_FORMATS)}), recognised by its content"},
        "mode": {**modes, "description": "the network's mode"},
    }}
    return {"parameters": parameters,
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}}}


def upload_responses(content: dict) -> dict:
    refusal = {"application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}}
    return {
        200: {"description": "the image, the upload's size", "content": content},
        **{status: {"description": description, "content": refusal} for status, description in (
            (400, "not an image, an empty or truncated file, no field `image`, an unknown mode or format"),
            (408, "the upload stopped arriving"),
            (413, "a file or an image larger than the limits"),
            (415, "an image whose pixels cannot be converted to RGB"),
            (503, "the colorizer is busy (Retry-After)"),
        )},
    }


def create_app(
    networks: dict | None = None,
    poll: Poll | None = None,
    admin_token: str | None = None,
    limits: Limits | None = None,
    default_mode: str = "deterministic",
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
) -> FastAPI:
    """networks: mode -> `pix2color.loading.Network` (the colorize page and API); poll: a Turing
    test to serve; admin_token: opens the poll's results (a random one if not given);
    allowed_hosts: the Host names served (`guards.allowed_host_names`), any other is a 400."""
    limits = limits or Limits()
    app = FastAPI(title="pix2color", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  middleware=guards(limits, allowed_hosts, poll.secret if poll is not None else None))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.admin_token = admin_token or secrets.token_urlsafe(18)
    queue = ModelQueue(limits.queue)
    recipes = {mode: FullResolutionColorizer(network.predict_ab, network.image_size)
               for mode, network in (networks or {}).items()}

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException, and the router's 404/405
    async def one_line_errors(request: Request, error: StarletteHTTPException):
        return error_response(request, error.status_code, error.detail, getattr(error, "headers", None))

    @app.get("/api/health")
    async def health():
        """The server is up: the colorize modes and their network's size, the queue, the poll."""
        return {
            "status": "ok",
            "colorize": {mode: {"image_size": recipe.image_size} for mode, recipe in recipes.items()},
            "queue": {"pending": queue.pending, "limit": 1 + limits.queue},
            "poll": None if poll is None else {"protocol": poll.protocol, "pairs": poll.pair_count},
        }

    # ------------------------------------------------------------------ colorize

    if recipes:
        async def uploaded_image(request: Request) -> tuple[bytes, str]:
            """The bytes of the multipart field `image` (the body's size is bounded by `BoundedBodies`)."""
            try:
                form = await request.form(max_files=1, max_fields=4)
            except StarletteHTTPException:  # too large, too slow (BoundedBodies)
                raise
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
                return read_image(io.BytesIO(data), limits.pixels, name="the upload", formats=UPLOAD_FORMATS)
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

        @app.post("/api/colorize", response_class=Response, openapi_extra=upload_schema(recipes, with_format=True),
                  responses=upload_responses({"image/png": {}, "image/jpeg": {}}))
        async def colorize(request: Request):
            """Multipart field `image` in; the colorized photo out, same size (upright by its EXIF).
            Query: `format=png|jpeg`, `mode=deterministic|paper`."""
            image_format = output_format(request)
            data, mode = await uploaded_image(request)
            recipe = recipe_for(mode)
            result = await queue.run(lambda: encode(recipe.colorize(decode(data)), image_format))
            return Response(result, media_type=OUTPUT_FORMATS[image_format][1],
                            headers={"Content-Disposition": f'inline; filename="colorized.{image_format}"'})

        @app.post("/api/grayscale", response_class=Response, openapi_extra=upload_schema(recipes),
                  responses=upload_responses({"image/png": {}}))
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
        poll_routes.add(app, poll, templates)
        if not recipes:
            @app.get("/")
            async def home():
                return RedirectResponse("/poll", status_code=303)

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs(request: Request):
        return templates.TemplateResponse(request, "api_docs.html", {
            "title": app.title, "operations": api_operations(app.openapi()),
        })

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    return app
