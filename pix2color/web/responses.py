"""What the web app's routes share: its templates and its one-line refusals."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
    """A refusal in one line: JSON `{"detail": ...}` for programs, a small page for browsers."""
    if wants_html(request):
        page = templates.TemplateResponse(request, "error.html", {"message": message}, status_code=status)
        page.headers.update(headers or {})
        return page
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
