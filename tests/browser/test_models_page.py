"""The public models page: the game's versions and an outside model an admin uploaded, scored on
MNIST test and each round's verified drawings, with the round's vMER and the drawings that still
fool each model. `FTM_SCREENSHOTS=docs` also refreshes docs/images/models.png (the README's)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from browser_helpers import PHONE, Contexts, horizontal_overflow, screenshot
from live_server import ADMIN_TOKEN, ProcessServer
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "learning"))
from benchmark_helpers import install_game_models, seed_rounds
from data_dirs import new_data_dir

from server.mnist import Mnist

pytestmark = pytest.mark.browser
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "models.png"


@pytest.fixture
def data_dir(tmp_path: Path, mnist: Mnist, linear_onnx_model: Callable[..., Path]) -> Path:
    """Two rounds of verified drawings, models v1 and v2, MNIST for the test column."""
    root = new_data_dir(tmp_path / "data", mnist=True)
    install_game_models(root, linear_onnx_model)
    seed_rounds(root, mnist)
    return root


def test_the_models_page_ranks_game_and_outside_models(
    contexts: Contexts, game: ProcessServer, linear_onnx_model: Callable[..., Path]
) -> None:
    upload = linear_onnx_model(seed=9, scale=0.05).read_bytes()
    url = f"{game.http}/api/admin/models/outside/lenet-x"
    assert httpx.post(url, content=upload).status_code == 401  # an admin action
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    refused = httpx.post(
        f"{game.http}/api/admin/models/outside/junk", content=b"x", headers=headers
    )
    assert refused.status_code == 400 and "ONNX" in refused.json()["error"]["message"]
    assert httpx.post(url, content=upload, headers=headers, timeout=30).status_code == 201

    page = contexts.page("/models.html")
    rows = page.locator(".models-table tbody tr")
    expect(rows).to_have_count(3, timeout=60_000)  # scoring MNIST takes a moment
    expect(rows.nth(0).locator("th")).to_contain_text("v1")
    expect(rows.nth(2).locator("th")).to_contain_text("lenet-x")
    expect(rows.nth(2)).to_have_class("outside")
    headings = page.locator(".models-table thead th")
    expect(headings).to_have_text(["model", "MNIST test", "round 1", "round 2"])
    expect(rows.nth(0).locator("td").first).to_contain_text("%")  # MNIST test accuracy
    expect(page.locator(".models-table tfoot")).to_contain_text("vMER")
    expect(page.locator(".models-table tfoot")).to_contain_text("93.8%")  # 30 of 32, both rounds
    expect(page.locator(".fooling section")).to_have_count(3)
    expect(page.locator(".fooling img").first).to_be_visible()
    expect(page.locator(".models-note")).to_contain_text("held-out")
    path = screenshot(page, "models")
    if os.environ.get("FTM_SCREENSHOTS") == "docs":
        shutil.copyfile(path, DOCS_IMAGE)

    phone = contexts.page("/models.html", viewport=PHONE)
    expect(phone.locator(".models-table tbody tr")).to_have_count(3, timeout=60_000)
    assert horizontal_overflow(phone) == 0  # the table scrolls inside its card
