"""Does retraining hurt live play? `bench/load.py` against one server, without and then with a
training job running in the trainer process (issue 5: p99 within 2× of the value without).

Starts `fool-the-model serve` on a temporary data directory holding a model with its weights
(a quick training, unless `--model` names an .onnx with its .json and .pt beside it), runs the
load once, launches the next round (`POST /api/admin/rounds/next`: a full-size fine-tuning on
MNIST, one trainer thread), waits until the trainer reports steps, runs the same load again,
then cancels the job. Prints both tables and the p99 ratio. Other processes on the machine skew
every number: compare runs made back to back.

    .venv/bin/python bench/load_while_training.py --players 200 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench"


def prepare(data_dir: Path, model: Path | None) -> None:
    (data_dir / "mnist").symlink_to((REPO / "data" / "mnist").resolve())
    if model is None:
        subprocess.run(
            [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "train", "--quick"],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return
    models = data_dir / "models"
    models.mkdir()
    for suffix in (".onnx", ".json", ".pt"):
        shutil.copyfile(model.with_suffix(suffix), models / f"v1{suffix}")


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "serve",
         "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "FTM_ADMIN_TOKEN": TOKEN, "FTM_RETRAIN_POLL_SECONDS": "3600"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def load(port: int, args: argparse.Namespace) -> tuple[str, float]:
    """Run bench/load.py once; its table and the p99 of live guesses (ms)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--url", f"ws://127.0.0.1:{port}/ws",
         "--players", str(args.players), "--seconds", str(args.seconds),
         "--clients", str(args.clients)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    table = result.stdout.strip()
    lines = table.splitlines()
    at = max(k for k, line in enumerate(lines) if "p99 ms" in line)  # the last table's header
    header, row = lines[at], lines[at + 1]
    end = header.index("p99 ms") + len("p99 ms")  # columns are right-aligned to the header
    return table, float(row[end - 7 : end])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--model", type=Path, help="an .onnx with its .json and .pt beside it")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ftm-load-training-"))
    process = None
    try:
        prepare(data_dir, args.model)
        process, port = start_server(data_dir)
        admin = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        quiet_table, quiet = load(port, args)
        print("without training:", quiet_table, sep="\n", flush=True)

        launched = admin.post("/api/admin/rounds/next")
        launched.raise_for_status()
        while (job := admin.get("/api/admin/trainer").json())["step"] == 0:
            if job["state"] != "running":
                raise SystemExit(f"the training job ended before the load: {job}")
            time.sleep(0.5)
        busy_table, busy = load(port, args)
        job = admin.get("/api/admin/trainer").json()
        print(f"with training (job {job['id']}, {job['state']}, epoch {job['epoch']}, "
              f"step {job['step']}/{job['steps']}):", busy_table, sep="\n")  # fmt: skip
        if job["state"] == "running":
            admin.post("/api/admin/trainer/cancel")
        else:
            print("note: the job finished during the load; lengthen it or shorten --seconds")
        print(f"p99 live guess: {quiet:.1f} ms without, {busy:.1f} ms with training "
              f"(ratio {busy / quiet:.2f})")  # fmt: skip
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
