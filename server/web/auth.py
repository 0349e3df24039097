"""The admin bearer token: where it comes from, and the one guard every `/api/admin/…` route
is built with.

The token comes from `$FTM_ADMIN_TOKEN`; without it, one is generated on first start into
`DATA/admin_token` (owner-only permissions) and printed once. Players' websockets never reach
any admin route.
"""

from __future__ import annotations

import functools
import hmac
import os
import secrets
import sys

from starlette.requests import Request
from starlette.responses import Response

from server.config import DataLayout
from server.web.errors import ApiError, Endpoint, api_endpoint, starting
from server.web.running import running


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


def admin(endpoint: Endpoint) -> Endpoint:
    """`endpoint` as an admin API endpoint: 503 until the server runs, 401 without
    `Authorization: Bearer <admin token>`, and its errors in the API's shape (`api_endpoint`)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        token = running(request).admin_token
        if token is None:
            raise starting()
        if not _presents(request, token):
            raise ApiError(401, "unauthorized", "Send `Authorization: Bearer <admin token>`.")
        return await endpoint(request)

    return api_endpoint(guarded)


def _presents(request: Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Constant time: how much of a guess matched must not show in how long the answer takes.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )
