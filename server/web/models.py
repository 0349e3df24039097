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
from starlette.routing import Route

from game_rules.heldout import percent_of
from server.config import DataLayout
from server.learning import benchmark
from server.learning.data import verified_count
from server.storage.sync import connect
from server.validation.service import load_rules
from server.web.admin import AdminApi, api_error


class ModelsApi:
    def __init__(self, admin: AdminApi, layout: DataLayout) -> None:
        self.admin = admin
        self.layout = layout
        self._cache: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/api/models/leaderboard", self.leaderboard, methods=["GET"]),
            Route(
                "/api/admin/models/outside/{name}",
                self.admin._guarded(self.register),
                methods=["POST"],
            ),
        ]

    def _state(self) -> tuple[Any, ...]:
        """What the leaderboard depends on: the model files and the verified drawings."""
        files = [
            (path.name, path.stat().st_mtime_ns)
            for folder in (self.layout.models_dir, benchmark.outside_models_dir(self.layout))
            if folder.is_dir()
            for path in sorted(folder.glob("*.json"))
        ]
        with connect(self.layout.database_url) as db:
            return (tuple(files), verified_count(db))

    def _compute(self) -> dict[str, Any]:
        percent = percent_of(load_rules(self.layout).retrain.heldout_fraction)
        return benchmark.leaderboard(self.layout, percent)

    async def leaderboard(self, request: Request) -> Response:
        if self.admin._game is None:  # the database is ready once the game runs
            return api_error(503, "starting", "The server is starting; try again shortly.")
        async with self._lock:  # one scoring at a time; the others wait and share it
            state = await asyncio.to_thread(self._state)
            if self._cache is None or self._cache[0] != state:
                self._cache = (state, await asyncio.to_thread(self._compute))
            board = self._cache[1]
        return JSONResponse({**board, "note": benchmark.NOTE})

    async def register(self, request: Request) -> Response:
        name = request.path_params["name"]
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > benchmark.MAX_MODEL_BYTES:
            return _too_big()
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > benchmark.MAX_MODEL_BYTES:
                return _too_big()
        try:
            record = await asyncio.to_thread(
                benchmark.register_outside_model, self.layout, name, bytes(body)
            )
        except benchmark.BenchmarkError as error:
            return api_error(400, "bad_model", str(error))
        return JSONResponse(record, status_code=201)


def _too_big() -> Response:
    limit = benchmark.MAX_MODEL_BYTES / 1e6
    return api_error(413, "too_large", f"A model file may be at most {limit:.0f} MB.")
