"""The game over the websocket `/ws`: the origin check and the caps, then one `Session` from
`hello` to close. The wire beneath (handshake, frames, flow control) is wire.py's.

Live guesses are latest-wins: the session only parks the newest raw `predict` frame in a one-slot
mailbox, and it is sent to the model worker process (parsed and guessed there) the moment the
connection's previous guess is answered, so an older unserved guess is replaced (dropped), never
queued. Protocol v2's drawing messages (`stroke_start`, `points`, …) change the drawing the model
worker holds for the connection, so none may be dropped: they queue, and whenever the previous
answer is out, all those waiting go to the worker together and are answered with one guess (at
load a connection's messages merge this way). A connection with MAX_WAITING_INCREMENTS waiting is
not read until they are answered: the client is slowed down by TCP instead of losing messages.
Submissions queue (a few at most) for their own task.

The event loop's time per live guess is the scarce resource (one core holds it, the other the
model worker, and both share with whoever else runs here): a guess is read in the channel's
callback and answered from the model worker batch's callback, with no task wake-up in between
(`Session.received`, `LiveGuesses`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import itertools
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from game_rules.answers import BadAnswer, parse_answer
from server.play.game import Game
from server.prometheus import Metrics
from server.realtime.hub import Connection, Hub
from server.realtime.limits import POLICY_VIOLATION, TRY_AGAIN_LATER, Limits
from server.realtime.protocol import (
    INCREMENTS,
    PROTOCOL_VERSIONS,
    ClientMessage,
    Drawing,
    Explain,
    Hello,
    Increment,
    Leaderboard,
    Ping,
    Predict,
    ProtocolError,
    Submit,
    Task,
    Vote,
    client_id,
    encode,
    encode_increment,
    error,
    parse,
    rounded,
)
from server.realtime.shared_limits import player_rates
from server.realtime.wire import Channel
from server.serving.inference import HeldSubmission
from server.serving.saliency import to_bytes
from server.storage import Player
from server.web.running import Running

log = logging.getLogger(__name__)

M = TypeVar("M", bound=ClientMessage | Increment)
# How a live guess starts (our browser client's JSON.stringify puts `type` first).
PREDICT = re.compile(r'\{\s*"type"\s*:\s*"predict"')
# How a v2 drawing message starts (our client's too); the model worker parses it.
INCREMENT = re.compile(r'\{\s*"type"\s*:\s*"(?:stroke_start|points|undo|clear|drawing)"')
# v2 drawing messages waiting for the model worker, per connection. A client sends about 10 a
# second; this many waiting means its answers are seconds late (deep overload): the connection
# is not read again until they are answered, so the client slows down instead of losing
# messages (TCP pushes back; dropping them cost a `resync` of the whole drawing each).
MAX_WAITING_INCREMENTS = 32
# Messages waiting behind one being served (a `hello`, a vote…): past this many the connection is
# not read until they are served.
MAX_UNREAD = 32
_connection_keys = itertools.count(1)  # names each connection's held drawing in the worker


def frame_text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else ""


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """Browsers always send Origin: it must be this host or a configured one. Non-browser
    clients send none and are let in (they could forge it anyway; Origin stops other *sites*)."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def open_session(server: Running, channel: Channel) -> Session | Refused:
    """A new connection's session, once its handshake is done (wire.py). A refused origin is
    accepted and then closed with 1008 and a reason: a handshake refused outright reaches the
    page as a bare failure, with nothing to tell the user why."""
    if not origin_allowed(
        channel.headers.get("origin"), channel.headers.get("host"), server.allowed_origins
    ):
        server.metrics.disconnects.labels(str(POLICY_VIOLATION)).inc()
        channel.close(POLICY_VIOLATION, "origin not allowed")
        return Refused()
    if server.game is None:  # still starting
        channel.close(TRY_AGAIN_LATER, "the server is starting; try again in a moment")
        return Refused()
    refused = server.caps.admit(channel.address)
    if refused is not None:
        server.metrics.disconnects.labels(str(refused[0])).inc()
        channel.close(*refused)
        return Refused()
    session = Session(channel, server.game, server.hub, server.limits, server.metrics)
    session.ended.add_done_callback(lambda _: server.caps.release(channel.address))
    session.start()
    return session


class Refused:
    """The session of a connection closed at once: it hears nothing."""

    def received(self, message: str | bytes) -> None:
        pass

    def disconnected(self) -> None:
        return None


