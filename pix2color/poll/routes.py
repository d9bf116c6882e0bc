"""The poll's pages: one trial at a time for participants, results for the organiser.

Participants are anonymous: an id in a cookie signed with the poll's own secret (kept in the
poll folder, so a restarted server still knows them). A newcomer first sees what the study is;
its Start button posts /poll/start, which makes them a participant: only a POST does, which
another site's page cannot send (`web.guards.SameOriginWrites`), so no page elsewhere makes its
visitors participants. Every page works without JavaScript: a trial is a form whose buttons post
the answer, and the server redirects to the next trial. Programs (the load test) use the same
routes with JSON (`Accept: application/json`).
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections import Counter
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import Image
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from pix2color.poll import chart, statistics
from pix2color.poll.storage import AnswerError, NotShownNow, Poll, PollError, Trial
from pix2color.web.responses import templates, wants_json


class Answer(BaseModel):
    """One answer, from a form (`shown` the names joined by commas) or a JSON object."""

    pair: int = Field(description="the trial's pair number, as /poll gave it")
    shown: list[str] = Field(description="the colour images shown, in display order (a form: joined by commas)")
    answer: str = Field(description="report: original or colorized; 2afc: the image chosen as the real photo")

    @field_validator("shown", mode="before")
    @classmethod
    def split_names(cls, shown):
        return shown.split(",") if isinstance(shown, str) else shown


async def answer_of(request: Request) -> Answer:
    """The answer a request carries, or a one-line 400: anything but an object with a whole-number
    'pair', a list of image names 'shown' and a text 'answer' is refused here."""
    if "application/json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deep for Python's parser
            raise HTTPException(400, "the body is not JSON (or nested too deep)") from None
    else:
        body = dict(await request.form(max_files=0, max_fields=8))
    try:
        return Answer.model_validate(body)
    except ValidationError:
        raise HTTPException(400, "an answer is an object with 'pair' (a whole number), 'shown' (the image names) "
                                 "and 'answer' (text)") from None


ANSWER_SCHEMA = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": Answer.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": Answer.model_json_schema()},
}}}
ANSWER_RESPONSES = {
    200: {"description": "JSON (Accept: application/json): `recorded` (false: answered before) and the `next` trial"},
    303: {"description": "a form: on to the next trial (/poll)"},
    400: {"description": "not an answer"},
    403: {"description": "no participant (POST /poll/start first), or sent from another site's page"},
    409: {"description": "a pair other than the trial being shown"},
    413: {"description": "a body over the limit (8 KB unless set otherwise)"},
    422: {"description": "a pair or images this participant was not shown, or an answer that is not one of the choices"},
}


class Participants:
    """The poll's participants as its routes meet them: the id in a request's signed cookie, and the
    size of the images they are shown.

    Anyone may become a participant, and a client that drops its cookie becomes a new one each
    time; `per_minute` bounds how many one address makes in a minute (each stores its order), so
    a script cannot fill the disk. A class behind one router starting together stays well below it.
    """

    def __init__(self, poll: Poll, per_minute: int):
        self.poll = poll
        self.per_minute = per_minute
        self._sizes: dict[str, tuple[int, int]] = {}
        self._minute = 0
        self._made: Counter[str] = Counter()  # new participants per address, this minute
        self._counting = threading.Lock()  # `of` runs in the thread pool, several requests at once

    def of(self, request: Request, create: bool) -> str | None:
        """The participant a request comes from; `create`: make one if it has none (or an unknown one)."""
        participant = request.session.get("participant")
        if self.poll.knows(participant):
            return participant
        if not create:
            return None
        self._count_new(request.client.host if request.client else "")
        participant = self.poll.new_participant()
        request.session["participant"] = participant
        return participant

    def _count_new(self, address: str) -> None:
        minute = int(time.monotonic() // 60)
        with self._counting:
            if minute != self._minute:
                self._minute, self._made = minute, Counter()
            if self._made[address] >= self.per_minute:
                raise HTTPException(429, f"more than {self.per_minute} new participants from one address in a "
                                         "minute; try again in a minute", headers={"Retry-After": "60"})
            self._made[address] += 1

    def image_size(self, name: str) -> tuple[int, int]:
        """(width, height) of a poll image, read from its header once; the images of a pair share it."""
        if name not in self._sizes:
            with Image.open(self.poll.image_path(name)) as image:
                self._sizes[name] = image.size
        return self._sizes[name]

    def trial_json(self, trial: Trial | None, participant: str) -> dict:
        if trial is None:
            right, given = self.poll.score(participant)
            return {"done": True, "right": right, "answered": given}
        return {"done": False, "pair": trial.pair, "position": trial.position + 1, "total": trial.total,
                "gray": f"/poll/images/{trial.gray}", "images": trial.images}


def participant_router(poll: Poll, new_per_minute: int = 120) -> APIRouter:
    """/poll (the intro, the trial on show, the score), /poll/start, /poll/answer, /poll/images;
    new_per_minute: new participants one address may make in a minute."""
    routes = APIRouter()
    participants = Participants(poll, new_per_minute)
    add_poll_page(routes, participants)
    add_start_and_answer(routes, participants)
    add_poll_images(routes, poll)
    return routes


def add_poll_page(routes: APIRouter, participants: Participants) -> None:
    """GET /poll: where a participant is in the poll (the intro, the trial on show or the score), as a page or JSON."""
    poll = participants.poll

    @routes.get("/poll", response_class=HTMLResponse, responses={
        200: {"description": "the study's description (a newcomer), the trial on show, or the score; "
                             "JSON (Accept: application/json): the trial on show, or the score"},
        403: {"description": "JSON without a participant: POST /poll/start first"},
    })
    async def poll_page(request: Request):
        """What the participant is shown now. Never makes a participant (POST /poll/start does)."""
        participant = await run_in_threadpool(participants.of, request, False)
        if participant is None:
            if wants_json(request):
                raise HTTPException(403, "no participant here: POST /poll/start first (cookies must be on)")
            return templates.TemplateResponse(request, "poll_intro.html", {
                "protocol": poll.protocol, "pairs": poll.pair_count,
            })
        trial = await run_in_threadpool(poll.next_trial, participant)
        if wants_json(request):
            return JSONResponse(await run_in_threadpool(participants.trial_json, trial, participant))
        if trial is None:
            return await score_page(request, poll, participant)
        width, height = await run_in_threadpool(participants.image_size, trial.gray)
        return templates.TemplateResponse(request, "poll_trial.html", {
            "trial": trial, "protocol": poll.protocol, "shown": ",".join(trial.images),
            "width": width, "height": height,
        })


async def score_page(request: Request, poll: Poll, participant: str):
    """The page of a participant who answered every trial: their score, and how often they were fooled."""
    right, given = await run_in_threadpool(poll.score, participant)
    mine = await run_in_threadpool(lambda: statistics.results(poll, participant=participant))
    return templates.TemplateResponse(request, "poll_done.html", {
        "right": right, "answered": given, "protocol": poll.protocol, "fooled": mine.rates()[-1],
    })


def add_start_and_answer(routes: APIRouter, participants: Participants) -> None:
    """POST /poll/start and POST /poll/answer: the poll's two writes, which another site's page cannot send
    (`web.guards.SameOriginWrites`)."""
    poll = participants.poll

    @routes.post("/poll/start", status_code=303, response_class=RedirectResponse, responses={
        303: {"description": "on to the first trial (/poll), with the participant's cookie"},
        403: {"description": "sent from another site's page"},
        429: {"description": "too many new participants from one address this minute (Retry-After)"},
    })
    async def start(request: Request):
        """Become a participant (once: a participant who has one keeps it) and go to /poll."""
        await run_in_threadpool(participants.of, request, True)
        return RedirectResponse("/poll", status_code=303)

    @routes.post("/poll/answer", openapi_extra=ANSWER_SCHEMA, responses=ANSWER_RESPONSES)
    async def answer(request: Request):
        """Answer the trial on show; each participant answers their trials in their order."""
        participant = await run_in_threadpool(participants.of, request, False)
        if participant is None:
            raise HTTPException(403, "no participant here: open /poll and press Start first (cookies must be on)")
        given = await answer_of(request)
        try:
            recorded = await run_in_threadpool(poll.record_answer, participant, given.pair, given.shown, given.answer)
        except NotShownNow as error:
            raise HTTPException(409, str(error)) from None
        except AnswerError as error:
            raise HTTPException(422, str(error)) from None
        if wants_json(request):
            trial = await run_in_threadpool(poll.next_trial, participant)
            next_trial = await run_in_threadpool(participants.trial_json, trial, participant)
            return JSONResponse({"recorded": recorded, "next": next_trial})
        return RedirectResponse("/poll", status_code=303)


def add_poll_images(routes: APIRouter, poll: Poll) -> None:
    """GET /poll/images/{name}: a trial's pictures, under random names that tell nothing of which version is which."""

    @routes.get("/poll/images/{name}")
    async def poll_image(name: str):
        """The two colour versions of a pair are sent with the same headers: no Last-Modified or
        ETag, which come from the files' times (the original is written first)."""
        path = poll.image_path(name)
        if path is None:
            raise HTTPException(404, "no such image")
        data = await run_in_threadpool(path.read_bytes)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


