"""A headless Chromium driven over the DevTools protocol, for tests that open a page.

No browser library is needed: Chromium's ``--remote-debugging-pipe`` speaks JSON
messages (NUL-separated) on file descriptors 3 and 4.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["find_chromium", "load_in_chromium"]


class _Chromium:
    """Drive headless Chromium over the DevTools protocol on a pipe (fds 3 and 4)."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--remote-debugging-pipe",
    )

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        self._child_in, self._to_child = os.pipe()
        self._from_child, self._child_out = os.pipe()
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(
                [executable, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                pass_fds=(3, 4),
                preexec_fn=self._wire_pipes,
            )
        os.close(self._child_in)
        os.close(self._child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _wire_pipes(self) -> None:  # runs in the child, before exec
        os.dup2(self._child_in, 3)
        os.dup2(self._child_out, 4)

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_child], [], [], max(0, deadline - time.time()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout=30.0, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
            elif "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            else:
                return answer["result"]

    def wait_for(self, method: str, timeout=30.0) -> dict:
        deadline = time.time() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._receive(deadline))
        return next(e for e in self.events if e.get("method") == method)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
            self.proc.wait(timeout=10)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to_child)
            os.close(self._from_child)


_IMAGE_STATE = """JSON.stringify({
  rows: document.querySelectorAll("article.image-row").length,
  images: [...document.images].map(i => ({
    cls: i.className, stem: i.dataset.stem, complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width,
  })),
})"""


def load_in_chromium(executable: str, page: Path, workdir: Path) -> tuple[dict, list[str]]:
    """Open `page` from a file:// URL; return the images' state and every error reported."""
    browser = _Chromium(executable, workdir / "profile", workdir / "chromium.log")
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        session = session["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", session=session, url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        state = browser.send(
            "Runtime.evaluate", session=session, expression=_IMAGE_STATE, returnByValue=True
        )
    finally:
        browser.close()
    errors = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            errors.append(json.dumps(params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
    return json.loads(state["result"]["value"]), errors


def find_chromium() -> str:
    """Return chromium's path; skip (or fail, when CI requires it) without one."""
    executable = shutil.which("chromium")
    if executable is None:
        reason = (
            "no 'chromium' on PATH (Debian package 'chromium'); the report is not browser-tested"
        )
        if os.environ.get("SEGAUDIT_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"SEGAUDIT_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    return executable
