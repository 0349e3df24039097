"""The models page's data (public) and outside-model registration (admin): docs/http-api.md.

`GET /api/models/leaderboard` scores every model on MNIST test and on every round's verified
drawings (server/learning/benchmark.py). Scoring takes seconds, so the answer is kept until a
model or a verified drawing is added. `POST /api/admin/models/outside/{name}` takes an .onnx file
as the request body; it is refused past the size cap before it is even read whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from game_rules.heldout import percent_of
from server.config import DataLayout, load_rules
from server.learning import benchmark
from server.learning.data import verified_count
from server.storage.sync import connect
from server.web.auth import admin
from server.web.errors import ApiError, api_endpoint
from server.web.running import running_game


class LeaderboardCache:
    """The last leaderboard and what it was computed from; one scoring at a time."""

    def __init__(self) -> None:
        self.state: tuple[Any, ...] | None = None
        self.board: dict[str, Any] = {}
        self.lock = asyncio.Lock()

    async def board_for(self, layout: DataLayout) -> dict[str, Any]:
        async with self.lock:  # the others wait and share the answer
            state = await asyncio.to_thread(_state, layout)
            if self.state != state:
                self.board = await asyncio.to_thread(_compute, layout)
                self.state = state
            return self.board


_cache = LeaderboardCache()


def _state(layout: DataLayout) -> tuple[Any, ...]:
    """What the leaderboard depends on: the model files and the verified drawings."""
    files = [
        (path.name, path.stat().st_mtime_ns)
        for folder in (layout.models_dir, benchmark.outside_models_dir(layout))
        if folder.is_dir()
        for path in sorted(folder.glob("*.json"))
    ]
    with connect(layout.database_url) as db:
        return (str(layout.root), tuple(files), verified_count(db))


def _compute(layout: DataLayout) -> dict[str, Any]:
    percent = percent_of(load_rules(layout).retrain.heldout_fraction)
    return benchmark.leaderboard(layout, percent)


async def leaderboard(request: Request) -> Response:
    layout = running_game(request).layout  # the database is ready once the game runs
    board = await _cache.board_for(layout)
    return JSONResponse({**board, "note": benchmark.NOTE})


async def register(request: Request) -> Response:
    layout = running_game(request).layout
    name = request.path_params["name"]
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > benchmark.MAX_MODEL_BYTES:
        raise _too_big()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > benchmark.MAX_MODEL_BYTES:
            raise _too_big()
    try:
        record = await asyncio.to_thread(
            benchmark.register_outside_model, layout, name, bytes(body)
        )
    except benchmark.BenchmarkError as error:
        raise ApiError(400, "bad_model", str(error)) from None
    return JSONResponse(record, status_code=201)


def _too_big() -> ApiError:
    limit = benchmark.MAX_MODEL_BYTES / 1e6
    return ApiError(413, "too_large", f"A model file may be at most {limit:.0f} MB.")


routes: list[BaseRoute] = [
    Route("/api/models/leaderboard", api_endpoint(leaderboard), methods=["GET"]),
    Route("/api/admin/models/outside/{name}", admin(register), methods=["POST"]),
]
