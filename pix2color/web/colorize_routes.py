"""The colorize page and its HTTP API: a photo in, the colorized photo (or its lightness) out.

One network runs one photo at a time (`ModelQueue`); a few more requests may wait, later ones
get a 503. Uploads are read whole (their size is bounded by `guards.BoundedBodies` before any
byte is read), recognised by their content and decoded within a pixel limit.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.photos import ImageError, TooManyPixels, read_image
from pix2color.web.responses import templates

UPLOAD_PATHS = ("/api/colorize", "/api/grayscale", "/api/original")
MULTIPART_ALLOWANCE = 64 * 1024  # an upload's form fields and part headers, around the file itself
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}
# What the page offers; Pillow reads more, some through outside programs (EPS runs Ghostscript),
# which a server does not run on a stranger's file.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes MPO (multi-picture JPEGs)


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


async def uploaded_image(request: Request, upload_bytes: int) -> tuple[bytes, str | None]:
    """The bytes of the multipart field `image` and the form's `mode`, if any."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except StarletteHTTPException:  # too large, too slow (BoundedBodies)
        raise
    except Exception:  # noqa: BLE001 - malformed multipart bodies raise several kinds
        raise HTTPException(400, "not a multipart/form-data upload with a field named 'image'") from None
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise HTTPException(400, "no file in the form field 'image'")
    data = await upload.read(upload_bytes + 1)
    await upload.close()
    if len(data) > upload_bytes:
        raise HTTPException(413, f"the upload is larger than the limit of {upload_bytes // 2**20} MB")
    if not data:
        raise HTTPException(400, "the uploaded file is empty (0 bytes)")
    mode = form.get("mode")
    return data, str(mode) if mode else None


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Uploads are recognised by their content (Pillow), never by file name or declared type."""
    try:
        return read_image(io.BytesIO(data), max_pixels, name="the upload", formats=UPLOAD_FORMATS)
    except ImageError as error:
        message = str(error)
        status = 413 if isinstance(error, TooManyPixels) else 415 if "cannot be converted" in message else 400
        raise HTTPException(status, message) from None


def encode(rgb: np.ndarray, image_format: str) -> bytes:
    pil_format, _ = OUTPUT_FORMATS[image_format]
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
    return buffer.getvalue()


def output_format(request: Request) -> str:
    image_format = request.query_params.get("format", "png").lower().replace("jpg", "jpeg")
    if image_format not in OUTPUT_FORMATS:
        raise HTTPException(400, f"format must be one of {', '.join(OUTPUT_FORMATS)}")
    return image_format


def upload_schema(modes: list[str], with_format: bool = False) -> dict:
    """The OpenAPI description of an upload the handler reads itself: the multipart body, `mode`
    and (for results) `format`."""
    mode_schema = {"type": "string", "enum": modes}
    parameters = [{"name": "mode", "in": "query", "required": False, "schema": mode_schema,
                   "description": "the network's mode (also a form field)"}]
    if with_format:
        parameters.append({"name": "format", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": list(OUTPUT_FORMATS), "default": "png"},
                           "description": "the result's format"})
    form = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary",
                  "description": f"the photo ({', '.join(UPLOAD_FORMATS)}), recognised by its content"},
        "mode": {**mode_schema, "description": "the network's mode"},
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


def router(recipes: dict[str, FullResolutionColorizer], queue: ModelQueue, upload_bytes: int, max_pixels: int,
           default_mode: str) -> APIRouter:
    """The colorize page (/) and API (/api/colorize, /api/grayscale, /api/original) for `recipes`
    (mode -> recipe)."""
    routes = APIRouter()

    async def upload_and_recipe(request: Request) -> tuple[bytes, FullResolutionColorizer]:
        data, mode = await uploaded_image(request, upload_bytes)
        mode = mode or request.query_params.get("mode") or default_mode
        if mode not in recipes:
            raise HTTPException(400, f"mode must be one of {', '.join(recipes)}")
        return data, recipes[mode]

    @routes.post("/api/colorize", response_class=Response, openapi_extra=upload_schema(list(recipes), with_format=True),
                 responses=upload_responses({"image/png": {}, "image/jpeg": {}}))
    async def colorize(request: Request):
        """Multipart field `image` in; the colorized photo out, same size (upright by its EXIF).
        Query: `format=png|jpeg`, `mode=deterministic|paper`."""
        image_format = output_format(request)
        data, recipe = await upload_and_recipe(request)
        result = await queue.run(lambda: encode(recipe.colorize(decode(data, max_pixels)), image_format))
        return Response(result, media_type=OUTPUT_FORMATS[image_format][1],
                        headers={"Content-Disposition": f'inline; filename="colorized.{image_format}"'})

    @routes.post("/api/grayscale", response_class=Response, openapi_extra=upload_schema(list(recipes)),
                 responses=upload_responses({"image/png": {}}))
    async def grayscale(request: Request):
        """What the network is given: the photo's lightness alone, as a PNG of the same size."""
        data, recipe = await upload_and_recipe(request)
        result = await queue.run(lambda: encode(recipe.grayscale(decode(data, max_pixels)), "png"))
        return Response(result, media_type="image/png")

    @routes.post("/api/original", response_class=Response, openapi_extra=upload_schema(list(recipes)),
                 responses=upload_responses({"image/png": {}}))
    async def original(request: Request):
        """The photo as pix2color reads it (upright, 8-bit RGB), as a PNG of the same size: for the
        page to show formats a browser cannot, such as TIFF."""
        data, _ = await upload_and_recipe(request)
        result = await queue.run(lambda: encode(decode(data, max_pixels), "png"))
        return Response(result, media_type="image/png")

    @routes.get("/", response_class=HTMLResponse)
    async def colorize_page(request: Request):
        return templates.TemplateResponse(request, "colorize.html", {
            "modes": list(recipes), "default_mode": default_mode,
            "max_mb": upload_bytes // 2**20, "max_mp": max_pixels / 1e6,
        })

    return routes
