"""The Turing-test pages: one trial at a time for participants, results for the admin.

Participants are anonymous: an id in a cookie signed with the poll's own secret (kept in the
poll folder, so a restarted server still knows them). A newcomer first sees what the study is;
its Start button posts /poll/start, which makes them a participant. Every page works without
JavaScript: a trial is a form whose buttons post the answer, and the server redirects to the
next trial. Programs (the load test) use the same routes with JSON (`Accept: application/json`),
and GET /poll makes them a participant at once.
"""

from __future__ import annotations

import io
import secrets

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from pix2color import turing
from pix2color.turing import AnswerError, Poll


def add(app: FastAPI, poll: Poll, templates: Jinja2Templates) -> None:
    def participant_of(request: Request, create: bool) -> str | None:
        participant = request.session.get("participant")
        if poll.knows(participant):
            return participant
        if not create:
            return None
        participant = poll.new_participant()
        request.session["participant"] = participant
        return participant

    sizes: dict[str, tuple[int, int]] = {}

    def image_size(name: str) -> tuple[int, int]:
        """(width, height) of a poll image, read from its header once; the images of a pair share it."""
        if name not in sizes:
            from PIL import Image

            with Image.open(poll.image_path(name)) as image:
                sizes[name] = image.size
        return sizes[name]

    def trial_json(trial: turing.Trial | None, participant: str) -> dict:
        if trial is None:
            right, given = poll.score(participant)
            return {"done": True, "right": right, "answered": given}
        return {"done": False, "pair": trial.pair, "position": trial.position + 1, "total": trial.total,
                "gray": f"/poll/images/{trial.gray}", "images": trial.images}

    @app.get("/poll", response_class=HTMLResponse)
    async def poll_page(request: Request):
        wants_json = "application/json" in request.headers.get("accept", "")
        # People first read what the study is, and its Start button posts /poll/start; programs start at once.
        participant = await run_in_threadpool(participant_of, request, wants_json)
        if participant is None:
            return templates.TemplateResponse(request, "poll_intro.html", {
                "protocol": poll.protocol, "pairs": poll.pair_count,
            })
        trial = await run_in_threadpool(poll.next_trial, participant)
        if wants_json:
            return JSONResponse(trial_json(trial, participant))
        if trial is None:
            right, given = await run_in_threadpool(poll.score, participant)
            mine = await run_in_threadpool(lambda: turing.results(poll, participant=participant))
            return templates.TemplateResponse(request, "poll_done.html", {
                "right": right, "answered": given, "protocol": poll.protocol, "fooled": mine.rates()[-1],
            })
        width, height = await run_in_threadpool(image_size, trial.gray)
        return templates.TemplateResponse(request, "poll_trial.html", {
            "trial": trial, "protocol": poll.protocol, "shown": ",".join(trial.images),
            "width": width, "height": height,
        })

    @app.post("/poll/start")
    async def start(request: Request):
        await run_in_threadpool(participant_of, request, True)
        return RedirectResponse("/poll", status_code=303)

    @app.post("/poll/answer")
    async def answer(request: Request):
        participant = await run_in_threadpool(participant_of, request, False)
        if participant is None:
            raise HTTPException(403, "no participant here: open /poll and press Start first (cookies must be on)")
        if "application/json" in request.headers.get("content-type", ""):
            try:
                body = await request.json()
            except ValueError:
                raise HTTPException(400, "the body is not JSON") from None
        else:
            body = dict(await request.form(max_files=0, max_fields=8))
        try:
            pair = int(body.get("pair"))
            shown = body.get("shown")
            shown = shown.split(",") if isinstance(shown, str) else list(shown)
            choice = str(body.get("answer"))
        except (TypeError, ValueError):
            raise HTTPException(400, "an answer needs 'pair' (a number), 'shown' and 'answer'") from None
        try:
            recorded = await run_in_threadpool(poll.record_answer, participant, pair, shown, choice)
        except AnswerError as error:
            raise HTTPException(422, str(error)) from None
        if "application/json" in request.headers.get("accept", ""):
            trial = await run_in_threadpool(poll.next_trial, participant)
            return JSONResponse({"recorded": recorded, "next": trial_json(trial, participant)})
        return RedirectResponse("/poll", status_code=303)

    @app.get("/poll/images/{name}")
    async def poll_image(name: str):
        path = poll.image_path(name)
        if path is None:
            raise HTTPException(404, "no such image")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    # ------------------------------------------------------------------ admin

    def require_admin(request: Request) -> None:
        offered = request.query_params.get("token") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not offered or not secrets.compare_digest(offered.encode(), app.state.admin_token.encode()):
            raise HTTPException(401, "the results need the admin token (printed when the server started)")

    def exclusions(request: Request) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in request.query_params.get("exclude", "").split(",") if p.strip())
        except ValueError:
            raise HTTPException(400, "exclude takes pair numbers separated by commas") from None

    @app.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request):
        require_admin(request)
        excluded = exclusions(request)
        results = await run_in_threadpool(turing.results, poll, excluded)
        return templates.TemplateResponse(request, "poll_results.html", {
            "results": results, "report": results.report(), "token": request.query_params.get("token", ""),
            "exclude": ",".join(map(str, excluded)),
            "pairs": {pair: turing.Results.from_matrix(matrix, results.protocol)
                      for pair, matrix in sorted(results.per_pair.items())},
        })

    @app.get("/admin/results.csv")
    async def admin_csv(request: Request):
        require_admin(request)
        results = await run_in_threadpool(turing.results, poll, exclusions(request))
        text = io.StringIO()
        results.write_csv(text)
        return Response(text.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="turing_results.csv"'})

    @app.get("/admin/results.png")
    async def admin_chart(request: Request):
        require_admin(request)
        from pix2color import plots

        results = await run_in_threadpool(turing.results, poll, exclusions(request))
        buffer = io.BytesIO()
        await run_in_threadpool(plots.turing_chart, results, buffer)
        return Response(buffer.getvalue(), media_type="image/png")
