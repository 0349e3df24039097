"""HTTP endpoints of the consensus phase (docs/http-api.md).

Public: leaderboards, the hall of fame and player stats, for spectators. Admin (behind the admin
API's bearer-token guard): the review queue of disputed claims, decisions, moderation, players
and the raw-votes export. Errors use the API's `{"error": {"code", "message"}}` shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from game_rules.answers import BadAnswer
from game_rules.reliability import Status
from server.play.game import Game
from server.validation.leaderboards import BOARDS
from server.validation.service import ReviewError, image_png

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]
MAX_LIMIT = 100
MODERATION = {"ban": Status.BANNED, "quarantine": Status.QUARANTINED, "reinstate": Status.ACTIVE}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise ValueError(f"`{name}` must be a positive whole number.")
    return int(raw)


def public_routes(game: Callable[[], Game | None]) -> list[Route]:
    def running(endpoint: Callable[[Request, Game], Awaitable[Response]]) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            current = game()
            if current is None:
                return _error(503, "starting", "The server is starting; try again shortly.")
            try:
                return await endpoint(request, current)
            except ValueError as error:
                return _error(400, "bad_request", str(error))

        return wrapped

    async def leaderboard(request: Request, game: Game) -> Response:
        name = request.query_params.get("board", "round")
        if name not in BOARDS:
            raise ValueError("`board` is round, all or validators.")
        limit = _int_param(request, "limit", None)
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"`limit` is 1–{MAX_LIMIT}.")
        boards = game.validation.boards
        await boards.refresh()
        return JSONResponse(boards.snapshot(name, None, limit))

    async def hall_of_fame(request: Request, game: Game) -> Response:
        current = game.round.number if game.round else None
        number = _int_param(request, "round", current)
        if number is None:
            return JSONResponse([])
        fools = await game.repo.consensus_reads().verified_fools(number)
        return JSONResponse(
            [
                {
                    "attempt_id": attempt_id,
                    "player": name,
                    "label": label,
                    "predicted": predicted,
                    "png": image_png(image),
                }
                for attempt_id, name, label, predicted, image in fools
            ]
        )

    async def player_stats(request: Request, game: Game) -> Response:
        player_id = request.path_params["id"]
        names = await game.repo.consensus_reads().names([player_id])
        if player_id not in names:
            return _error(404, "not_found", f"There is no player {player_id}.")
        await game.validation.boards.refresh()
        return JSONResponse({**game.validation.boards.stats(player_id), "name": names[player_id]})

    return [
        Route("/api/leaderboard", running(leaderboard)),
        Route("/api/hall-of-fame", running(hall_of_fame)),
        Route("/api/players/{id:int}/stats", running(player_stats)),
    ]


def admin_routes(guard: Guard, game: Callable[[], Game]) -> list[Route]:
    """Routes for the admin API; `guard` checks the token and maps LookupError to 404."""

    async def review(request: Request) -> Response:
        return JSONResponse(await game().validation.review())

    async def decide(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "bad_request", "The body is not valid JSON.")
        if not isinstance(body, dict) or "label" not in body:
            return _error(400, "bad_request", 'Body: {"label": 0–9 or "x"}.')
        try:
            decided = await game().validation.decide(request.path_params["id"], body["label"])
        except BadAnswer as error:
            return _error(400, "bad_label", str(error))
        except ReviewError as error:
            return _error(409, "task_settled", str(error))
        return JSONResponse(decided)

    async def moderate(request: Request) -> Response:
        status = MODERATION.get(request.path_params["action"])
        if status is None:
            return _error(404, "not_found", f"The action is one of: {', '.join(MODERATION)}.")
        return JSONResponse(await game().validation.moderate(request.path_params["id"], status))

    async def players(request: Request) -> Response:
        query = request.query_params.get("query", "")[:64]
        return JSONResponse(await game().validation.players(query))

    async def votes_jsonl(request: Request) -> Response:
        records = await game().validation.votes_export()
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        return Response(body, media_type="application/x-ndjson")

    return [
        Route("/api/admin/review", guard(review), methods=["GET"]),
        Route("/api/admin/review/{id:int}", guard(decide), methods=["POST"]),
        Route("/api/admin/players/{id:int}/{action:str}", guard(moderate), methods=["POST"]),
        Route("/api/admin/players", guard(players), methods=["GET"]),
        Route("/api/admin/votes.jsonl", guard(votes_jsonl), methods=["GET"]),
    ]
