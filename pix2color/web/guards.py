"""What every request passes before the app sees it (ASGI middleware).

    SecurityHeaders   nosniff, no framing, no referrer, a Content-Security-Policy: on every response
    TrustedHostMiddleware (Starlette)   only Host names of this machine (DNS rebinding): else 400
    SameOriginWrites  a state-changing request sent by another site's page (CSRF): 403
    BoundedBodies     a body larger than its limit: 413 before it is read; one that stalls: 408
    HeadAsGet         HEAD answered as GET without the body

Below them, the server itself: `pix2color.web.server`.

A refusal is the app's one-line error (`refuse(request, status, message, headers)`): JSON for
programs, a small page for browsers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Refuse = Callable[[Request, int, str, dict | None], Response]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
EVERY_INTERFACE = ("0.0.0.0", "::", "")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
CLOSE = {"Connection": "close"}  # the rest of a refused body is never read: the connection ends with the answer


class SecurityHeaders:
    def __init__(self, app: ASGIApp, headers: dict[str, str]):
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_name(address: str) -> str:
    """An address as a Host header names it: IPv6 in brackets, names in lower case."""
    address = address.strip().lower()
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def host_patterns(text: str) -> list[str]:
    """Comma-separated Host names (`poll.example.org`, `192.168.1.20`, `*.example.org` for every
    name under it) -> Host names as `TrustedHostMiddleware` matches them; ValueError in one line
    for a wildcard anywhere but at the start."""
    names = [host_name(name) for name in text.split(",") if name.strip()]
    for name in names:
        if "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*.")):
            raise ValueError(f"{name}: a wildcard is only allowed as the first label, as in *.example.org")
    return names


def allowed_host_names(bound: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names a server listening on `bound` answers to: localhost's, the bound address,
    `extra`, and, listening on every interface, each interface's address and this machine's name
    (what people on the network type). Any other name reaches the server only through a DNS
    record someone else controls."""
    names = [*LOCAL_HOSTS, host_name(bound), *map(host_name, extra)]
    if bound in EVERY_INTERFACE:
        import psutil

        names += [host_name(address.address.split("%")[0])  # fe80::1%eth0: the zone is not in a Host header
                  for addresses in psutil.net_if_addrs().values() for address in addresses
                  if address.family in (socket.AF_INET, socket.AF_INET6)]
        machine = socket.gethostname().lower()
        names += [machine, f"{machine}.local"]  # .local: the name mDNS gives it on a local network
    return list(dict.fromkeys(name for name in names if name))


def same_origin(origin: str, scope: Scope) -> bool:
    """Whether `origin` (an Origin header) is the scheme, host and port the request was addressed
    to; "null" (a sandboxed page, a file, a redirect across sites) never is."""
    try:
        page = urlsplit(origin)
        target = urlsplit(f"//{Headers(scope=scope).get('host', '')}")
        scheme = scope["scheme"]
        return ((page.scheme, page.hostname, page.port or DEFAULT_PORTS.get(page.scheme))
                == (scheme, target.hostname, target.port or DEFAULT_PORTS.get(scheme))) and page.path == ""
    except ValueError:  # a port that is not a number, or out of range
        return False


class SameOriginWrites:
    """Refuses a state-changing request (anything but GET, HEAD, OPTIONS) whose Origin is another
    site, another port of this machine included: a page elsewhere could otherwise post a form here
    with a visitor's cookie (CSRF). Browsers send Origin with every such request; a request without
    one (curl, scripts, the load test) is no browser acting for someone and is let through."""

    def __init__(self, app: ASGIApp, refuse: Refuse):
        self.app, self.refuse = app, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not same_origin(origin, scope):
                message = f"refused: the request comes from a page of another site (Origin: {origin})"
                return await self.refuse(Request(scope), 403, message, None)(scope, receive, send)
        await self.app(scope, receive, send)


def body_refused(status_code: int, detail: str) -> HTTPException:
    """A body over its limit while it streams in (413), or one that stopped arriving (408), raised
    from inside the app's body read. Starlette's own `HTTPException`: FastAPI turns any other
    exception raised while it reads a body into "400 There was an error parsing the body"."""
    return HTTPException(status_code, detail, headers=CLOSE)


def readable_size(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


class BoundedBodies:
    """Bounds every request body before it is read, so a client can neither fill the server's
    memory nor hold a connection open by sending slowly:

    - a declared Content-Length over `limit_for(path)` bytes: 413 at once, nothing read;
    - a body streamed without a length (chunked) is counted as it arrives: 413 once over;
    - no part of the body for `read_timeout` seconds, or the whole body not in within
      `body_timeout`: 408 (a stalled upload, or one sent a byte at a time).

    Refusals close the connection (the rest of the body is never read)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int], read_timeout: float, body_timeout: float,
                 refuse: Refuse):
        self.app, self.limit_for, self.refuse = app, limit_for, refuse
        self.read_timeout, self.body_timeout = read_timeout, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = self.refuse(Request(scope), 413, self.too_large(limit), CLOSE)
            return await response(scope, receive, send)
        await self.app(scope, self.bounded(receive, limit), send)

    @staticmethod
    def too_large(limit: int) -> str:
        return f"the request's body is larger than the limit of {readable_size(limit)} here"

    def bounded(self, receive: Receive, limit: int) -> Receive:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        received, complete = 0, False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: what comes now is the client leaving, whenever it does
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), min(self.read_timeout, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise body_refused(408, f"the request's body stopped arriving (waited {self.read_timeout:g} s "
                                        f"for the next part, {self.body_timeout:g} s for all of it)") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise body_refused(413, self.too_large(limit))
                complete = not message.get("more_body", False)
            return message

        return bounded_receive


class HeadAsGet:
    """HEAD answered as the GET of the same address, without its body: monitoring tools ask
    `HEAD /`, and FastAPI routes a GET handler for GET alone."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
