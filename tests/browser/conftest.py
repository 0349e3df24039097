"""Real Chromium (Debian's, driven by Playwright) against a real `fool-the-model serve` process.

The server runs as a child process (tests/server/live_server.py) so a test can kill it and
start it again on the same port. Every browser context records the requests its pages make;
at teardown each URL (websockets included) must point at 127.0.0.1 or localhost (the game
works with no internet), and an uncaught exception in a page fails the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

# The integration tests' live server helpers, reused (their folder is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from browser_helpers import LENIENT_RULES, Contexts, is_local
from live_server import ProcessServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Two shared cores and a model server per test: give each expectation room to come true.
expect.set_options(timeout=15_000)


# Per module, not per session: Playwright's sync API keeps its own event loop, which must be
# gone before the asyncio tests of other folders run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian's Chromium at /usr/bin/chromium: run `make browser` "
            "(it runs apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def lenient_rules(data_dir: Path) -> Path:
    """A small game's rules (browser_helpers.LENIENT_RULES) for the server about to start."""
    path = data_dir / "rules.toml"
    path.write_text(LENIENT_RULES)
    return path


@pytest.fixture
def game(data_dir: Path) -> Iterator[ProcessServer]:
    """`fool-the-model serve` on an ephemeral port on `data_dir` (tests/conftest.py: model v1;
    a test may add files first), round 1 open."""
    server = ProcessServer(data_dir).start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture
def contexts(browser: Browser, game: ProcessServer) -> Iterator[Contexts]:
    opened = Contexts(browser, game.http)
    yield opened
    opened.close()
    outside = [url for url in opened.requests if not is_local(url)]
    assert not outside, f"the page reached beyond this machine: {outside}"
    assert not opened.page_errors, f"uncaught errors in the page: {opened.page_errors}"
