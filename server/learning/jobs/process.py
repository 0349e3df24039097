"""Run one training job in a separate process, from asyncio, without ever crashing the server.

    trainer = TrainerProcess(job, job_file=layout.root / "training" / "job.json")
    outcome = await trainer.run(on_progress=relay_to_admins)   # cancel(): from anywhere
    if outcome.status == "passed": swap to outcome.result.version

The child is `python -m server.training.worker_main --exit-with-stdin JOB.json`: torch lives
there and only there; it exits if our end of its stdin closes (we died).
Its CPU threads are capped by the job (default 1, so serving keeps a core). It reports progress
as JSON lines on stdout (server/learning/jobs/report.py); its stderr is kept, the last lines only,
to explain a crash. Whatever the child does — exits early, prints garbage, hangs past the timeout,
dies to a signal — `run()` returns a `JobOutcome` saying what happened; it never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from server.learning.jobs.job import TrainingJob
from server.learning.jobs.report import (
    MAX_LINE_BYTES,
    ErrorMessage,
    ProgressMessage,
    ProtocolError,
    ResultMessage,
    decode,
)

log = logging.getLogger(__name__)

WORKER_COMMAND = (sys.executable, "-m", "server.training.worker_main", "--exit-with-stdin")
STDERR_LINES_KEPT = 20

Status = Literal["passed", "rejected", "failed", "cancelled"]
ProgressHandler = Callable[[ProgressMessage], Awaitable[None] | None]


@dataclass(frozen=True)
class JobOutcome:
    """`passed`/`rejected`: a candidate was built and the gate accepted/refused it (`result`).
    `failed`: no candidate, `reason` says why. `cancelled`: stopped on request."""

    status: Status
    reason: str
    result: ResultMessage | None = None
    exit_code: int | None = None
    stderr_tail: str = ""


class TrainerProcess:
    def __init__(
        self,
        job: TrainingJob,
        job_file: Path,
        *,
        command: Sequence[str] = WORKER_COMMAND,
        grace_seconds: float = 5.0,
        timeout_seconds: float | None = None,
    ) -> None:
        self.job = job
        self.job_file = Path(job_file)
        self.command = tuple(command)
        self.grace_seconds = grace_seconds
        self.timeout_seconds = timeout_seconds
        self.pid: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._cancelled = False
        self._stop = asyncio.Event()

    def cancel(self) -> None:
        """Ask the job to stop: `run()` then terminates the child and returns `cancelled`."""
        self._cancelled = True
        self._stop.set()

    async def run(self, on_progress: ProgressHandler | None = None) -> JobOutcome:
        if self._process is not None:
            raise RuntimeError("a TrainerProcess runs once; make a new one for the next job")
        try:
            self.job.save(self.job_file)
            process = await asyncio.create_subprocess_exec(
                *self.command,
                str(self.job_file),
                stdin=asyncio.subprocess.PIPE,  # the child exits when this closes (we died)
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment(),
                limit=MAX_LINE_BYTES,
            )
        except OSError as exc:
            return JobOutcome("failed", f"could not start the trainer: {exc}")
        self._process, self.pid = process, process.pid
        stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        drain = asyncio.create_task(_keep_tail(process.stderr, stderr_tail))
        try:
            final, problem = await self._read_until_done(process, on_progress)
        finally:
            # Also on our own cancellation: never leave a trainer running behind us.
            await self._stop_child(process)
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        return _outcome(final, problem, self._cancelled, process.returncode, "\n".join(stderr_tail))

    async def _read_until_done(
        self, process: asyncio.subprocess.Process, on_progress: ProgressHandler | None
    ) -> tuple[ResultMessage | ErrorMessage | None, str | None]:
        """Read messages until the child exits, is cancelled, times out or misbehaves."""
        reading = asyncio.create_task(self._read_messages(process, on_progress))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {reading, stopping},
                timeout=self.timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
        if reading in done:
            return reading.result()
        if stopping in done:
            return None, None
        return None, f"the trainer took longer than {self.timeout_seconds:g} s and was stopped"

    async def _read_messages(
        self, process: asyncio.subprocess.Process, on_progress: ProgressHandler | None
    ) -> tuple[ResultMessage | ErrorMessage | None, str | None]:
        assert process.stdout is not None
        final: ResultMessage | ErrorMessage | None = None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # asyncio's way of saying the line exceeded the limit
                return final, f"the trainer wrote a line longer than {MAX_LINE_BYTES} bytes"
            if not line:
                await process.wait()
                return final, None
            if not line.strip():
                continue
            try:
                message = decode(line)
            except ProtocolError as exc:
                return final, str(exc)
            if final is not None:
                return final, f"the trainer wrote {message.type!r} after its final message"
            if isinstance(message, ProgressMessage):
                await _relay(on_progress, message)
            else:
                final = message

    async def _stop_child(self, process: asyncio.subprocess.Process) -> None:
        """Terminate (then kill after the grace period) a child that is still running."""
        if process.stdin is not None:
            process.stdin.close()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.grace_seconds)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def _environment(self) -> dict[str, str]:
        # Cap the thread pools before torch or ONNX Runtime start: set_num_threads alone comes
        # after OpenMP has sized its pool.
        threads = str(self.job.threads)
        return {
            **os.environ,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "PYTHONUNBUFFERED": "1",
        }


async def _relay(handler: ProgressHandler | None, message: ProgressMessage) -> None:
    """Hand progress on; a failing handler is logged and must not stop the training."""
    if handler is None:
        return
    try:
        maybe = handler(message)
        if inspect.isawaitable(maybe):
            await maybe
    except Exception:
        log.exception("the training progress handler failed")


async def _keep_tail(stream: asyncio.StreamReader | None, tail: deque[str]) -> None:
    """Read a stream to its end (so the child never blocks on a full pipe), keeping the tail."""
    if stream is None:
        return
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # an overlong line (a tqdm bar without newlines): skip it
            continue
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            tail.append(text[-500:])


def _outcome(
    final: ResultMessage | ErrorMessage | None,
    problem: str | None,
    cancelled: bool,
    exit_code: int | None,
    stderr_tail: str,
) -> JobOutcome:
    def outcome(status: Status, reason: str, result: ResultMessage | None = None) -> JobOutcome:
        return JobOutcome(status, reason, result, exit_code, stderr_tail)

    if cancelled:
        return outcome("cancelled", "the training was cancelled")
    if problem is not None:
        return outcome("failed", problem)
    if isinstance(final, ErrorMessage):
        return outcome("failed", final.reason)
    if exit_code != 0:
        return outcome("failed", _exit_reason(exit_code, stderr_tail))
    if final is None:
        return outcome("failed", "the trainer exited without reporting a result")
    if final.passed:
        return outcome("passed", f"{final.version} passed the gate", final)
    return outcome(
        "rejected", f"{final.version} failed the gate: {final.gate.get('reason')}", final
    )


def _exit_reason(exit_code: int | None, stderr_tail: str) -> str:
    if exit_code is not None and exit_code < 0:
        try:
            what = f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            what = f"was killed by signal {-exit_code}"
    else:
        what = f"exited with code {exit_code}"
    last = stderr_tail.splitlines()[-1] if stderr_tail else "no error output"
    return f"the trainer {what} ({last})"
