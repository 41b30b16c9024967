"""The real portal and the real agent, for the box tests.

`portal` serves the portal's ASGI application with uvicorn on a loopback port, in a thread of
the test process: it shares the test database, so the test enrols, deletes and revokes
through the portal's services and reads the events it stored. It can be stopped and started
again on the same port, as an outage looks to a box. `agent` starts `python -m kangaroo_box`
as a separate process, as a box runs it, with a watch folder and a state file of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from devices import services as device_services
from tests.served import free_port

REPO = Path(__file__).resolve().parents[2]
SYNC_EVERY = 1.0  # seconds between the agent's gallery pulls in these tests


def wait_for(check: Callable[[], object], timeout: float, what: str, *, agent: Agent | None = None):
    """`check()`'s first true value, looking every 0.1 s; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if agent is not None and agent.process.poll() is not None:
            pytest.fail(f"the agent stopped ({agent.process.returncode}) while waiting for {what}:\n{agent.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}" + (f"\n{agent.log()}" if agent else ""))
        time.sleep(0.1)


class Portal:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread = None

    def start(self) -> None:
        import uvicorn

        from kangaroo.asgi import application

        self._server = uvicorn.Server(
            uvicorn.Config(application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the portal did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None


@pytest.fixture
def portal(transactional_db, settings):
    settings.DEVICE_OFFLINE_AFTER = 10  # the shortest: the portal asks for a heartbeat every 3 s
    server = Portal()
    server.start()
    yield server
    server.stop()


@dataclass
class Door:
    box: object
    key: str
    screen: object


@pytest.fixture
def door(tenant_a) -> Door:
    kwargs = {"company": tenant_a.company, "actor": tenant_a.admin}
    box, key = device_services.box_create(name="Lobby box", max_screens=2, **kwargs)
    screen, _ = device_services.screen_create(
        name="Front door", camera_url="rtsp://cam:secret@10.0.0.5/in", direction="in", box=box, **kwargs
    )
    return Door(box, key, screen)


class Agent:
    def __init__(self, folder: Path, command: list[str], log_path: Path):
        self.folder = folder
        self.command = command
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._dropped = 0

    def start(self) -> None:
        # Not the portal's environment: no settings module; the agent must not need one.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO, env=env, stdout=log, stderr=log)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def drop(self, picture: bytes, name: str | None = None) -> str:
        """Put a picture into the watch folder the way a camera's uploader should: written
        under a hidden name, then renamed."""
        self._dropped += 1
        name = name or f"frame-{self._dropped:04d}.jpg"
        hidden = self.folder / f".{name}.part"
        hidden.write_bytes(picture)
        os.replace(hidden, self.folder / name)
        return name

    def done(self) -> list[str]:
        return sorted(path.name for path in (self.folder / "done").iterdir()) if (self.folder / "done").exists() else []


@pytest.fixture
def run_agent(tmp_path, door, portal):
    """run_agent(**options) -> a started Agent for `door`'s box, stopped at the end."""
    started: list[Agent] = []

    def start(*extra: str) -> Agent:
        folder = tmp_path / "watch"
        command = [sys.executable, "-m", "kangaroo_box", "--url", portal.url, "--key", door.key,
                   "--screen", str(door.screen.pk), "--watch", str(folder), "--state", str(tmp_path / "box.sqlite3"),
                   "--sync-every", str(SYNC_EVERY), "--backoff-max", "1", *extra]  # fmt: skip
        agent = Agent(folder, command, tmp_path / "agent.log")
        agent.start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
