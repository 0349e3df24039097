"""A connection's live guesses (`LiveGuesses`) against a model that answers when told: one request
of the connection's at the model at a time, the messages waiting merged into the next, none ever
dropped (a connection too far behind is not read instead), and an answer sent from the batch."""

from __future__ import annotations

import asyncio
from typing import cast

from waiting import wait_until_async

from server.realtime.protocol import ProtocolError
from server.web.websocket import MAX_WAITING_INCREMENTS, LiveGuesses, Session


class Latency:
    def __init__(self) -> None:
        self.observed: list[float] = []

    def observe(self, seconds: float) -> None:
        self.observed.append(seconds)


class Model:
    """The game's side: each request is a future the test answers."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, list[str]]] = []
        self.answers: list[asyncio.Future[list[str]]] = []
        self.live_latency = Latency()

    def answer_increments(self, key: int, frames: list[str]) -> asyncio.Future[list[str]]:
        self.asked.append((key, frames))
        self.answers.append(asyncio.get_running_loop().create_future())
        return self.answers[-1]


class Connection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_text(self, text: str) -> None:
        self.sent.append(text)


class FakeSession:
    def __init__(self) -> None:
        self.game = Model()
        self.key = 7
        self.connection = Connection()
        self.refused: list[ProtocolError] = []

    def refuse(self, refused: ProtocolError) -> None:
        self.refused.append(refused)


async def test_messages_wait_for_the_previous_answer_and_go_together() -> None:
    session = FakeSession()
    live = LiveGuesses(cast(Session, session))
    live.add('{"type":"points","seq":1}')
    assert session.game.asked == [(7, ['{"type":"points","seq":1}'])]  # at once, no task
    live.add('{"type":"points","seq":2}')
    live.add('{"type":"points","seq":3}')
    assert len(session.game.asked) == 1  # one request of the connection's at a time
    session.game.answers[0].set_result(["guess 1"])
    await wait_until_async(lambda: session.connection.sent, 2, "the answer is sent")
    assert session.connection.sent == ["guess 1"]
    assert len(session.game.live_latency.observed) == 1  # the answered request, timed
    assert session.game.asked[1] == (7, ['{"type":"points","seq":2}', '{"type":"points","seq":3}'])
    await live.stop()


async def test_a_connection_too_far_behind_is_not_read_and_loses_nothing() -> None:
    session = FakeSession()
    live = LiveGuesses(cast(Session, session))
    frames = [f'{{"type":"points","seq":{n}}}' for n in range(1, MAX_WAITING_INCREMENTS + 2)]
    for frame in frames:
        live.add(frame)
    assert live.behind  # the reader waits here (Session.run) instead of reading on
    reader = asyncio.create_task(live.caught_up())
    done, _ = await asyncio.wait({reader}, timeout=0.2)
    assert not done  # nothing answered yet: the reader still waits
    session.game.answers[0].set_result([])
    await asyncio.wait_for(reader, 1)  # answered: every waiting message went to the model
    assert not live.behind
    asked: list[str] = [frame for _, sent in session.game.asked for frame in sent]
    assert asked == frames and session.refused == []
    await live.stop()


async def test_a_failed_request_is_an_error_reply_and_the_next_goes_on() -> None:
    session = FakeSession()
    live = LiveGuesses(cast(Session, session))
    live.add('{"type":"points","seq":1,"id":"p1"}')
    live.add('{"type":"points","seq":2,"id":"p2"}')
    session.game.answers[0].set_exception(ProtocolError("overloaded", "busy", "p1"))
    await wait_until_async(lambda: session.refused, 2, "the failure is refused")
    assert [(r.code, r.id) for r in session.refused] == [("overloaded", "p1")]
    assert len(session.game.asked) == 2
    await live.stop()
    assert session.game.answers[1].cancelled()  # a closing connection's request is not answered
