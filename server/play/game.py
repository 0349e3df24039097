"""The game as a service: players, live guesses, submissions and rounds, with no websocket in
sight (the session feeds it requests; the admin API calls its round operations).

Errors a player can act on are raised as `ProtocolError` with the protocol's error code.

Several server processes may share one game (one database). A round change is published on the
broker (server/realtime/pubsub.py); every process, the one that made it included, then reloads the
current round from the database, serves that round's model and tells its own clients
(`_follow_loop`). A periodic check (`_check_loop`) catches what a lost message would have said.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from game_rules.consensus import submission_outcome
from game_rules.names import NameInvalid, clean_name, name_key
from game_rules.rounds import RoundState, accepts_submissions, transition
from game_rules.settings import SettingsError
from server.config import DataLayout
from server.play.challenges import Challenges
from server.play.players import hash_token, new_token
from server.prometheus import Metrics
from server.realtime.hub import Hub
from server.realtime.protocol import (
    Drawing,
    PngDrawing,
    ProtocolError,
    StrokesDrawing,
    client_id,
    rounded,
)
from server.realtime.pubsub import Broker
from server.serving.inference import (
    Explanation,
    HeldSubmission,
    ModelError,
    Overloaded,
    Prediction,
    Predictor,
)
from server.serving.model_files import latest_model, list_models, may_serve
from server.serving.model_store import ModelStore, RegistryError
from server.serving.preprocess import DrawingError, png_from_base64
from server.storage import (
    NameTaken,
    NewAttempt,
    Player,
    Repository,
    Round,
    RoundChanged,
    RoundNotOpen,
)
from server.validation.service import Validation

log = logging.getLogger(__name__)


KINDS = ("live", "submit")  # of guesses: live while drawing, or a submission's


CHECK_SECONDS = 3.0  # how often a process checks the database for what a lost message said


class StartupError(RuntimeError):
    """The server cannot start; the message says what to run."""


class RoundError(ValueError):
    """An admin round operation that cannot happen; the message says why."""


@dataclass(frozen=True)
class Guess:
    label: int
    probs: list[float]
    model_version: str


@dataclass(frozen=True)
class Submitted:
    attempt_id: int
    label: int
    guess: Guess

    @property
    def outcome(self) -> str:
        return submission_outcome(self.label, self.guess.label)


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray | None  # [28, 28] float32: what the model saw (for submissions)
    png: bytes | None  # the decoded upload, when the drawing was a PNG


def _fingerprint(label: int, png: str | None, strokes_json: bytes | None) -> str:
    """A digest of what a submission asks, so that a reused `id` with another drawing or label
    is a new submission, not a resend: of its `png`, or of its strokes as stored (msgspec's JSON).

    The digest is of `json.dumps([label, fields], separators=(",", ":"))`, `fields` as
    `model_dump()` gives them, so the digests stored before stay valid. For strokes, msgspec's
    JSON is that same text (at a tenth of the cost: this runs on the event loop), except that
    json.dumps writes numbers below 1e-4 with an exponent: a drawing with any such number, or
    any exponent at all, is written by json.dumps instead.
    """
    fields: dict[str, object]
    if png is not None:
        fields = {"png": png}
    else:
        assert strokes_json is not None
        if b"e" not in strokes_json and b"0.0000" not in strokes_json:
            return hashlib.sha256(b'[%d,{"strokes":%s}]' % (label, strokes_json)).hexdigest()
        fields = {"strokes": msgspec.json.decode(strokes_json)}
    asked = json.dumps([label, fields], separators=(",", ":"))
    return hashlib.sha256(asked.encode()).hexdigest()


def _guess(prediction: Prediction) -> Guess:
    return Guess(
        label=prediction.label,
        probs=rounded(prediction.probs),
        model_version=prediction.model_version,
    )


class Game:
    def __init__(
        self, layout: DataLayout, repo: Repository, hub: Hub, metrics: Metrics, broker: Broker
    ) -> None:
        self.layout = layout
        self.repo = repo
        self.hub = hub
        self.metrics = metrics
        self.broker = broker
        self.predictor: Predictor | None = None
        self.round: Round | None = None  # the open round, else the newest one
        self.follow_error: str | None = None  # why this process cannot follow the current round
        self._rounds_lock = asyncio.Lock()
        self.validation = Validation(
            layout, repo, lambda: self.round.id if self.round else None, broker
        )
        self.challenges = Challenges(repo, lambda: self.validation.settings, broker, hub)
        # What the follower task has to do: rounds to announce (None: the current one), or a
        # full resync after a gap.
        self._heard_rounds: list[dict[str, object] | None] = []
        self._resync = False
        self._wake_follower = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        broker.subscribe("round", self._heard_round)
        broker.on_resync(self._heard_gap)
        # The round's counts (attempts, verified fools) move with every submission and every
        # settled claim: clients get the round again, coalesced like the leaderboards.
        self._counts_moved = asyncio.Event()
        self._round_messages = 0  # round changes broadcast so far (a counts push checks it)
        broker.subscribe("attempts", lambda payload: self._counts_moved.set())
        broker.subscribe("scores", lambda payload: self._counts_moved.set())
        self._latency = {kind: metrics.prediction_seconds.labels(kind) for kind in KINDS}
        # Observed by the sessions, which time their live guesses anyway (web/websocket.py).
        self.live_latency = self._latency["live"]

    # Lifecycle

    async def start(self) -> None:
        if changed := await self.repo.rekey_players(name_key):  # after a change of the rule
            log.info("name keys recomputed", extra={"players": changed})
        self.round = await self.repo.current_round()
        if self.round is None:
            card = latest_model(self.layout)
            if card is None:
                raise StartupError(
                    f"No model in {self.layout.models_dir}: run `fool-the-model ensure-model` "
                    "(or `make model`) first."
                )
            # Another server process starting at the same time may open it first.
            if await self.repo.open_first_round(card.version) is not None:
                log.info("opened round 1", extra={"model_version": card.version})
            self.round = await self.repo.current_round()
            assert self.round is not None
        try:
            path = await self._model_file(self.round.model_version)
        except RoundError as error:
            raise StartupError(f"Round {self.round.number}: {error}") from None
        try:
            await self.validation.start()
        except SettingsError as error:
            raise StartupError(f"Bad game rules: {error}") from None
        # One ONNX thread: the model is small, and intra-op threads that wait on each other stall
        # badly when the event loop and other processes share these two cores.
        self.predictor = Predictor(path, self.round.model_version, threads=1)
        try:
            await self.predictor.start()
        except ModelError as error:
            await self.validation.stop()
            raise StartupError(f"Cannot serve {path}: {error}") from None
        self._tasks = [
            asyncio.create_task(self._follow_loop()),
            asyncio.create_task(self._check_loop()),
            asyncio.create_task(self._counts_loop()),
            asyncio.create_task(self.validation.refresh_gold(self.predictor.predict)),
        ]

    @property
    def serving_version(self) -> str | None:
        """The model version that answers predictions."""
        return self.predictor.version if self.predictor else None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.validation.stop()
        if self.predictor is not None:
            await self.predictor.close()

    async def current_round(self) -> Round | None:
        """The current round with fresh counts."""
        return await self.repo.round(self.round.id) if self.round else None

    # Players

    async def join(self, raw_name: str) -> tuple[Player, str]:
        """A new player and their secret token (shown once, stored only hashed)."""
        try:
            name = clean_name(raw_name)
        except NameInvalid as error:
            raise ProtocolError("name_invalid", str(error)) from None
        token = new_token()
        try:
            player = await self.repo.create_player(name, name_key(name), hash_token(token))
        except NameTaken:
            raise ProtocolError(
                "name_taken", f"The name {name!r} is taken; pick another."
            ) from None
        return player, token

    async def resume(self, token: str) -> Player:
        player = await self.repo.player_by_token_hash(hash_token(token))
        if player is None:
            raise ProtocolError(
                "unknown_token", "No player has this token; join again with a name."
            )
        return player

    # Drawings

    def answer_live(self, frame: str) -> asyncio.Future[str]:
        """The `prediction` reply to a raw `predict` frame (a future: see `answer_increments`).

        The predictor's worker process parses the frame, draws it, guesses and writes the reply,
        so under load the event loop only moves bytes (see server/serving/inference.py). A frame it
        refuses fails with `ProtocolError`, as if it had been parsed here.
        """
        assert self.predictor is not None, "Game.start() first"
        try:
            answer = self.predictor.answer_frame(frame)
        except Overloaded:
            raise ProtocolError(
                "overloaded", "The model is busy; try again in a moment.", client_id(frame)
            ) from None
        return answer

    def answer_increments(self, key: int, frames: list[str]) -> asyncio.Future[list[str]]:
        """The replies to a connection's v2 drawing messages (protocol v2), applied in order to
        the drawing the model worker holds for it (a `prediction` if one asked for a guess).

        A future, answered straight from the model worker's batch: the session sends the replies
        from its callback, with no task of its own to wake (see server/web/websocket.py).
        `ProtocolError` `overloaded` (at once) if the model's queue is full: the messages are
        lost, and the connection's next one is a gap, answered `resync`."""
        assert self.predictor is not None, "Game.start() first"
        try:
            answer = self.predictor.answer_increments(key, frames)
        except Overloaded:
            raise ProtocolError(
                "overloaded", "The model is busy; try again in a moment.", client_id(frames[-1])
            ) from None
        return answer

    async def held_drawing(self, key: int, seq: int) -> HeldSubmission | None:
        """The drawing held for connection `key`, guessed, if it is in step at `seq` (a v2
        submission)."""
        assert self.predictor is not None, "Game.start() first"
        started = time.perf_counter()
        try:
            held = await self.predictor.held_submission(key, seq)
        except DrawingError as error:
            raise ProtocolError(error.code, str(error)) from None
        except Overloaded:
            raise ProtocolError("overloaded", "The model is busy; try again in a moment.") from None
        if held is not None and held.prediction is not None:
            self._latency["submit"].observe(time.perf_counter() - started)
        return held

    async def forget_drawing(self, key: int) -> None:
        """Free the drawing held for a closed connection."""
        if self.predictor is not None:
            await self.predictor.forget(key)

    async def guess(self, drawing: Drawing, kind: str = "live") -> tuple[Guess, Rendered]:
        """The model's guess for a drawing; `kind` is "live" or "submit" (which also gets the
        28×28 the model saw). The predictor's worker process decodes and draws the drawing."""
        assert self.predictor is not None, "Game.start() first"
        started = time.perf_counter()
        want_image = kind == "submit"
        png = None
        try:
            if isinstance(drawing, PngDrawing):
                png = png_from_base64(drawing.png)
                prediction = await self.predictor.predict_png(png, want_image=want_image)
            else:
                prediction = await self.predictor.predict_strokes(
                    drawing.strokes, want_image=want_image
                )
        except DrawingError as error:
            raise ProtocolError(error.code, str(error)) from None
        except Overloaded:
            raise ProtocolError("overloaded", "The model is busy; try again in a moment.") from None
        self._latency[kind].observe(time.perf_counter() - started)
        return _guess(prediction), Rendered(prediction.image, png)

    async def explain(self, drawing: Drawing) -> Explanation:
        """Where the model looks in a drawing, and the 28×28 it sees (serving/saliency.py)."""
        assert self.predictor is not None, "Game.start() first"
        try:
            if isinstance(drawing, PngDrawing):
                return await self.predictor.explain("png", png_from_base64(drawing.png))
            return await self.predictor.explain("strokes", drawing.strokes)
        except DrawingError as error:
            raise ProtocolError(error.code, str(error)) from None
        except Overloaded:
            raise ProtocolError("overloaded", "The model is busy; try again in a moment.") from None

    async def submit(
        self,
        player: Player,
        drawing: Drawing | HeldSubmission,
        label: int,
        request: str | None = None,
    ) -> Submitted:
        """Re-predict the drawing and commit it; return only once the row is committed. A v2
        submission of the held drawing (`held_drawing`) comes guessed already.

        Idempotent on `request` (the client's `id`): the same submission sent again, even after
        a server restart, gets the original's acknowledgement and stores nothing (a client
        resends what was never acknowledged, which may have been committed)."""
        if not 0 <= label <= 9:
            raise ProtocolError("bad_label", "`label` is a digit from 0 to 9.")
        png = drawing.png if isinstance(drawing, PngDrawing) else None
        strokes_json = None
        if isinstance(drawing, HeldSubmission):
            strokes_json = drawing.strokes_json
        elif isinstance(drawing, StrokesDrawing):
            strokes_json = msgspec.json.encode(drawing.strokes)
        fingerprint = _fingerprint(label, png, strokes_json)
        submitter = await self.repo.submitter(player.id, request, fingerprint)
        if (stored := submitter.stored) is not None:
            guess = Guess(stored.predicted, stored.probs, stored.model_version)
            return Submitted(stored.attempt_id, stored.label, guess)
        current = self.round
        if current is None or not accepts_submissions(current.state):
            raise ProtocolError(
                "no_open_round", "No round is open right now; wait for the next one."
            )
        if submitter.banned:
            raise ProtocolError("banned", "This player is banned; submissions are refused.")
        if isinstance(drawing, HeldSubmission):
            assert drawing.prediction is not None, "an empty drawing is refused before"
            guess, rendered = _guess(drawing.prediction), Rendered(drawing.prediction.image, None)
        else:
            guess, rendered = await self.guess(drawing, kind="submit")
        assert rendered.image is not None
        attempt = NewAttempt(
            player_id=player.id,
            round_id=current.id,
            strokes_json=None if strokes_json is None else strokes_json.decode(),
            png=rendered.png,
            image=np.ascontiguousarray(rendered.image, dtype="<f4").tobytes(),
            label=label,
            predicted=guess.label,
            probs=guess.probs,
            model_version=guess.model_version,
            request=request,
            fingerprint=fingerprint,
        )
        started = time.perf_counter()
        try:
            attempt_id = await self.repo.add_attempt(attempt)
        except RoundNotOpen:
            raise ProtocolError(
                "no_open_round", "The round closed; wait for the next one."
            ) from None
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.broker.publish("attempts", {})
        result = Submitted(attempt_id, label, guess)
        self.metrics.submissions.labels(result.outcome).inc()
        return result

    # Rounds (admin)

    async def create_round(self, model_version: str | None, open_now: bool) -> Round:
        async with self._rounds_lock:
            if model_version is None:
                card = latest_model(self.layout)
                if card is None:
                    raise RoundError("There is no model; run `fool-the-model ensure-model`.")
                model_version = card.version
            await self._model_file(model_version)  # here, or fetched from the registry
            card = next((c for c in list_models(self.layout) if c.version == model_version), None)
            if card is not None and not may_serve(card):
                raise RoundError(f"{model_version} failed the gate and may not serve.")
            created = await self.repo.create_round(model_version)
        return await self.move_round(created.id, RoundState.OPEN) if open_now else created

    async def move_round(self, round_id: int, target: RoundState) -> Round:
        """Move a round along the state machine; opening one moves the open one to closing."""
        async with self._rounds_lock:
            found = await self.repo.round(round_id)
            if found is None:
                raise LookupError(f"There is no round {round_id}.")
            try:
                transition(found.state, target)
            except ValueError as error:
                raise RoundError(str(error)) from None
            serving = self.serving_version
            if target is RoundState.OPEN:
                await self._serve_model(found.model_version)
            try:
                moved = await self.repo.move_round(round_id, found.state, target)
            except RoundChanged as error:
                if serving is not None:
                    await self._serve_model(serving)
                raise RoundError(str(error)) from None
            if target is RoundState.OPEN or (self.round is not None and self.round.id == moved.id):
                self.round = moved
        log.info("round moved", extra={"round": moved.number, "state": str(moved.state)})
        self.broker.publish("round", {"round": moved.public()})  # to every process, this one too
        return moved

    async def _serve_model(self, version: str) -> None:
        """Swap the predictor to `version`; requests in flight finish on the old model."""
        assert self.predictor is not None
        if self.serving_version == version:
            return
        path = await self._model_file(version)
        try:
            await self.predictor.swap(path, version)
        except ModelError as error:
            raise RoundError(f"Cannot serve {path}: {error}") from None
        # Hard gold is what *this* model misreads: read the gold again with it.
        self._tasks.append(
            asyncio.create_task(self.validation.refresh_gold(self.predictor.predict))
        )

    async def _model_file(self, version: str) -> Path:
        """DATA/models/{version}.onnx, fetched from the registry if another machine made it."""
        path = self.layout.model_path(version)
        if path.exists():
            return path
        try:
            return await asyncio.to_thread(ModelStore(self.layout).fetch_model_file, version)
        except RegistryError as error:
            where = self.layout.models_dir
            raise RoundError(f"model {version}, not in {where} nor fetchable: {error}") from None

    # Following the round across server processes

    def _heard_round(self, payload: dict[str, object]) -> None:
        """`{"round": <the round moved>}`; any other payload announces the current round."""
        moved = payload.get("round")
        self._heard_rounds.append(moved if isinstance(moved, dict) else None)
        self._wake_follower.set()

    def _heard_gap(self) -> None:
        self._resync = True
        self._wake_follower.set()

    async def follow_round(self) -> Round | None:
        """Make this process serve the database's current round and its model."""
        async with self._rounds_lock:
            current = await self.repo.current_round()
            if current is None:
                return None
            try:
                await self._serve_model(current.model_version)
            except RoundError as error:
                self.follow_error = f"Round {current.number} needs {error}"
                raise
            self.follow_error = None
            self.round = current
            return current

    async def _follow_loop(self) -> None:
        """Reload the round, then tell this process's clients what they missed: the rounds
        announced, or after a gap the current round and fresh leaderboards."""
        while True:
            await self._wake_follower.wait()
            self._wake_follower.clear()
            announced, self._heard_rounds = self._heard_rounds, []
            resync, self._resync = self._resync, False
            try:
                current = await self.follow_round()
            except Exception as error:
                # Clients keep the round this process still serves until following works
                # again (the check retries); then they get the current round and boards.
                self._resync = True
                if isinstance(error, RoundError):
                    log.error("cannot follow the current round", extra={"error": str(error)})
                else:
                    log.exception("cannot follow the current round")
                continue
            if resync:
                announced.append(None)
            sent: list[dict[str, object]] = []
            for moved in announced:
                if moved is None and current is not None:
                    moved = current.public()
                if moved is not None and moved not in sent:
                    self._round_messages += 1  # a counts push under way is stale now
                    self.hub.broadcast({"type": "round", "round": moved})
                    sent.append(moved)
            self.validation.boards.changed()  # the "round" board may now be another round's

    async def _counts_loop(self) -> None:
        """Push the current round with its fresh counts after they moved: at most one push per
        `leaderboard.push_interval_seconds`, always the latest numbers."""
        while True:
            await self._counts_moved.wait()
            self._counts_moved.clear()
            sent = self._round_messages  # before the read: a change meanwhile makes it stale
            try:
                current = await self.current_round()
            except Exception as error:
                log.warning("reading the round's counts failed", extra={"error": str(error)})
            else:
                if current is not None:
                    await self._push_counts(current, sent)
            await asyncio.sleep(self.validation.settings.leaderboard.push_interval_seconds)

    async def _push_counts(self, current: Round, sent: int) -> None:
        """The round with its counts to everyone, in turns (Hub.push); a round change broadcast
        since the `sent`th makes the rest of it stale."""
        await self.hub.push(
            {"type": "round", "round": current.public()},
            current=lambda: self._round_messages == sent,
        )

    async def _check_loop(self) -> None:
        """Every few seconds, act on what a lost message would have said."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                current = await self.repo.current_round()
                here = self.round
                if current is not None and (
                    here is None
                    or (current.id, current.state) != (here.id, here.state)
                    or current.model_version != self.serving_version
                ):
                    self._heard_round({"round": current.public()})
                elif self._resync:  # a resync that failed: try again
                    self._wake_follower.set()
                await self.validation.boards.catch_up()
            except Exception as error:
                log.warning("round and score check failed", extra={"error": str(error)})
