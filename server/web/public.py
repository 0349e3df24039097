"""The public HTTP routes (docs/http-api.md, "Public"): health, Prometheus metrics, rounds,
leaderboards, the hall of fame, player stats and the model chart data. No login: spectators
and monitoring read these.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from game_rules.rates import shown_rate
from server.validation.leaderboards import BOARDS
from server.validation.service import image_png
from server.web.errors import ApiError, api_endpoint
from server.web.running import running, running_game, running_learning

MAX_LIMIT = 100


async def healthz(request: Request) -> Response:
    """For load balancers and monitoring: its own small shape, not the API's error shape."""
    server = running(request)
    game = server.game
    if game is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    try:
        await game.repo.ping()
        current = await game.current_round()
    except Exception as error:
        return JSONResponse({"status": "storage_error", "error": str(error)}, status_code=503)
    if game.follow_error is not None:
        # This process cannot serve the current round (its model is missing here).
        return JSONResponse(
            {
                "status": "round_model_missing",
                "error": game.follow_error,
                "model_version": game.serving_version,
            },
            status_code=503,
        )
    return JSONResponse(
        {
            "status": "ok",
            "model_version": game.serving_version,
            "round": current.public() if current else None,
            "connections": len(server.hub.connections),
        }
    )


async def prometheus_metrics(request: Request) -> Response:
    server = running(request)
    await server.game_metrics.refresh()
    return Response(server.metrics.render(), media_type="text/plain; version=0.0.4")


async def current_round(request: Request) -> Response:
    current = await running_game(request).current_round()
    return JSONResponse(current.public() if current else None)


async def rounds(request: Request) -> Response:
    return JSONResponse([r.public() for r in await running_game(request).repo.rounds()])


async def leaderboard(request: Request) -> Response:
    name = request.query_params.get("board", "round")
    if name not in BOARDS:
        raise ApiError(400, "bad_request", "`board` is round, all or validators.")
    limit = _int_param(request, "limit", None)
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"`limit` is 1–{MAX_LIMIT}.")
    boards = running_game(request).validation.boards
    await boards.refresh()
    return JSONResponse(boards.snapshot(name, None, limit))


async def hall_of_fame(request: Request) -> Response:
    game = running_game(request)
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


async def challenges(request: Request) -> Response:
    """The current round's prompts (game_rules/challenges.py)."""
    game = running_game(request)
    if game.round is None:
        return JSONResponse({"round_id": None, "challenges": [], "met": []})
    return JSONResponse(await game.challenges.of_round(game.round.id))


async def player_stats(request: Request) -> Response:
    game = running_game(request)
    player_id = request.path_params["id"]
    names = await game.repo.consensus_reads().names([player_id])
    if player_id not in names:
        raise LookupError(f"There is no player {player_id}.")
    await game.validation.boards.refresh()
    return JSONResponse({**game.validation.boards.stats(player_id), "name": names[player_id]})


async def model_metrics(request: Request) -> Response:
    """The chart data: one row per model version that may serve, each with the interval of
    its fooled rate (null while too few attempts were made on it to show one)."""
    rows = await running_learning(request).metrics()
    rules = running_game(request).validation.settings
    for row in rows:
        shown = shown_rate(row["verified"], row["attempts"], rules)
        row["vmer_interval"] = None if shown is None else [shown.low, shown.high]
    return JSONResponse(rows)


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "bad_request", f"`{name}` must be a positive whole number.")
    return int(raw)


routes: list[BaseRoute] = [
    Route("/healthz", healthz),
    Route("/metrics", prometheus_metrics),
    Route("/api/round", api_endpoint(current_round)),
    Route("/api/rounds", api_endpoint(rounds)),
    Route("/api/leaderboard", api_endpoint(leaderboard)),
    Route("/api/hall-of-fame", api_endpoint(hall_of_fame)),
    Route("/api/challenges", api_endpoint(challenges)),
    Route("/api/players/{id:row_id}/stats", api_endpoint(player_stats)),
    Route("/api/models/metrics", api_endpoint(model_metrics)),
]
