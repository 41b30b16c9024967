"""Live pages for the benchmarks, in child processes of the benchmark script (so that their
work is not what is measured), spoken to over stdin and stdout: a child prints "ready" once
every socket has its hello and, on "stop <file> <seconds>", one JSON line of what it heard.
The script starts a child with its own path and a flag, and the child's side runs before
the script sets Django up: this module imports nothing of the project.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

# --- in the benchmark's process -------------------------------------------------------------------


def start(script: str, flag: str, configs: list[dict]) -> list[subprocess.Popen]:
    """One child process per config: `python <script> <flag> <config as JSON>`."""
    return [
        subprocess.Popen(
            [sys.executable, script, flag, json.dumps(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for config in configs
    ]


def wait_ready(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        line = process.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the dashboards did not connect: {line!r}")


def tell(processes: list[subprocess.Popen], command: str) -> None:
    for process in processes:
        process.stdin.write(command + "\n")
        process.stdin.flush()


def stop(processes: list[subprocess.Popen], ids_file: Path, seconds: float) -> list:
    """Each child's report, once it has heard every id in `ids_file` or `seconds` passed."""
    tell(processes, f"stop {ids_file} {seconds}")
    return [json.loads(process.stdout.readline()) for process in processes]


# --- in a child -------------------------------------------------------------------------------------


def headers(config: dict) -> dict[str, str]:
    """A page of our own origin, signed in with the config's session cookie (none: anonymous)."""
    return {"Origin": config["origin"], **({"Cookie": config["cookie"]} if config["cookie"] else {})}


async def open_in_steps(openers: list[Callable[[asyncio.Event], Awaitable]], step: int) -> list[asyncio.Task]:
    """A task per opener (each sets its event once its socket has its hello), `step`
    handshakes at a time: a burst of handshakes is not what is measured. Prints "ready" once
    every socket is open."""
    readies = [asyncio.Event() for _ in openers]
    tasks = []
    for n, (opener, ready) in enumerate(zip(openers, readies, strict=True)):
        tasks.append(asyncio.create_task(opener(ready)))
        if n % step == step - 1:
            await asyncio.wait_for(ready.wait(), 60)
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
    print("ready", flush=True)
    return tasks


async def command() -> str:
    """The next line the benchmark's process sends."""
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def stop_command() -> tuple[Path, float]:
    """Waits for "stop <file> <seconds>": the file of the ids to hear, and how long to wait for them."""
    _stop, path, seconds = (await command()).split()
    return Path(path), float(seconds)