Look = asyncio.Future[HeldSubmission | None]


@dataclass(frozen=True)
class HeldLook:
    """A v2 submission's look at the held drawing, queued in order with the drawing messages."""

    seq: int
    answer: Look


class LiveGuesses:
    """A connection's live guesses: a one-slot mailbox for raw v1 `predict` frames, a queue of
    v2 drawing messages, and at most one request of this connection's at the model worker.

    There is no task here: a request goes to the predictor the moment the previous one is
    answered, and its answer is sent from the future's callback, straight from the model
    worker's batch. (A task per connection cost two task wake-ups per guess, a good part of
    the event loop's time per guess.) The game's model worker parses the frames, guesses and
    writes the replies (server/serving/inference.py): the event loop only moves bytes."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._latest: str | None = None
        # v2 drawing messages, and the submissions' looks at the drawing, in the order received.
        self._increments: deque[str | HeldLook] = deque()
        self._asked: asyncio.Future[Any] | None = None  # this connection's request in progress
        self._looking: asyncio.Task[None] | None = None
        self._progress: asyncio.Future[None] | None = None  # the reader waiting (`caught_up`)
        self._stopped = False

    def offer(self, frame: str) -> None:
        """A v1 `predict`: it replaces one not served yet."""
        if self._latest is not None:
            self.session.metrics.guesses_dropped.inc()
        self._latest = frame
        self._ask()

    def add(self, frame: str) -> None:
        """A v2 drawing message: queued behind those not served yet, all of which go to the
        worker together when the previous answer is out (so a connection that fell behind
        catches up in one request, answered with one guess)."""
        self._increments.append(frame)
        self._ask()

    def look(self, seq: int) -> Look:
        """The held drawing if in step at `seq`, once the messages received before are applied
        (and none after): what a v2 submission received now refers to."""
        look = HeldLook(seq, asyncio.get_running_loop().create_future())
        self._increments.append(look)
        self._ask()
        return look.answer

    @property
    def behind(self) -> bool:
        """Too many drawing messages wait: the reader stops reading this connection until they
        are answered (`caught_up`), so that none is ever dropped."""
        return len(self._increments) >= MAX_WAITING_INCREMENTS

    async def caught_up(self) -> None:
        while self.behind and not self._stopped:
            self._progress = asyncio.get_running_loop().create_future()
            await self._progress

    def _ask(self) -> None:
        """Send what waits to the model worker, unless this connection's previous request is
        still there (v2 messages first, in order; then the newest v1 guess)."""
        game = self.session.game
        asked: asyncio.Future[Any]
        while self._asked is None and self._looking is None and not self._stopped:
            last = ""  # the frame an error replies to
            try:
                if self._increments:
                    first = self._increments[0]
                    if isinstance(first, HeldLook):
                        self._increments.popleft()
                        self._looking = asyncio.create_task(self._look(first))
                        return
                    frames: list[str] = []
                    while self._increments and isinstance(self._increments[0], str):
                        frames.append(self._increments.popleft())  # type: ignore[arg-type]
                    last = frames[-1]
                    asked = game.answer_increments(self.session.key, frames)
                elif self._latest is not None:
                    last, self._latest = self._latest, None
                    asked = game.answer_live(last)
                else:
                    return
            except ProtocolError as refused:  # overloaded: lost (a v2 client is resynced next)
                self.session.refuse(refused)
                continue
            except Exception:
                log.exception("live guess failed")
                self._refuse_internal(last)
                continue
            self._asked = asked
            asked.add_done_callback(functools.partial(self._answered, last, time.perf_counter()))
            self._progressed()

    def _refuse_internal(self, frame: str) -> None:
        broke = "Something broke on our side; it is logged."
        self.session.refuse(ProtocolError("internal", broke, client_id(frame)))

    def _answered(self, last: str, started: float, asked: asyncio.Future[Any]) -> None:
        self._asked = None
        if asked.cancelled():  # stopped
            return
        failure = asked.exception()
        if failure is None:
            self.session.game.live_latency.observe(time.perf_counter() - started)
            replies = asked.result()
            for reply in [replies] if isinstance(replies, str) else replies:
                self.session.connection.send_text(reply)
        elif isinstance(failure, ProtocolError):
            self.session.refuse(failure)
        else:
            log.error("live guess failed", exc_info=failure)
            self._refuse_internal(last)
        self._ask()

    async def _look(self, look: HeldLook) -> None:
        try:
            drawing = await self.session.game.held_drawing(self.session.key, look.seq)
        except Exception as failure:
            look.answer.set_exception(failure)
        else:
            look.answer.set_result(drawing)
        finally:  # (cancelled: the connection is closing; the submission is not stored)
            if not look.answer.done():
                look.answer.set_result(None)
            self._looking = None
            self._progressed()
            self._ask()

    def _progressed(self) -> None:
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)

    async def stop(self) -> None:
        self._stopped = True
        self._progressed()
        for waiting in self._increments:  # their submissions end, answered `resync`
            if isinstance(waiting, HeldLook) and not waiting.answer.done():
                waiting.answer.set_result(None)
        if self._asked is not None:
            self._asked.cancel()  # (the batch skips it)
        if self._looking is not None:
            self._looking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._looking


class Submissions:
    """Submissions are served one at a time, in order, off the reader loop, so a slow commit
    never stops the connection from reading (and its live guesses from flowing)."""

    def __init__(self, session: Session, size: int) -> None:
        self.session = session
        self._queue: asyncio.Queue[tuple[Submit, Look | None] | None] = asyncio.Queue(size)
        self._task = asyncio.create_task(self._serve())

    def offer(self, message: Submit, look: Look | None) -> bool:
        """`look`: a v2 submission's look at the held drawing (LiveGuesses.look)."""
        try:
            self._queue.put_nowait((message, look))
        except asyncio.QueueFull:
            return False
        return True

    async def _serve(self) -> None:
        while (queued := await self._queue.get()) is not None:
            message, look = queued
            await self.session.answer(message, functools.partial(self.session.submit, look=look))
            # Not kept until the next submission: a connection's last drawing (~100 point
            # lists) would stay alive for the garbage collector to walk again and again.
            del queued, message, look

    async def stop(self) -> None:
        """Finish the submission being committed; drop the ones not started (never acknowledged)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        await self._task


class Explanations:
    """Explanations are served off the reader loop, one at a time, the newest only: asking again
    before the previous one is served replaces it (no reply), as for live guesses."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._latest: Explain | None = None
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._serve())

    def offer(self, message: Explain) -> None:
        self._latest = message
        self._ready.set()

    async def _serve(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            message, self._latest = self._latest, None
            if message is not None:
                await self.session.answer(message, self.session.explain)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Session:
    """One connection from `hello` to close, driven by its channel (wire.py): every message
    arrives through `received`, in order, and the end through `disconnected`.

    A message that needs no waiting (a live guess, a drawing message, anything refused) is
    handled right there, with no task. One that waits for storage (`hello`, a vote, a task…)
    starts the reader task, and until it has caught up the messages behind it queue, in order
    (with the connection not read while MAX_UNREAD wait, or while its live guesses are behind)."""

    def __init__(
        self, channel: Channel, game: Game, hub: Hub, limits: Limits, metrics: Metrics
    ) -> None:
        self.channel = channel
        self.game = game
        self.hub = hub
        self.limits = limits
        self.metrics = metrics
        self.connection = Connection(channel, metrics)
        self.buckets = limits.buckets()
        self.player_rates = player_rates(limits)
        self.predicts_received = metrics.messages.labels("predict")
        self.increments_received = metrics.messages.labels("increment")
        self.strikes = 0
        self.player: Player | None = None
        self.joined = False
        self.version = 1  # of the protocol, as said in `hello`
        self.key = next(_connection_keys)
        self.ended = asyncio.get_running_loop().create_future()  # set once cleaned up
        # Messages waiting for the reader, each with whether `handled_now` has seen it.
        self._unread: deque[tuple[str | bytes, bool]] = deque()
        self._reader: asyncio.Task[None] | None = None
        self._hello_overdue = False

    def start(self) -> None:
        self.hub.add(self.connection)
        self.live = LiveGuesses(self)
        self.submissions = Submissions(self, int(self.limits.submit_burst))
        self.explanations = Explanations(self)
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(self.limits.hello_seconds, self._hello_due)

    def received(self, message: str | bytes) -> None:
        if self._reader is not None:  # behind a message being served: in turn
            self._unread.append((message, False))
        elif not self.handled_now(message):
            self._unread.append((message, True))
        elif not self.live.behind:
            return
        self._read_later()

    def _read_later(self) -> None:
        if len(self._unread) >= MAX_UNREAD or self.live.behind:
            self.channel.pause_reading()
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while self.connection.close_code is None:
                if self.live.behind:
                    await self.live.caught_up()
                if not self._unread:
                    break
                message, checked = self._unread.popleft()
                if checked or not self.handled_now(message):
                    await self.handle(message)
        finally:
            self._reader = None
            self.channel.resume_reading()
            if self._hello_overdue:
                self._hello_due()

    def _hello_due(self) -> None:
        """`hello_seconds` after opening: closed unless joined (or its `hello` is being served)."""
        self._hello_overdue = not self.joined
        if self._hello_overdue and self._reader is None:
            wait = self.limits.hello_seconds
            self.connection.close(POLICY_VIOLATION, f"say hello within {wait:g} s")

    def disconnected(self) -> asyncio.Task[None]:
        code = self.channel.close_code
        if code is not None and self.connection.close_code is None:  # decided by the wire
            self.metrics.disconnects.labels(str(code)).inc()  # (a broken frame, a ping flood)
        self._ending = asyncio.create_task(self._end())
        return self._ending

    async def _end(self) -> None:
        try:
            self._hello_timer.cancel()
            self._unread.clear()
            self.hub.remove(self.connection)
            self.game.validation.disconnect(self.connection)
            await self.live.stop()
            if self._reader is not None:  # a message being served finishes (its reply is lost)
                await asyncio.gather(self._reader, return_exceptions=True)
            await self.explanations.stop()
            await self.submissions.stop()
            if self.version == 2:
                with contextlib.suppress(Exception):  # (the server may be stopping)
                    await self.game.forget_drawing(self.key)
        finally:
            self.ended.set_result(None)

    def refuse(self, refused: ProtocolError) -> None:
        self.metrics.errors.labels(refused.code).inc()
        self.connection.send(error(refused.code, refused.message, refused.id))

    def _limited(
        self, bucket: str, what: str, id: str | None = None, *, frame: str | bytes = b""
    ) -> bool:
        """Spend a token of this connection's; if there is none, reply `rate_limited` (and close
        persistent abusers)."""
        if self.buckets[bucket].take():
            self.strikes = 0
            return False
        self.strikes += 1
        if self.strikes > self.limits.max_strikes:
            self.connection.close(POLICY_VIOLATION, "rate limit ignored")
            return True
        self._refuse_rate_limited(self.buckets[bucket].wait_seconds(), what, id, frame)
        return True

    def _shared_limited(
        self, wait: float | None, what: str, id: str | None, *, frame: str | bytes = b""
    ) -> bool:
        """Reply `rate_limited` when a limit shared across connections (`wait` seconds until
        the next token, or None) is spent (shared_limits.py)."""
        if wait is None:
            return False
        self._refuse_rate_limited(wait, what, id, frame)
        return True

    def _player_limited(
        self, kind: str, what: str, id: str | None, *, frame: str | bytes = b""
    ) -> bool:
        assert self.player is not None
        wait = self.hub.shared_limits.player(kind, self.player.id, self.player_rates[kind])
        return self._shared_limited(wait, f"{what} from this player", id, frame=frame)

    def _refuse_rate_limited(
        self, wait: float, what: str, id: str | None, frame: str | bytes
    ) -> None:
        """The reply echoes the request's `id` (read from the raw `frame` unless given: only
        when refused, as reading it costs) and says how long to wait, rounded up to a tenth of
        a second."""
        wait = max(0.1, math.ceil(wait * 10) / 10)
        if id is None and isinstance(frame, str):
            id = client_id(frame)
        self.refuse(
            ProtocolError("rate_limited", f"Too many {what}; try again in {wait:.1f} s.", id)
        )

    @property
    def address(self) -> str:
        return self.channel.address

    def handled_now(self, frame: str | bytes) -> bool:
        """Handle `frame` if that needs no waiting (True); else `handle` serves it."""
        if self._limited("message", "messages", frame=frame):
            return True
        if self.player is not None and isinstance(frame, str) and PREDICT.match(frame):
            # A live guess is parsed only if it is still the latest when its turn comes, and then
            # by the model worker process, not here: this loop's time is the scarce resource.
            self.predicts_received.inc()
            if not self._limited(
                "predict", "live guesses", frame=frame
            ) and not self._player_limited("predict", "live guesses", None, frame=frame):
                self.live.offer(frame)
            return True
        if self.version == 2 and self.player is not None and INCREMENT.match(frame_text(frame)):
            # As a live guess: to the model worker, which holds the drawing and parses it.
            self.increments_received.inc()
            self._increment(str(frame), None)
            return True
        return False

    async def handle(self, frame: str | bytes) -> None:
        """A message `handled_now` left: parsed here and served, waiting as it needs."""
        try:
            message = parse(frame)
        except ProtocolError as refused:
            self.metrics.messages.labels("invalid").inc()
            self.refuse(refused)
            return
        if isinstance(message, INCREMENTS):
            self.increments_received.inc()
            await self.answer(message, self.increment)
            return
        self.metrics.messages.labels(message.type).inc()
        await self.answer(message, self.dispatch)

    async def increment(self, message: Increment) -> None:
        """A v2 drawing message not in our client's spelling (`type` not first): re-encoded."""
        if not self.joined:
            raise ProtocolError("hello_first", "Send `hello` first.", message.id)
        if self.player is None:
            raise ProtocolError("spectator", "Spectators can watch but not play.", message.id)
        if self.version != 2:
            raise ProtocolError(
                "bad_message",
                "Drawing messages are protocol version 2: say `hello` with `v` 2.",
                message.id,
            )
        self._increment(encode_increment(message), message.id)

    def _increment(self, frame: str, id: str | None) -> None:
        """A v2 drawing message costs a live-guess token (a client sends ~10 a second); one
        refused here is lost, and the client's next one is answered `resync`."""
        if not self._limited(
            "predict", "drawing messages", id, frame=frame
        ) and not self._player_limited("predict", "drawing messages", id, frame=frame):
            self.live.add(frame)

    async def answer(self, message: M, handler: Callable[[M], Awaitable[None]]) -> None:
        """Run `handler`; whatever it refuses (or breaks on) becomes an `error` reply."""
        try:
            await handler(message)
        except ProtocolError as refused:
            refused.id = refused.id or message.id
            self.refuse(refused)
        except Exception:
            log.exception("message failed", extra={"type": type(message).__name__})
            self.refuse(
                ProtocolError("internal", "Something broke on our side; it is logged.", message.id)
            )

    async def dispatch(self, message: ClientMessage) -> None:
        if isinstance(message, Hello):
            await self.hello(message)
            return
        if not self.joined:
            raise ProtocolError("hello_first", "Send `hello` first.", message.id)
        if isinstance(message, Ping):
            self.connection.send({"type": "pong", "id": message.id})
            return
        if isinstance(message, Leaderboard):
            boards = self.game.validation.boards
            player_id = self.player.id if self.player else None
            boards.subscribe(self.connection, message.board, player_id)
            await boards.refresh()
            snapshot = boards.snapshot(message.board, player_id)
            self.connection.send({"type": "leaderboard", "id": message.id, **snapshot})
            return
        if self.player is None:
            raise ProtocolError("spectator", "Spectators can watch but not play.", message.id)
        kind = {
            Predict: "predict",
            Submit: "submit",
            Explain: "explain",
            Task: "task",
            Vote: "vote",
        }.get(type(message))
        if kind is not None and self._player_limited(kind, f"{kind} messages", message.id):
            return
        if isinstance(message, Predict):
            if not self._limited("predict", "live guesses", message.id):
                drawing = message.drawing.model_dump()
                self.live.offer(encode({"type": "predict", "id": message.id, "drawing": drawing}))
        elif isinstance(message, Submit):
            if self._limited("submit", "submissions", message.id):
                return
            look = None
            if message.drawing is None and message.seq is not None and self.version == 2:
                look = self.live.look(message.seq)  # the drawing as of now, not as of its turn
            if not self.submissions.offer(message, look):
                raise ProtocolError("rate_limited", "Too many submissions waiting; slow down.")
        elif isinstance(message, Explain):
            self.explanations.offer(message)
        elif isinstance(message, Task):
            task = await self.game.validation.task(self.player)
            reply = {"type": "task", **task} if task else {"type": "no_task"}
            self.connection.send({**reply, "id": message.id})
        elif isinstance(message, Vote):
            voted: dict[str, Any] = {"type": "voted", "id": message.id, "task_id": message.task_id}
            try:
                voted.update(
                    await self.game.validation.vote(self.player, message.task_id, message.answer)
                )
            except ProtocolError as refused:
                # The same vote again (its acknowledgement was lost): acknowledged again.
                if refused.code != "already_voted" or not await self._voted(message):
                    raise
            self.connection.send(voted)

    async def _voted(self, message: Vote) -> bool:
        """Whether the player's stored answer to the task is this vote's: a vote is idempotent
        on its task (task ids are random and given to one player) and answer."""
        assert self.player is not None
        given = await self.game.repo.answer_given(self.player.id, message.task_id)
        try:
            return given is not None and given == parse_answer(message.answer)
        except BadAnswer:
            return False

    async def hello(self, message: Hello) -> None:
        if self.joined:
            raise ProtocolError("already_joined", "You already said hello.", message.id)
        if message.v not in PROTOCOL_VERSIONS:
            raise ProtocolError(
                "unsupported_version",
                f"This server speaks protocol versions {PROTOCOL_VERSIONS}; reload the page.",
                message.id,
            )
        chosen = [message.name is not None, message.token is not None, message.spectator]
        if sum(chosen) != 1:
            raise ProtocolError(
                "bad_message",
                "hello needs exactly one of `name` (join), `token` (resume) or `spectator`.",
                message.id,
            )
        token: str | None = None
        limits = self.hub.shared_limits
        if message.name is not None:
            wait = limits.join(self.address, self.game.validation.settings)
            if self._shared_limited(wait, "new accounts from here", message.id):
                return
            self.player, token = await self.game.join(message.name)
        elif message.token is not None:
            self.player = await self.game.resume(message.token)
        elif self._shared_limited(limits.spectator(self.address), "spectators here", message.id):
            return
        self.joined = True
        self.version = message.v
        current = await self.game.current_round()
        welcome: dict[str, Any] = {
            "type": "welcome",
            "v": self.version,
            "id": message.id,
            "player": {"id": self.player.id, "name": self.player.name} if self.player else None,
            "round": current.public() if current else None,
            "model_version": self.game.serving_version,
        }
        if token is not None:
            welcome["token"] = token
        if self.player is not None:
            # Scores and the outcomes of their claims, so a returning drawer misses nothing.
            validation = self.game.validation
            validation.connect(self.player.id, self.connection)
            await validation.boards.refresh()
            welcome["stats"] = validation.boards.stats(self.player.id)
            welcome["claims"] = await validation.history(self.player.id)
            welcome.update(await validation.progress(self.player.id))  # streak, warm-up meter
            if current is not None:
                welcome["challenges"] = await self.game.challenges.of_round(
                    current.id, self.player.id
                )
        how = "spectates" if self.player is None else "joined" if token else "resumed"
        log.info(how, extra={"player": self.player.id if self.player else None})
        self.connection.send(welcome)

    async def submit(self, message: Submit, look: Look | None = None) -> None:
        assert self.player is not None
        drawing: Drawing | HeldSubmission | None = message.drawing
        if drawing is None:
            if look is None:
                what = "`drawing`" if self.version != 2 else "`drawing` or `seq`"
                raise ProtocolError("bad_message", f"submit needs {what}.", message.id)
            drawing = await look
            if drawing is None:  # not in step: the client submits the whole drawing instead
                self.connection.send({"type": "resync", "id": message.id, "seq": message.seq})
                return
            if drawing.prediction is None:
                raise ProtocolError("empty_drawing", "The drawing is empty: draw a digit first.")
        result = await self.game.submit(self.player, drawing, message.label, message.id)
        self.connection.send(
            {
                "type": "submitted",
                "id": message.id,
                "attempt_id": result.attempt_id,
                "label": result.label,
                "prediction": {"label": result.guess.label, "probs": result.guess.probs},
                "model_version": result.guess.model_version,
                "outcome": result.outcome,
            }
        )

    async def explain(self, message: Explain) -> None:
        seen = await self.game.explain(message.drawing)
        self.connection.send(
            {
                "type": "explanation",
                "id": message.id,
                "label": seen.label,
                "probs": rounded(seen.probs),
                "model_version": seen.model_version,
                "input": base64.b64encode(to_bytes(seen.image)).decode(),
                "heatmap": base64.b64encode(to_bytes(seen.heatmap)).decode(),
            }
        )
