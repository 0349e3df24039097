"""The floor of the stack: a bare uvicorn + Starlette websocket that answers each live guess of
`bench/load.py` with a prediction-shaped reply, doing no game work at all. What its event loop
spends per guess is what uvicorn, Starlette and the `websockets` parser cost by themselves
(README, "The event loop's time per live guess").

    .venv/bin/python bench/echo_floor.py 8121 &
    .venv/bin/python bench/load.py --url ws://127.0.0.1:8121/ws --players 250 --protocol 2
"""

from __future__ import annotations

import re
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

ID = re.compile(r'"id":"([^"]*)"')
PROBS = ",".join(["0.1"] * 10)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") or ""
        if '"hello"' in text:
            await websocket.send_text('{"type":"welcome","v":2,"id":null}')
            continue
        found = ID.search(text)
        if found and found.group(1).startswith("p"):  # a guess (submissions go unanswered)
            head = f'{{"type":"prediction","id":"{found.group(1)}","seq":1,"label":3'
            await websocket.send_text(f'{head},"probs":[{PROBS}],"model_version":"v1"}}')


app = Starlette(routes=[WebSocketRoute("/ws", echo)])

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8121
    # As server/app.py configures uvicorn for the game.
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False,
        ws_per_message_deflate=False,
    )  # fmt: skip
