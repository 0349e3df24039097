"""What the routes reach of the running server, per request.

The routes are plain module-level lists built before the server starts; the lifespan (app.py)
starts the game and the learning loop later. So an endpoint finds them through the request:
`running_game(request)` and `running_learning(request)` answer 503 `starting` until they exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from server.learning.loop import Learning
from server.play.game import Game
from server.prometheus import Metrics
from server.realtime.hub import Hub
from server.realtime.limits import ConnectionCaps, Limits
from server.web.errors import starting
from server.web.game_metrics import GameMetrics


class Running(Protocol):
    """The server the composition root (app.py) builds; `game`, `learning` and `admin_token`
    stay None until its lifespan has started them."""

    @property
    def metrics(self) -> Metrics: ...
    @property
    def game_metrics(self) -> GameMetrics: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def caps(self) -> ConnectionCaps: ...
    @property
    def allowed_origins(self) -> Sequence[str]: ...
    @property
    def game(self) -> Game | None: ...
    @property
    def learning(self) -> Learning | None: ...
    @property
    def admin_token(self) -> str | None: ...


def attach(app: Starlette, server: Running) -> None:
    """Make `server` what every route of `app` reaches (as `app.state.server`)."""
    app.state.server = server


def running(connection: HTTPConnection) -> Running:
    return cast(Running, connection.app.state.server)


def running_game(connection: HTTPConnection) -> Game:
    game = running(connection).game
    if game is None:
        raise starting()
    return game


def running_learning(connection: HTTPConnection) -> Learning:
    learning = running(connection).learning
    if learning is None:
        raise starting()
    return learning
