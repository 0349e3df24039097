"""The admin HTTP routes of the game (docs/http-api.md, "Admin"): rounds, the review queue of
disputed claims, moderation, players and the raw-votes export. Each is built with the one
admin guard (`server/web/auth.py`); the learning loop's admin routes are in `learning.py`.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from game_rules.answers import BadAnswer
from game_rules.challenges import PromptRefused
from game_rules.reliability import Status
from game_rules.rounds import RoundState, closes_to
from server.validation.service import ReviewError
from server.web.auth import admin
from server.web.errors import ApiError
from server.web.running import running_game

MODERATION = {"ban": Status.BANNED, "quarantine": Status.QUARANTINED, "reinstate": Status.ACTIVE}


async def list_rounds(request: Request) -> Response:
    return JSONResponse([r.public() for r in await running_game(request).repo.rounds()])


async def create_round(request: Request) -> Response:
    body = await _json_object(request)
    version = body.get("model_version")
    open_now = body.get("open", False)
    if not (version is None or isinstance(version, str)) or not isinstance(open_now, bool):
        raise ApiError(
            400, "bad_request", 'Body: {"model_version": "v2" (optional), "open": bool}.'
        )
    created = await running_game(request).create_round(version, open_now)
    return JSONResponse(created.public(), status_code=201)


async def open_round(request: Request) -> Response:
    moved = await running_game(request).move_round(request.path_params["id"], RoundState.OPEN)
    return JSONResponse(moved.public())


async def close_round(request: Request) -> Response:
    """Open → closing (claims still settle); closing or scheduled → closed.
    `{"state": "closed"}` closes an open round at once."""
    body = await _json_object(request)
    game = running_game(request)
    found = await game.repo.round(request.path_params["id"])
    if found is None:
        raise LookupError(f"There is no round {request.path_params['id']}.")
    wanted = body.get("state")
    if wanted not in (None, "closing", "closed"):
        raise ApiError(400, "bad_request", '`state` is "closing" or "closed".')
    target = closes_to(found.state) if wanted is None else RoundState(wanted)
    moved = await game.move_round(found.id, target)
    return JSONResponse(moved.public())


async def list_challenges(request: Request) -> Response:
    challenges = running_game(request).challenges
    return JSONResponse(await challenges.of_round(request.path_params["id"]))


async def add_challenge(request: Request) -> Response:
    """Attach a prompt (game_rules/challenges.py) to a round that is not closed."""
    body = await _json_object(request)
    try:
        prompt = await running_game(request).challenges.add(request.path_params["id"], body)
    except PromptRefused as error:
        raise ApiError(400, "bad_request", str(error)) from error
    return JSONResponse(prompt, status_code=201)


async def review(request: Request) -> Response:
    return JSONResponse(await running_game(request).validation.review())


async def decide(request: Request) -> Response:
    body = await _json_object(request)
    if "label" not in body:
        raise ApiError(400, "bad_request", 'Body: {"label": 0–9 or "x"}.')
    try:
        decided = await running_game(request).validation.decide(
            request.path_params["id"], body["label"]
        )
    except BadAnswer as error:
        raise ApiError(400, "bad_label", str(error)) from error
    except ReviewError as error:
        raise ApiError(409, "task_settled", str(error)) from error
    return JSONResponse(decided)


async def moderate(request: Request) -> Response:
    status = MODERATION.get(request.path_params["action"])
    if status is None:
        raise LookupError(f"The action is one of: {', '.join(MODERATION)}.")
    validation = running_game(request).validation
    return JSONResponse(await validation.moderate(request.path_params["id"], status))


async def moderator(request: Request) -> Response:
    """POST marks the player a moderator (a trusted validator whose vote decides), DELETE
    unmarks them."""
    validation = running_game(request).validation
    marked = request.method == "POST"
    return JSONResponse(await validation.set_moderator(request.path_params["id"], marked))


async def audit(request: Request) -> Response:
    """Every vote on a claim with its weight and why it did or did not count."""
    return JSONResponse(await running_game(request).validation.audit(request.path_params["id"]))


async def players(request: Request) -> Response:
    query = request.query_params.get("query", "")[:64]
    return JSONResponse(await running_game(request).validation.players(query))


async def votes_jsonl(request: Request) -> Response:
    records = await running_game(request).validation.votes_export()
    body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    return Response(body, media_type="application/x-ndjson")


async def _json_object(request: Request) -> dict[str, object]:
    """The request's JSON object body; an empty body is `{}`."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    return body


routes: list[BaseRoute] = [
    Route("/api/admin/rounds", admin(list_rounds), methods=["GET"]),
    Route("/api/admin/rounds", admin(create_round), methods=["POST"]),
    Route("/api/admin/rounds/{id:row_id}/open", admin(open_round), methods=["POST"]),
    Route("/api/admin/rounds/{id:row_id}/close", admin(close_round), methods=["POST"]),
    Route("/api/admin/rounds/{id:row_id}/challenges", admin(list_challenges), methods=["GET"]),
    Route("/api/admin/rounds/{id:row_id}/challenges", admin(add_challenge), methods=["POST"]),
    Route("/api/admin/review", admin(review), methods=["GET"]),
    Route("/api/admin/review/{id:row_id}", admin(decide), methods=["POST"]),
    Route("/api/admin/claims/{id:row_id}/audit", admin(audit), methods=["GET"]),
    Route("/api/admin/players/{id:row_id}/moderator", admin(moderator), methods=["POST", "DELETE"]),
    Route("/api/admin/players/{id:row_id}/{action:str}", admin(moderate), methods=["POST"]),
    Route("/api/admin/players", admin(players), methods=["GET"]),
    Route("/api/admin/votes.jsonl", admin(votes_jsonl), methods=["GET"]),
]
