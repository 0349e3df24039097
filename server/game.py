"""The game as a service: players, live guesses, submissions and rounds, with no websocket in
sight (the session feeds it requests; the admin API calls its round operations).

Errors a player can act on are raised as `ProtocolError` with the protocol's error code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from game_rules.rounds import RoundState, accepts_submissions, transition
from game_rules.settings import SettingsError
from server.config import DataLayout
from server.hub import Hub
from server.inference import ModelError, Overloaded, Predictor
from server.metrics import Metrics
from server.models import latest_model, list_models, may_serve
from server.players import NameInvalid, clean_name, hash_token, name_key, new_token
from server.preprocess import MAX_PNG_BYTES, DrawingError, png_to_image, strokes_to_image
from server.protocol import Drawing, PngDrawing, ProtocolError, rounded
from server.storage import (
    NameTaken,
    NewAttempt,
    Player,
    Repository,
    Round,
    RoundChanged,
    RoundNotOpen,
)
from server.validation import Validation

log = logging.getLogger(__name__)


INLINE_POINTS = 500  # drawings up to this many points render on the event loop (see `render`)


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
        return "model_won" if self.guess.label == self.label else "pending"


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # [28, 28] float32: what the model sees
    png: bytes | None  # the decoded upload, when the drawing was a PNG


def _decode_png(text: str) -> bytes:
    if len(text) > (MAX_PNG_BYTES * 4) // 3 + 4:
        raise ProtocolError("drawing_too_large", "The PNG is over 256 KiB.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_drawing", "`png` is not valid base64.") from None


class Game:
    def __init__(self, layout: DataLayout, repo: Repository, hub: Hub, metrics: Metrics) -> None:
        self.layout = layout
        self.repo = repo
        self.hub = hub
        self.metrics = metrics
        self.predictor: Predictor | None = None
        self.round: Round | None = None  # the open round, else the newest one
        self._rounds_lock = asyncio.Lock()
        self.validation = Validation(layout, repo, lambda: self.round.id if self.round else None)
        # Decoding a PNG costs about a millisecond of CPU, much of it outside the GIL (zlib,
        # Pillow). Threads do it (and render huge stroke drawings) so the event loop stays free
        # for I/O, replies and commits even when they fall behind; submissions have their own
        # thread so they never wait behind a crowd of live guesses. Usual strokes render inline.
        self._renderers = {
            "live": ThreadPoolExecutor(max_workers=2, thread_name_prefix="render-live"),
            "submit": ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-submit"),
        }

    # Lifecycle

    async def start(self) -> None:
        rounds = await self.repo.rounds()
        if not rounds:
            card = latest_model(self.layout)
            if card is None:
                raise StartupError(
                    f"No model in {self.layout.models_dir}: run `fool-the-model ensure-model` "
                    "(or `make model`) first."
                )
            rounds = [await self.repo.create_round(card.version, open_now=True)]
            log.info("opened round 1", extra={"model_version": card.version})
        self.round = next((r for r in rounds if r.state is RoundState.OPEN), rounds[0])
        path = self.layout.model_path(self.round.model_version)
        if not path.exists():
            raise StartupError(
                f"Round {self.round.number} is bound to model {self.round.model_version}, "
                f"but {path} is missing: restore it, or run `fool-the-model ensure-model`."
            )
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

    @property
    def serving_version(self) -> str | None:
        """The model version that answers predictions."""
        return self.predictor.version if self.predictor else None

    async def stop(self) -> None:
        await self.validation.stop()
        if self.predictor is not None:
            await self.predictor.close()
        for renderer in self._renderers.values():
            renderer.shutdown(wait=False, cancel_futures=True)

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

    async def render(self, drawing: Drawing, kind: str) -> Rendered:
        """The drawing as the model's 28×28 input; `kind` is "live" or "submit"."""
        loop = asyncio.get_running_loop()
        renderer = self._renderers[kind]
        try:
            if isinstance(drawing, PngDrawing):
                png = _decode_png(drawing.png)
                return Rendered(await loop.run_in_executor(renderer, png_to_image, png), png)
            # A drawing of a few hundred points renders in a fraction of a millisecond, less than
            # handing it to a thread and back costs. A huge one (up to 2,000 points, several ms)
            # goes to a thread, which gives the GIL back to the event loop every switch interval.
            if sum(len(stroke) for stroke in drawing.strokes) <= INLINE_POINTS:
                return Rendered(strokes_to_image(drawing.strokes), None)
            image = await loop.run_in_executor(renderer, strokes_to_image, drawing.strokes)
            return Rendered(image, None)
        except DrawingError as error:
            raise ProtocolError(error.code, str(error)) from None

    async def guess(self, drawing: Drawing, kind: str = "live") -> tuple[Guess, Rendered]:
        assert self.predictor is not None, "Game.start() first"
        started = time.perf_counter()
        rendered = await self.render(drawing, kind)
        try:
            prediction = await self.predictor.predict(rendered.image)
        except Overloaded:
            raise ProtocolError("overloaded", "The model is busy; try again in a moment.") from None
        self.metrics.prediction_seconds.labels(kind).observe(time.perf_counter() - started)
        guess = Guess(
            label=int(prediction.label),
            probs=rounded(list(prediction.probs)),
            model_version=str(prediction.model_version),
        )
        return guess, rendered

    async def submit(self, player: Player, drawing: Drawing, label: int) -> Submitted:
        """Re-predict the drawing and commit it; return only once the row is committed."""
        if not 0 <= label <= 9:
            raise ProtocolError("bad_label", "`label` is a digit from 0 to 9.")
        current = self.round
        if current is None or not accepts_submissions(current.state):
            raise ProtocolError(
                "no_open_round", "No round is open right now; wait for the next one."
            )
        if await self.validation.is_banned(player.id):
            raise ProtocolError("banned", "This player is banned; submissions are refused.")
        guess, rendered = await self.guess(drawing, kind="submit")
        attempt = NewAttempt(
            player_id=player.id,
            round_id=current.id,
            strokes_json=(
                None
                if isinstance(drawing, PngDrawing)
                else json.dumps(drawing.strokes, separators=(",", ":"))
            ),
            png=rendered.png,
            image=np.ascontiguousarray(rendered.image, dtype="<f4").tobytes(),
            label=label,
            predicted=guess.label,
            probs=guess.probs,
            model_version=guess.model_version,
        )
        started = time.perf_counter()
        try:
            attempt_id = await self.repo.add_attempt(attempt)
        except RoundNotOpen:
            raise ProtocolError(
                "no_open_round", "The round closed; wait for the next one."
            ) from None
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
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
            if not self.layout.model_path(model_version).exists():
                raise RoundError(f"No model {model_version!r} in {self.layout.models_dir}.")
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
        self.hub.broadcast({"type": "round", "round": moved.public()})
        self.validation.boards.changed()  # the "round" board may now be another round's
        return moved

    async def _serve_model(self, version: str) -> None:
        """Swap the predictor to `version`; requests in flight finish on the old model."""
        assert self.predictor is not None
        if self.serving_version == version:
            return
        path = self.layout.model_path(version)
        if not path.exists():
            raise RoundError(f"The round's model {path} is missing.")
        try:
            await self.predictor.swap(path, version)
        except ModelError as error:
            raise RoundError(f"Cannot serve {path}: {error}") from None
