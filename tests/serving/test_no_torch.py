"""The serving process never imports torch (memory, start-up time): checked in a fresh process,
for every module of the server outside `server/training/` (the trainer's own process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def torch_free_modules() -> list[str]:
    modules = []
    for path in sorted((REPO / "server").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[:2] == ("server", "training"):
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_no_module_outside_training_imports_torch():
    modules = torch_free_modules()
    assert "server.app" in modules and "server.serving.model_worker" in modules
    probe = (
        "import importlib, sys\n"
        "leaks = {}\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')"
        " or m.startswith('server.training'))\n"
        "    if heavy:\n"
        "        leaks[name] = heavy[:3]\n"
        "        break\n"
        "print(leaks)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{}", f"imports torch: {result.stdout.strip()}"
