"""Every HTTP error is JSON, shaped as the API's own: `{"error": {"code", "message"}}`.

Starlette answers unknown paths (404), wrong methods (405) and the like in plain text; a client of
the JSON API should not have to parse two shapes. And an id in a path is a 64-bit row id: one
too large for the database is no such row (404), not an OverflowError (500).
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CODES = {404: "not_found", 405: "method_not_allowed"}


async def json_http_error(request: Request, exc: Exception) -> Response:
    """The JSON body for an `HTTPException` raised by routing or a handler."""
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


class RowIdConvertor(IntegerConvertor):
    """`{id:int}` in a path: at most 18 digits, so it always fits a 64-bit row id."""

    regex = "[0-9]{1,18}"


# Registered under "int": every `{...:int}` route compiled from now on uses it (this module is
# imported by the app before any route is built).
register_url_convertor("int", RowIdConvertor())
