"""The app served as a client meets it, for the scripts that test or measure it from outside
the process: the schemathesis fuzzing step (tests/fuzz/run_schemathesis.py), the
generated-client step (tests/clients/run_clients.py) and the benchmarks under bench/.

`app_on_postgres()` creates a throw-away PostgreSQL database, migrates it and yields the
environment of a production-shaped server (DEBUG off, its own secret key and media folder,
no Redis: jobs run inline); a `Server` runs uvicorn with an environment on a free loopback
port until its `stop()`, and `serving()` does so for the length of a block. The
database is dropped and the folder removed at the end, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def postgres_server(variable: str) -> str:
    """The PostgreSQL server named by `variable`, else by DATABASE_URL."""
    url = os.environ.get(variable) or os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgres"):
        sys.exit(f"set {variable} (or DATABASE_URL) to a PostgreSQL server")
    return url


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@contextmanager
def throwaway_database(url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def app_on_postgres(server: str, prefix: str) -> Iterator[tuple[dict[str, str], Path]]:
    """(environment, its scratch folder) of a migrated app on a database of its own."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        with throwaway_database(server, prefix) as database_url:
            env = {
                **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KANGAROO_REQUIRE_SERVICES")},
                "DJANGO_SETTINGS_MODULE": "kangaroo.settings",
                "DATABASE_URL": database_url,
                "VAR_DIR": str(var_dir),
                "MEDIA_ROOT": str(var_dir / "media"),
                "SECRET_KEY": secrets.token_urlsafe(50),
                "DEBUG": "false",
                "SECURE_SSL_REDIRECT": "false",
                "SECURE_COOKIES": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "JWT_ACCESS_SECONDS": "3600",
                "LOGIN_FAILURE_LIMIT": "1000000",
            }
            subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
            yield env, var_dir
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run_django(env: dict[str, str], code: str) -> str:
    """Run `code` (which calls django.setup()) against the app; its last line of output."""
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"preparing the data failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`uvicorn kangaroo.asgi:application` on a free loopback port, answering at `base`."""

    def __init__(self, env: dict[str, str], *, app: str = "kangaroo.asgi:application", workers: int = 1,
                 ready_path: str = "/api/schema/", quiet: bool = False, start_within: float = 60,
                 extra_args: Sequence[str] = ()) -> None:  # fmt: skip
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(self.port),
                   "--lifespan", "off", "--log-level", "warning", "--no-access-log", *extra_args]  # fmt: skip
        if workers > 1:  # one worker is uvicorn's default, without a supervising process
            command += ["--workers", str(workers)]
        output = subprocess.DEVNULL if quiet else None
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        try:
            self._wait_until_ready(ready_path, start_within)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, path: str, seconds: float) -> None:
        """Until `path` answers below 500 (a 401 or 405 is an answer: the app is up)."""
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited while starting")
            try:
                urllib.request.urlopen(f"{self.base}{path}", timeout=5).read()
                return
            except urllib.error.HTTPError as answer:
                if answer.code < 500:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def serving(env: dict[str, str], **options) -> Iterator[str]:
    """The base URL of the app served by uvicorn, up until the block ends."""
    server = Server(env, **options)
    try:
        yield server.base
    finally:
        server.stop()