def admin_router(poll: Poll, admin_token: str) -> APIRouter:
    """/admin (tables and chart), /admin/results.csv, /admin/answers.csv, /admin/results.png: for
    the token's holder only. Each takes the counting rules as query parameters (`rules_of`)."""
    routes = APIRouter()

    def require_admin(request: Request) -> None:
        offered = request.query_params.get("token") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not offered or not secrets.compare_digest(offered.encode(), admin_token.encode()):
            raise HTTPException(401, "the results need the admin token (printed when the server started)")

    async def counted_results(request: Request) -> statistics.Results:
        """The results under the rules the admin asked for, or a one-line 400."""
        require_admin(request)
        try:
            return await run_in_threadpool(statistics.results, poll, rules_of(request))
        except PollError as error:
            raise HTTPException(400, f"pairs to leave out: {error}") from None

    @routes.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request):
        results = await counted_results(request)
        return templates.TemplateResponse(request, "poll_results.html", {
            "results": results, "token": request.query_params.get("token", ""), "query": rules_query(request),
            "rules": results.rules, "floor": statistics.FAST_FLOOR,
            "exclude": ",".join(map(str, results.rules.pairs)),
        })

    @routes.get("/admin/results.csv")
    async def admin_csv(request: Request):
        results = await counted_results(request)
        text = io.StringIO()
        results.write_csv(text)
        return csv_response(text.getvalue(), "turing_results.csv")

    @routes.get("/admin/answers.csv")
    async def admin_answers(request: Request):
        results = await counted_results(request)
        text = io.StringIO()
        await run_in_threadpool(statistics.write_answers_csv, poll, results.rules, text)
        return csv_response(text.getvalue(), "turing_answers.csv")

    @routes.get("/admin/results.png")
    async def admin_chart(request: Request):
        results = await counted_results(request)
        buffer = io.BytesIO()
        await run_in_threadpool(chart.turing_chart, results, buffer)
        return Response(buffer.getvalue(), media_type="image/png")

    return routes


def csv_response(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def rules_of(request: Request) -> statistics.Rules:
    """The counting rules of the results page's form: `exclude` (pairs, comma-separated),
    `complete_only`, `exclude_constant` (any value but empty or 0: on) and `min_seconds`."""
    query = request.query_params
    try:
        pairs = tuple(int(p) for p in query.get("exclude", "").split(",") if p.strip())
    except ValueError:
        raise HTTPException(400, "pairs to leave out: pair numbers separated by commas") from None
    floor = query.get("min_seconds", "").strip()
    try:
        min_seconds = float(floor) if floor else None
        if min_seconds is not None and not 0 <= min_seconds < float("inf"):
            raise ValueError(floor)
    except ValueError:
        raise HTTPException(400, "the fewest seconds a trial must be a number of 0 or more") from None

    def on(name: str) -> bool:
        return query.get(name, "") not in ("", "0")

    return statistics.Rules(on("complete_only"), min_seconds, on("exclude_constant"), pairs)


def rules_query(request: Request) -> str:
    """The rules of a request as a query string (for the CSV, answers and chart links)."""
    names = ("exclude", "complete_only", "min_seconds", "exclude_constant")
    return urlencode({name: request.query_params[name] for name in names if request.query_params.get(name)})
