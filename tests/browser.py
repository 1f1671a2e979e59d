"""Headless Chromium driven over the DevTools protocol, with no network but this machine.

Only ``websockets`` (a dev dependency, and uvicorn's) is needed: a browser-level
socket, one flat session per page, ``Runtime.evaluate`` to read the DOM and
``Input.*`` events to click and type like a person.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def offline_flags(user_data_dir: Path) -> list[str]:
    """Flags for a browser that can reach 127.0.0.1 and nothing else.

    Two locks: every request not for a loopback address goes to a "proxy" at
    127.0.0.1:9 (discard), where nothing listens, so it fails even for a
    literal IP address (loopback bypasses proxies by default); and every host
    name but 127.0.0.1 fails to resolve (``--host-resolver-rules``). The tests
    also record each request a page makes and check where it went.
    """
    flags = [
        "--headless",
        f"--user-data-dir={user_data_dir}",
        "--remote-debugging-port=0",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "about:blank",
    ]
    if os.geteuid() == 0:
        flags.insert(0, "--no-sandbox")  # Chromium refuses to run its sandbox as root
    return flags


class DevTools:
    """One DevTools connection: numbered commands, their answers, and every event seen."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if "id" in message and (future := self.pending.pop(message["id"], None)):
                if "error" in message:
                    future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            else:
                self.events.append(message)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.socket.send(json.dumps(message))
        return await asyncio.wait_for(future, timeout=60)

    async def close(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.socket.close()


class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition, click, type, screenshot."""

    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.devtools.call(method, self.session, **params)

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [
            event["params"]
            for event in self.devtools.events
            if event.get("sessionId") == self.session and event.get("method") == method
        ]

    def outgoing_urls(self) -> list[str]:
        """Every URL this page asked for, in order, less those the browser itself
        refused to send (a Content-Security-Policy block never leaves the tab)."""
        blocked = {
            failed["requestId"]
            for failed in self._events("Network.loadingFailed")
            if failed.get("blockedReason")
        }
        return [
            sent["request"]["url"]
            for sent in self._events("Network.requestWillBeSent")
            if sent["requestId"] not in blocked
        ]

    def uncaught_errors(self) -> list[str]:
        return [
            str(thrown["exceptionDetails"].get("exception", {}).get("description", thrown))
            for thrown in self._events("Runtime.exceptionThrown")
        ]

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 30) -> Any:
        """Poll ``expression`` until it is truthy and return its (JSON) value."""
        try:
            async with asyncio.timeout(seconds):
                # Polling: the page has no way to tell us when it changes.
                while not (value := await self.evaluate(expression)):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise TimeoutError(f"still false after {seconds}s: {expression}") from None
        return value

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element ``selector`` matches."""
        box = await self.wait_for(
            f"""(() => {{
                const element = document.querySelector({json.dumps(selector)});
                if (!element) return null;
                element.scrollIntoView({{block: "center"}});
                const r = element.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null;
            }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.call("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def chromium(executable: str, workdir: Path) -> AsyncIterator[DevTools]:
    """Start an offline headless Chromium and connect to it; stopped on the way out."""
    profile = workdir / "profile"
    profile.mkdir(parents=True)
    log = workdir / "chromium.log"
    with log.open("wb") as output:  # the browser keeps its own copy of the descriptor
        process = await asyncio.create_subprocess_exec(
            executable, *offline_flags(profile), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        # With port 0 Chromium picks a free port and writes it, and the browser
        # socket's path, into the profile's DevToolsActivePort file.
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().split()) == 2):
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {log.read_text()}")
            await asyncio.sleep(0.1)
        port, path = active.read_text().split()
        devtools = DevTools(await connect(f"ws://127.0.0.1:{port}{path}", max_size=None))
        try:
            yield devtools
        finally:
            await devtools.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def open_page(devtools: DevTools) -> Page:
    """A new tab, attached, with network requests recorded from the start."""
    target = await devtools.call("Target.createTarget", url="about:blank")
    attached = await devtools.call(
        "Target.attachToTarget", targetId=target["targetId"], flatten=True
    )
    page = Page(devtools, attached["sessionId"])
    await page.call("Network.enable")
    await page.call("Page.enable")
    await page.call("Runtime.enable")
    return page
