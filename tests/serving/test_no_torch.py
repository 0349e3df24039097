"""The serving process never imports torch (memory, start-up time): checked in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVING_MODULES = [
    "server.serving.preprocess",
    "server.serving.inference",
    "server.serving.model_worker",
    "server.serving.evaluate",
    "server.realtime.pubsub",
    "server.storage.postgres",
    "server.app",
]


@pytest.mark.parametrize("module", SERVING_MODULES)
def test_importing_the_serving_path_leaves_torch_out(module):
    probe = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision') "
        "or m.startswith('server.training')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} imports {result.stdout.strip()}"
