"""TrainerProcess against children that misbehave: every failure becomes a failed job, never a
crash of the caller. The children here are tiny Python scripts standing in for the trainer."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from server.learning.jobs.job import TrainingJob
from server.learning.jobs.process import JobOutcome, TrainerProcess
from server.learning.jobs.report import ProgressMessage

PROGRESS = (
    '{"type": "progress", "epoch": 1, "epochs": 1, "step": %d, "steps": 3, "loss": 0.5,'
    ' "accuracy": 0.5, "eta_seconds": 1}'
)
RESULT = json.dumps(
    {
        "type": "result",
        "version": "v2",
        "card_path": "c",
        "model_path": "m",
        "mnist_test_accuracy": 0.99,
        "gate": {"passed": True, "reason": "all checks passed", "checks": []},
    }
)


async def run_script(tmp_path: Path, script: str, **options: float) -> tuple[JobOutcome, list]:
    progress: list[ProgressMessage] = []
    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)),
        tmp_path / "job.json",
        command=[sys.executable, "-c", script],
        **options,
    )
    outcome = await trainer.run(progress.append)
    return outcome, progress


def prints(*lines: str, then: str = "") -> str:
    return "".join(f"print({line!r}, flush=True)\n" for line in lines) + then


async def test_progress_then_a_passing_result(tmp_path: Path) -> None:
    script = prints(PROGRESS % 1, PROGRESS % 2, "", RESULT)
    outcome, progress = await run_script(tmp_path, script)
    assert [p.step for p in progress] == [1, 2]
    assert outcome.status == "passed" and outcome.reason == "v2 passed the gate"
    assert outcome.result is not None and outcome.result.mnist_test_accuracy == 0.99
    assert outcome.exit_code == 0


async def test_the_job_file_is_handed_to_the_child(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "job = json.load(open(sys.argv[1]))\n"
        "print(json.dumps({'type': 'error', 'reason': 'threads=%d' % job['threads']}))"
    )
    outcome, _ = await run_script(tmp_path, script)
    assert (outcome.status, outcome.reason) == ("failed", "threads=1")


async def test_a_rejected_candidate(tmp_path: Path) -> None:
    rejected = RESULT.replace('"passed": true', '"passed": false').replace(
        "all checks passed", "MNIST accuracy 0.5 < floor 0.985"
    )
    outcome, _ = await run_script(tmp_path, prints(rejected))
    assert outcome.status == "rejected"
    assert outcome.reason == "v2 failed the gate: MNIST accuracy 0.5 < floor 0.985"


async def test_an_async_progress_handler_is_awaited(tmp_path: Path) -> None:
    seen = []

    async def handler(message: ProgressMessage) -> None:
        await asyncio.sleep(0)
        seen.append(message.step)

    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)),
        tmp_path / "job.json",
        command=[sys.executable, "-c", prints(PROGRESS % 1, RESULT)],
    )
    assert (await trainer.run(handler)).status == "passed"
    assert seen == [1]


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (prints("hello"), "unreadable trainer output 'hello'"),
        (prints('{"type": "progress", "epoch": 1}'), "unreadable trainer output"),
        (prints(RESULT, PROGRESS % 1), "the trainer wrote 'progress' after its final message"),
        (prints(PROGRESS % 1), "the trainer exited without reporting a result"),
        (
            "import sys; sys.stderr.write('Traceback...\\nRuntimeError: boom\\n'); sys.exit(3)",
            "the trainer exited with code 3 (RuntimeError: boom)",
        ),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
        ("print('x' * 2_000_000, flush=True)", "longer than"),
    ],
)
async def test_a_misbehaving_child_is_a_failed_job(
    tmp_path: Path, script: str, reason: str
) -> None:
    outcome, _ = await run_script(tmp_path, script)
    assert outcome.status == "failed"
    assert reason in outcome.reason


async def test_an_error_line_beats_the_exit_code(tmp_path: Path) -> None:
    script = prints('{"type": "error", "reason": "no data"}', then="import sys; sys.exit(1)")
    outcome, _ = await run_script(tmp_path, script)
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("failed", "no data", 1)


async def test_a_command_that_cannot_start_is_a_failed_job(tmp_path: Path) -> None:
    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)), tmp_path / "job.json", command=[str(tmp_path / "no")]
    )
    outcome = await trainer.run()
    assert outcome.status == "failed" and "could not start the trainer" in outcome.reason


async def test_a_hung_child_times_out(tmp_path: Path) -> None:
    outcome, _ = await run_script(tmp_path, "import time; time.sleep(60)", timeout_seconds=0.5)
    assert outcome.status == "failed"
    assert outcome.reason == "the trainer took longer than 0.5 s and was stopped"


async def test_cancel_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"print({PROGRESS % 1!r}, flush=True)\n"
        "time.sleep(60)\n"
    )
    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)),
        tmp_path / "job.json",
        command=[sys.executable, "-c", script],
        grace_seconds=0.5,
    )
    started = time.monotonic()
    outcome = await trainer.run(lambda _: trainer.cancel())
    assert outcome.status == "cancelled" and outcome.exit_code == -9
    assert time.monotonic() - started < 30  # the 60 s sleep was cut short


async def test_cancelling_the_caller_stops_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)),
        tmp_path / "job.json",
        command=[sys.executable, "-c", script],
    )
    task = asyncio.create_task(trainer.run())
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


async def test_a_failing_progress_handler_does_not_stop_the_job(tmp_path: Path) -> None:
    def handler(message: ProgressMessage) -> None:
        raise RuntimeError("the admin socket went away")

    trainer = TrainerProcess(
        TrainingJob(data_dir=str(tmp_path)),
        tmp_path / "job.json",
        command=[sys.executable, "-c", prints(PROGRESS % 1, PROGRESS % 2, RESULT)],
    )
    assert (await trainer.run(handler)).status == "passed"
    with pytest.raises(RuntimeError, match="runs once"):
        await trainer.run()
