"""The web application: a colorize page and HTTP API, or the Turing-test poll.

Built on FastAPI (Starlette + uvicorn): async request handling lets one model worker serve the
colorizations one at a time while requests that need no model are answered at once; uploads,
signed session cookies, templates (Jinja2, escaped) and the test client come with the framework.

    create_app(networks={"deterministic": ..., "paper": ...})          # the colorize page and API
    create_app(poll=Poll(folder), admin_token="...")                  # a poll

Never both: a participant who could colorize a trial's image with the poll's own model would get
the trial's colorization back, and so the answer. The routes live in `colorize_routes` and
`pix2color.poll.routes`; every request first passes `guards`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pix2color.colorizing.recipe import FullResolutionColorizer
from pix2color.poll import routes as poll_routes
from pix2color.poll.storage import Poll
from pix2color.web import colorize_routes
from pix2color.web.api_docs import operations as api_operations
from pix2color.web.guards import LOCAL_HOSTS, BoundedBodies, HeadAsGet, SameOriginWrites, SecurityHeaders
from pix2color.web.responses import HERE, error_response, templates

POLL_ALONE = ("a poll is served alone, without the colorize page: a participant could colorize a trial's "
              "photo with the poll's model and compare")
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


@dataclass
class Limits:
    upload_bytes: int = 25 * 1024 * 1024  # 25 MB
    pixels: int = 50_000_000  # 50 MP: above any phone photo, far below a decompression bomb
    queue: int = 8  # colorize requests that may wait while one runs
    form_bytes: int = 8 * 1024  # any other request's body (an answer is about 100 bytes)
    read_timeout: float = 30.0  # seconds without any part of a request's body: 408
    body_timeout: float = 300.0  # seconds for a whole body (25 MB at 0.7 Mbit/s): 408
    new_participants: int = 120  # per client address and minute: 429

    def body_bytes(self, path: str) -> int:
        """The largest body a request to `path` may send."""
        if path in colorize_routes.UPLOAD_PATHS:
            return self.upload_bytes + colorize_routes.MULTIPART_ALLOWANCE
        return self.form_bytes


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


def create_app(
    networks: dict | None = None,
    poll: Poll | None = None,
    admin_token: str | None = None,
    limits: Limits | None = None,
    default_mode: str = "deterministic",
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
) -> FastAPI:
    """networks: mode -> `pix2color.colorizing.loading.Network` (the colorize page and API); or poll: a Turing
    test to serve (ValueError for both); admin_token: opens the poll's results (a random one if
    not given); allowed_hosts: the Host names served (`guards.allowed_host_names`), any other is a 400."""
    if networks and poll is not None:
        raise ValueError(POLL_ALONE)
    limits = limits or Limits()
    app = FastAPI(title="pix2color", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  middleware=guards(limits, allowed_hosts, poll.secret if poll is not None else None))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_exception_handler(StarletteHTTPException, one_line_errors)
    admin_token = admin_token or secrets.token_urlsafe(18)
    queue = colorize_routes.ModelQueue(limits.queue)
    recipes = {mode: FullResolutionColorizer(network.predict_ab, network.image_size)
               for mode, network in (networks or {}).items()}
    add_health(app, recipes, queue, limits, poll)
    if recipes:
        app.include_router(colorize_routes.router(recipes, queue, limits.upload_bytes, limits.pixels, default_mode))
    if poll is not None:
        app.include_router(poll_routes.participant_router(poll, limits.new_participants))
        app.include_router(poll_routes.admin_router(poll, admin_token))

        @app.get("/", include_in_schema=False)
        async def home():
            return RedirectResponse("/poll", status_code=303)

    add_api_docs_and_favicon(app)
    return app


async def one_line_errors(request: Request, error: StarletteHTTPException):
    """Every refusal in one line, as `error_response` words it: FastAPI's HTTPException, and the router's 404/405."""
    return error_response(request, error.status_code, error.detail, getattr(error, "headers", None))


def add_health(app: FastAPI, recipes: dict[str, FullResolutionColorizer], queue: colorize_routes.ModelQueue,
               limits: Limits, poll: Poll | None) -> None:
    """GET /api/health: needs no model, so it is answered at once even while a colorization runs."""

    @app.get("/api/health")
    async def health():
        """The server is up: the colorize modes and their network's size, the queue, the poll."""
        return {
            "status": "ok",
            "colorize": {mode: {"image_size": recipe.image_size} for mode, recipe in recipes.items()},
            "queue": {"pending": queue.pending, "limit": 1 + limits.queue},
            "poll": None if poll is None else {"protocol": poll.protocol, "pairs": poll.pair_count},
        }


def add_api_docs_and_favicon(app: FastAPI) -> None:
    """GET /api/docs (the API's operations, from the app's own OpenAPI schema) and /favicon.ico; neither is an
    operation of the API, so neither is in the schema."""

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs(request: Request):
        return templates.TemplateResponse(request, "api_docs.html", {
            "title": app.title, "operations": api_operations(app.openapi()),
        })

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")
