"""The API's one error shape, `{"error": {"code": "…", "message": "…"}}` (docs/http-api.md), for
every HTTP error: the API's own and Starlette's (404 for an unknown path, 405 for a wrong method).

Endpoints raise `ApiError` (or let a lookup or an illegal round move escape) and `api_endpoint`,
wrapped around every `/api/…` endpoint, turns it into that body, so no endpoint builds an error
response itself and every route answers the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.play.game import RoundError

Endpoint = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """An answer the client can act on: its status, a stable code and a sentence for a human."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def starting() -> ApiError:
    """Routes exist before the lifespan has started the game; until then they all say this."""
    return ApiError(503, "starting", "The server is starting; try again shortly.")


def api_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def api_endpoint(endpoint: Endpoint) -> Endpoint:
    """`endpoint`, answering what it raises in the API's error shape: an `ApiError` as itself,
    a `LookupError` (no such round, player, claim, model) as 404, an illegal round move as 409."""

    @functools.wraps(endpoint)
    async def answering(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as error:
            return api_error(error.status, error.code, error.message)
        except LookupError as error:
            return api_error(404, "not_found", str(error.args[0]))
        except RoundError as error:
            return api_error(409, "illegal_transition", str(error))

    return answering


CODES = {404: "not_found", 405: "method_not_allowed"}


async def json_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's `HTTPException` (routing, static files) in the API's shape: a client of the
    JSON API should not have to parse two."""
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    code = CODES.get(exc.status_code, status.phrase.lower().replace(" ", "_"))
    message = exc.detail if exc.detail and exc.detail != status.phrase else status.description
    if exc.status_code == 404:
        message = f"Nothing at {request.url.path}; see docs/http-api.md."
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=exc.status_code,
        headers=exc.headers,
    )
