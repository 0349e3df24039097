"""The floor of the stack: the game's own websocket wire (server/realtime/wire.py, picows in
uvicorn), answering each live guess of `bench/load.py` with a prediction-shaped reply and doing no
game work at all. What its event loop spends per guess is what the wire costs by itself (README,
"The event loop's time per live guess"). `--asgi` serves the same replies through uvicorn's own
websocket protocol and Starlette instead, as `/ws` was served before the wire (the old floor).

    .venv/bin/python bench/echo_floor.py 8121 [--asgi] &
    .venv/bin/python bench/load.py --url ws://127.0.0.1:8121/ws --players 250 --protocol 2
"""

from __future__ import annotations

import argparse
import re

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from server.realtime import wire

ID = re.compile(r'"id":"([^"]*)"')
PROBS = ",".join(["0.1"] * 10)
WELCOME = '{"type":"welcome","v":2,"id":null}'


def reply_to(text: str) -> str | None:
    """The welcome for a `hello`, a prediction for a guess; submissions go unanswered."""
    if '"hello"' in text:
        return WELCOME
    found = ID.search(text)
    if found and found.group(1).startswith("p"):
        head = f'{{"type":"prediction","id":"{found.group(1)}","seq":1,"label":3'
        return f'{head},"probs":[{PROBS}],"model_version":"v1"}}'
    return None


class Echo:
    """A session (wire.Session) that only answers."""

    def __init__(self, channel: wire.Channel) -> None:
        self.channel = channel

    def received(self, message: str | bytes) -> None:
        if isinstance(message, str) and (reply := reply_to(message)) is not None:
            self.channel.send_text(reply)

    def disconnected(self) -> None:
        return None


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if (reply := reply_to(message.get("text") or "")) is not None:
            await websocket.send_text(reply)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, nargs="?", default=8121)
    parser.add_argument("--asgi", action="store_true", help="uvicorn's websockets + Starlette")
    args = parser.parse_args()
    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    # As server/app.py configures uvicorn for the game.
    ws = "websockets" if args.asgi else wire.protocol_factory(
        Echo, lambda host: True, max_message_bytes=64 * 1024, send_buffer_bytes=256 * 1024
    )  # fmt: skip
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False,
        ws=ws, ws_per_message_deflate=False,  # type: ignore[arg-type]
    )  # fmt: skip


if __name__ == "__main__":
    main()
