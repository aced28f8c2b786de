"""Open pages in Debian's headless ``chromium`` through Playwright, for the report's browser tests.

Playwright drives the system browser through ``executable_path``; no browser
build is ever downloaded (never run ``playwright install``). Without chromium
or the ``playwright`` package the tests skip, saying why, unless
``SEGAUDIT_REQUIRE_CHROMIUM=1`` (as ``.ci/run`` sets): then they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Browser", "PageLog", "find_chromium", "launch"]


def _missing(reason: str) -> None:
    if os.environ.get("SEGAUDIT_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"SEGAUDIT_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)


def find_chromium() -> str:
    """Return chromium's path; skip (or fail, when CI requires it) without one."""
    executable = shutil.which("chromium")
    if executable is None:
        _missing(
            "no 'chromium' on PATH (Debian package 'chromium'); the report is not browser-tested"
        )
    assert executable is not None
    return executable


@dataclass
class PageLog:
    """What a page did: console errors, uncaught exceptions, and every request but its own file."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One headless chromium; :meth:`open` loads a local file in a fresh, isolated context."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    @contextmanager
    def open(self, path: Path) -> Iterator[tuple[Any, PageLog]]:
        """Open `path` (file://) and yield the Playwright page and its log.

        Every request other than the page itself (``data:`` URIs aside) is
        recorded and aborted, so a page that reaches for the network is caught
        offline too.
        """
        log = PageLog()
        url = path.resolve().as_uri()
        context = self._browser.new_context(java_script_enabled=True, offline=True)

        def route(request_route: Any) -> None:
            if request_route.request.url == url:
                request_route.continue_()
            else:
                request_route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda message: log.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: log.errors.append(f"uncaught: {error}"))
        page.on(
            "request",
            lambda request: (
                None
                if request.url == url or request.url.startswith("data:")
                else log.requests.append(request.url)
            ),
        )
        try:
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            context.close()


@contextmanager
def launch() -> Iterator[Browser]:
    """Start Debian's chromium headless under Playwright (skip or fail without either)."""
    executable = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _missing(f"the 'playwright' package is not installed ({err}); pip install playwright")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield Browser(browser)
        finally:
            browser.close()
