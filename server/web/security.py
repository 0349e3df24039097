"""Security headers on every HTTP response, and which Host names the server answers to.

The pages load only their own scripts and styles (no inline ones: static/*.html has none), so the
Content-Security-Policy can forbid everything else; nobody may frame a page (the admin page
included: clickjacking); browsers must not guess content types; links leak no referrer.

Host names: a page on another site whose name an attacker points at 127.0.0.1 (DNS rebinding)
sends its own name as Host, and its own origin, which then matches the Host. Answering only the
names this server is known by stops that. Local names work out of the box; a deployment adds its
public name (`FTM_ALLOWED_HOSTS`, read by `fool-the-model serve`).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # drawings and tasks arrive as base64 PNGs
        "connect-src 'self'",  # the API and the websocket (CSP 3: 'self' covers ws/wss)
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for older browsers
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def allowed_hosts(extra: Sequence[str]) -> list[str]:
    """The local names and `extra` ("game.example.org", "*.example.org"), without duplicates."""
    return list(dict.fromkeys([*LOCAL_HOSTS, *(host.strip().lower() for host in extra)]))


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a Host header names one of `allowed` (`allowed_hosts`), as Starlette's
    TrustedHostMiddleware decides it for the HTTP routes; the websocket's upgrade (wire.py)
    does not pass through that middleware."""
    name = host.split(":")[0].lower()
    return "*" in allowed or any(
        name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:]))
        for pattern in allowed
    )


class SecurityHeaders:
    """Pure ASGI middleware: adds HEADERS to every HTTP response (errors included) that does not
    set them itself. Pure ASGI, not BaseHTTPMiddleware: nothing is buffered or re-wrapped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
