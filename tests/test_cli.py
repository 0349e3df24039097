"""The command line and its users' mistakes: each one ends with exit status 2 (a usage mistake)
or 1 (the work failed) and one line on stderr that says what to do, never a traceback. Every
case runs `python -m server.cli` as a user would, in a directory of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from data_dirs import REPO
from PIL import Image, ImageDraw

from server.learning.export import ExportError, export_dataset

# (arguments, extra environment, exit status, the start of the one line on stderr)
MISTAKES = [
    (["--data-dir", "a-file", "models"], {}, 2, "error: the data directory"),
    (["--data-dir", "typo", "rounds"], {}, 2, "error: the data directory"),
    (["--data-dir", "a-file/data", "fetch-data"], {}, 2, "error: cannot create the data dir"),
    (["rounds"], {"FTM_DATA_DIR": "typo"}, 2, "error: the data directory"),
    (["serve"], {"FTM_PORT": "abc"}, 2, "error: FTM_PORT must be a port number 1–65535"),
    (["serve", "--port", "99999"], {}, 2, "error: argument --port: must be a port number"),
    (["train", "--epochs", "0"], {}, 2, "error: argument --epochs: must be a whole number"),
    (["train", "--seed", "-1"], {}, 2, "error: argument --seed: must be a whole number 0"),
    (["export", "--out", "a-file/x"], {}, 2, "error: argument --out: cannot create a-file/x"),
    (["export", "--out", "data"], {}, 2, "error: argument --out: data already exists"),
    (["export", "--out", "x", "--round", "0"], {}, 2, "error: argument --round: must be"),
    (["export", "--out", "x", "--outcome", "won"], {}, 2, "error: argument --outcome: invalid"),
    (["trainer", "--poll-seconds", "0"], {}, 2, "error: argument --poll-seconds: must be"),
    (["fly"], {}, 2, "error: argument COMMAND: invalid choice: 'fly'"),
    (["export"], {}, 2, "error: the following arguments are required: --out"),
    (["rounds"], {}, 1, "error: No game database at"),
    (["eval", "missing.onnx"], {}, 1, "error: "),
]


def run_cli(
    cwd: Path, args: list[str], env: dict[str, str] | None = None, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """`fool-the-model ARGS` from `cwd`, with this checkout's `server` and only the `FTM_*`
    variables in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FTM_")}
    clean["PYTHONPATH"] = os.pathsep.join([str(REPO), clean.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    return stderr.rstrip("\n")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with a file where a directory is expected and an empty `data/`."""
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.mark.parametrize(("args", "env", "status", "message"), MISTAKES)
def test_a_mistake_is_one_line_and_an_exit_status(
    workdir: Path, args: list[str], env: dict[str, str], status: int, message: str
) -> None:
    result = run_cli(workdir, args, env)
    assert (result.returncode, result.stdout) == (status, "")
    assert one_line(result.stderr).startswith(message)
    assert not (workdir / "typo").exists()  # a mistyped data directory is not created


def test_a_usage_mistake_says_where_help_is(workdir: Path) -> None:
    line = one_line(run_cli(workdir, ["train", "--epochs", "0"]).stderr)
    assert line == (
        "error: argument --epochs: must be a whole number of at least 1, got '0' "
        "(see `fool-the-model train --help`)"
    )


def test_version_and_help_name_the_exit_statuses(workdir: Path) -> None:
    version = run_cli(workdir, ["--version"])
    expected = f"fool-the-model {metadata.version('fool-the-model')}\n"  # pyproject.toml's
    assert (version.returncode, version.stdout) == (0, expected)
    for args in (["--help"], ["serve", "--help"]):
        shown = run_cli(workdir, args)
        assert shown.returncode == 0
        assert "exit status: 0 done, 1 the work failed, 2 a usage mistake" in shown.stdout


def test_a_taken_port_is_refused_before_the_banner(workdir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli(workdir, ["--data-dir", "data", "serve", "--port", str(port)])
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another --port or --host (FTM_PORT, FTM_HOST)"
    )  # and no "Fool the Model at http://…" announcing a server that is not there


def test_a_closed_pipe_ends_quietly(data_dir: Path) -> None:
    """`fool-the-model predict drawing.png | head -c 0`: the reader is gone before we write."""
    drawing = Image.new("L", (28, 28), 255)
    ImageDraw.Draw(drawing).line([(14, 4), (14, 24)], fill=0, width=3)
    drawing.save(data_dir / "drawing.png")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = run_cli(data_dir, ["--data-dir", ".", "predict", "drawing.png"], stdout=write_end)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


def test_progress_bars_stay_out_of_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """stderr is not a terminal here (as in a log): the export's bar is not drawn at all (the
    trainer's follows the same tqdm rule)."""
    with pytest.raises(ExportError, match="nothing to export"):
        export_dataset([], tmp_path / "out", show_progress=True)
    assert capsys.readouterr().err == ""
