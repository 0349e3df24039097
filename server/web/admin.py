"""The admin HTTP API (docs/http-api.md): bearer-token auth and round management.

The token comes from `$FTM_ADMIN_TOKEN`; without it, one is generated on first start into
`DATA/admin_token` (owner-only permissions) and printed once. Players' websockets never reach
any of this.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from game_rules.rounds import RoundState, closes_to
from server.config import DataLayout
from server.play.game import Game, RoundError
from server.web.consensus import admin_routes

Endpoint = Callable[[Request], Awaitable[Response]]


def load_admin_token(layout: DataLayout, configured: str) -> str:
    """The admin token: `configured` (`$FTM_ADMIN_TOKEN`, server/config.py) if set, else the
    data directory's (created on first use)."""
    if configured:
        return configured
    path = layout.admin_token_file
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    # O_EXCL: if two processes race, one wins and the other reads the winner's token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    print(f"Admin token (saved to {path}, shown only this once): {token}", file=sys.stderr)
    return token


def api_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class AdminApi:
    """Routes exist from the start; `attach` gives them the game and token once it is running."""

    def __init__(self) -> None:
        self._game: Game | None = None
        self._token: bytes | None = None

    def attach(self, game: Game, token: str) -> None:
        self._game = game
        self._token = token.encode()

    @property
    def game(self) -> Game:
        assert self._game is not None
        return self._game

    def _authorised(self, request: Request) -> bool:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        return (
            self._token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(presented.strip().encode(), self._token)
        )

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if self._game is None:
                return api_error(503, "starting", "The server is starting; try again shortly.")
            if not self._authorised(request):
                return api_error(401, "unauthorized", "Send `Authorization: Bearer <admin token>`.")
            try:
                return await endpoint(request)
            except LookupError as error:
                return api_error(404, "not_found", str(error.args[0]))
            except RoundError as error:
                return api_error(409, "illegal_transition", str(error))

        return guarded

    def routes(self) -> list[Route]:
        g = self._guarded
        return [
            Route("/api/admin/rounds", g(self.list_rounds), methods=["GET"]),
            Route("/api/admin/rounds", g(self.create_round), methods=["POST"]),
            Route("/api/admin/rounds/{id:int}/open", g(self.open_round), methods=["POST"]),
            Route("/api/admin/rounds/{id:int}/close", g(self.close_round), methods=["POST"]),
            *admin_routes(g, lambda: self.game),
        ]

    async def list_rounds(self, request: Request) -> Response:
        return JSONResponse([r.public() for r in await self.game.repo.rounds()])

    async def create_round(self, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        version = body.get("model_version")
        open_now = body.get("open", False)
        if not (version is None or isinstance(version, str)) or not isinstance(open_now, bool):
            return api_error(
                400, "bad_request", 'Body: {"model_version": "v2" (optional), "open": bool}.'
            )
        created = await self.game.create_round(version, open_now)
        return JSONResponse(created.public(), status_code=201)

    async def open_round(self, request: Request) -> Response:
        moved = await self.game.move_round(request.path_params["id"], RoundState.OPEN)
        return JSONResponse(moved.public())

    async def close_round(self, request: Request) -> Response:
        """Open → closing (claims still settle); closing or scheduled → closed.
        `{"state": "closed"}` closes an open round at once."""
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        found = await self.game.repo.round(request.path_params["id"])
        if found is None:
            raise LookupError(f"There is no round {request.path_params['id']}.")
        wanted = body.get("state")
        if wanted not in (None, "closing", "closed"):
            return api_error(400, "bad_request", '`state` is "closing" or "closed".')
        target = closes_to(found.state) if wanted is None else RoundState(wanted)
        moved = await self.game.move_round(found.id, target)
        return JSONResponse(moved.public())


async def _json_body(request: Request) -> dict[str, object] | Response:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return api_error(400, "bad_request", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return api_error(400, "bad_request", "The body must be a JSON object.")
    return body
