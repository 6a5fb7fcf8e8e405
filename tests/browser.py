"""Headless Chromium for tests: find it (CI must have it), serve a folder on 127.0.0.1, run
the browser in its own process group so nothing outlives the test."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--hide-scrollbars",
)


def find_chromium() -> str:
    """The Chromium binary; skips the test without one, fails it in CI (CI=true)."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium not found; CI must install it (Debian package: chromium)")
    pytest.skip("chromium not installed (Debian package: chromium); with CI set this fails")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_chromium(binary: str, profile: Path, *args: str, timeout: int = 90) -> str:
    """Run headless Chromium in its own process group; returns stdout."""
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish in {timeout} s: {' '.join(cmd)}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind by this run, if any
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {stderr[-2000:]}"
    return stdout


class DevTools:
    """Headless Chromium driven over the DevTools protocol (one browser websocket, the page
    attached with a flat session), for pages that need clicks, not just a dump: evaluate
    JavaScript, wait for a condition, take screenshots, accept downloads, and record every URL
    the page requests (``requests``). Runs in its own process group; ``close()`` ends it."""

    def __init__(self, binary: str, profile: Path, downloads: Path, timeout: float = 60.0):
        import asyncio
        import json
        import time

        import aiohttp

        self._json = json
        self.timeout = timeout
        self.events: list[dict] = []
        self.requests: list[str] = []
        profile.mkdir(parents=True, exist_ok=True)
        downloads.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1400",
            "about:blank",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (active.is_file() and len(active.read_text().split()) == 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"chromium did not open its DevTools port: {cmd}")
            time.sleep(0.1)
        port, path = active.read_text().split()
        self.loop = asyncio.new_event_loop()
        self._next_id = 0

        async def connect():
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
            return session, ws

        self.session, self.ws = self.loop.run_until_complete(connect())
        self.send(
            "Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads),
            eventsEnabled=True,
        )  # fmt: skip
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.page = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=self.page)
        self.send("Network.enable", session=self.page)
        self.send("Runtime.enable", session=self.page)

    def _record(self, message: dict) -> None:
        self.events.append(message)
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """One DevTools command; returns its result (raises on a protocol error)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session

        async def call():
            await self.ws.send_str(self._json.dumps(message))
            while True:
                reply = self._json.loads((await self.ws.receive(timeout=self.timeout)).data)
                if reply.get("id") == message["id"]:
                    return reply
                self._record(reply)

        reply = self.loop.run_until_complete(call())
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def pump(self, seconds: float) -> None:
        """Take in the events that arrive within ``seconds``."""

        async def drain():
            try:
                while True:
                    raw = await self.ws.receive(timeout=seconds)
                    self._record(self._json.loads(raw.data))
            except TimeoutError:
                return

        self.loop.run_until_complete(drain())

    def evaluate(self, expression: str, gesture: bool = False):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate", session=self.page, expression=expression, awaitPromise=True,
            returnByValue=True, userGesture=gesture,
        )  # fmt: skip
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None, what: str = ""):
        """Poll ``expression`` until it is truthy; returns its value."""
        import time

        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.pump(0.2)
        raise AssertionError(f"timed out waiting for {what or expression}")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", session=self.page, url=url)

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.send("Page.captureScreenshot", session=self.page, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if getattr(self, "ws", None) is not None:
                self.loop.run_until_complete(self.ws.close())
                self.loop.run_until_complete(self.session.close())
        with contextlib.suppress(Exception):
            if getattr(self, "loop", None) is not None:
                self.loop.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
