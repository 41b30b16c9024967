"""The app served as a client meets it, for the scripts that test it from outside the process:
the schemathesis fuzzing step (tests/fuzz/run_schemathesis.py) and the generated-client step
(tests/clients/run_clients.py).

`app_on_postgres()` creates a throw-away PostgreSQL database, migrates it and yields the
environment of a production-shaped server (DEBUG off, its own secret key and media folder,
no Redis: jobs run inline); `serving()` runs uvicorn with it on a free loopback port until the
block ends. The database is dropped and the folder removed at the end, whatever happened.
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
import urllib.request
from collections.abc import Iterator
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


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """The base URL of the app served by uvicorn, up until the block ends."""
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "kangaroo.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--lifespan", "off"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
