"""Headless Chromium driven over the Chrome DevTools Protocol, for tests that click through pages.

Chromium's ``--remote-debugging-pipe`` speaks the protocol over two file descriptors (it reads
commands on fd 3 and writes replies and events on fd 4, each message JSON ended by a NUL byte),
so no websocket client and no port are needed. A reader thread sorts replies by id and keeps every
event; the page's console errors, uncaught exceptions and browser log errors (CSP violations,
failed loads) are collected so a test can assert there were none.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from browser import CHROMIUM

TIMEOUT_S = 30.0


class DevToolsError(RuntimeError):
    """The browser answered a command with an error, or a page script threw."""


class Browser:
    """One headless Chromium with one page (tab), on loopback only."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        arguments = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            # Only loopback: every name resolves nowhere; 127.0.0.1 is an address, not a name.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash (dash only takes one-digit fds) moves our pipe ends onto fds 3 and 4, where Chromium reads them.
        script = f'exec "$0" "$@" 3<&{to_browser_read} 4>&{from_browser_write}'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", script, str(CHROMIUM), *arguments],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=open(profile.parent / "chromium.log", "ab"),  # noqa: SIM115 - kept for a failure's story
            start_new_session=True,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.viewport(width, height)

    # ------------------------------------------------------------------ protocol

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def command(self, method: str, session: str | None = None, **params: Any) -> dict:
        """Send one protocol command and wait for its result."""
        with self._cond:
            self._next_id += 1
            number = self._next_id
        message = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        with self._cond:
            while number not in self._replies:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise DevToolsError(f"{method}: no answer from the browser")
                self._cond.wait(0.5)
            reply = self._replies.pop(number)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def send(self, method: str, **params: Any) -> dict:
        """A command to the page's session."""
        return self.command(method, self.session, **params)

    # ------------------------------------------------------------------ page

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Lay the page out for a ``width`` x ``height`` CSS-pixel screen (``mobile``: a phone's)."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    def goto(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = TIMEOUT_S) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except DevToolsError:
                last = None  # the page is navigating; try again
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"not true after {timeout}s: {expression} (last {last!r})")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole scrollable page when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def press(self, key: str, code: str | None = None, key_code: int = 0) -> None:
        """One key press (down and up) into the focused element, as a keyboard would."""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=code or key, windowsVirtualKeyCode=key_code)

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far, one line each."""
        found = []
        with self._cond:
            events = list(self.events)
        for message in events:
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(
                    "console." + params["type"] + ": " + shlex.join(str(a.get("value")) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("exception: " + str(details.get("exception", {}).get("description") or details["text"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
        return found

    def close(self) -> None:
        """End the browser and its processes."""
        with contextlib.suppress(DevToolsError):
            self.command("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
