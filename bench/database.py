"""The benchmarks' own PostgreSQL databases: each benchmark names one (BENCH_*_DATABASE_URL)
so that it never writes into a developer's database, and creates it on first use."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def ensure_database(url: str) -> None:
    """Create the database `url` names unless it exists (connecting to the server's
    `postgres` database to do so); the benchmark migrates it afterwards."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)
