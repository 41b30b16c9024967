"""Fuzz the API against its own OpenAPI schema with schemathesis, on PostgreSQL.

Creates a throw-away database, migrates it, seeds one company with an owner and one device
of each kind, serves the app with uvicorn on a free loopback port, and runs `st run` against
`/api/schema/` once per principal: the owner on the people-facing API, each device kind on
the device API. Every check is on; any finding (a server error, an answer the schema does
not describe, bad input accepted...) fails the run. The database is dropped at the end.

    FUZZ_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python tests/fuzz/run_schemathesis.py [--max-examples 10] [--seed N] [--only owner]
            [--include-path-regex '/webhook']

FUZZ_DATABASE_URL names the server (and a database to connect to for CREATE DATABASE); it
defaults to DATABASE_URL's server. The bounded example count keeps the step to a few minutes
on two cores; `--seed` repeats a run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.served import PYTHON, ROOT, app_on_postgres, postgres_server, run_django, serving

ST = str(Path(PYTHON).with_name("st"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Operations that end the owner's session: fuzzed last, each with an owner and a token of its own
# (fuzzed together, the first logout would leave the other only 401s).
SESSION_ENDING = {"logout": "/api/v1/auth/logout", "password": "/api/v1/auth/password"}
DEVICE_TAG = "device API"
# The device API operations each kind of device may call (any other answers 403).
DEVICE_PATHS = {
    "box": ["/api/v1/device/heartbeat", "/api/v1/device/events"],
    "pad": ["/api/v1/device/heartbeat", "/api/v1/device/events", "/api/v1/device/pad/config",
            "/api/v1/device/pad/location", "/api/v1/device/consent"],
    "tvbox": ["/api/v1/device/heartbeat", "/api/v1/device/tv-box/config"],
}  # fmt: skip

SEED = """
import json
import django
django.setup()
from accounts.authentication import token_pair_for
from accounts.models import Role
from accounts.services import company_create, user_create
from devices import services

company = company_create(name="Fuzz Company", slug="fuzz")
# The owner's id is no secret (schemathesis reads it from /me and /users and uses it in paths):
# nothing at /users/{id} ends one's own session (`cannot_change_self`, `own_password_needs_current`).
owner = user_create(company=company, actor=None, username="fuzz-owner", password="fuzz-owner-pass-2026",
                    role=Role.OWNER)
kw = {"company": company, "actor": owner}
box, box_key = services.box_create(name="Fuzz box", max_screens=4, **kw)
screen, _ = services.screen_create(name="Fuzz door", camera_url="rtsp://cam:pw@10.0.0.5/in", direction="in",
                                   box=box, **kw)
pad, pad_key = services.pad_create(name="Fuzz pad", screen=screen, **kw)
tvbox, tv_key = services.tvbox_create(name="Fuzz TV", screens=[screen], **kw)
print(json.dumps({"owner": token_pair_for(owner)["access"], "box": box_key, "pad": pad_key, "tvbox": tv_key}))
"""

# An owner whose session a session-ending operation ends: created only when its turn comes,
# since the owner's run may change, deactivate or delete any user it finds.
SESSION_SEED = """
import django
django.setup()
from accounts.authentication import token_pair_for
from accounts.models import Company, Role
from accounts.services import user_create

company = Company.objects.get(slug="fuzz")
user = user_create(company=company, actor=None, username="fuzz-session-%s", password="Wombat-Lantern-9137",
                   role=Role.OWNER)
print(token_pair_for(user)["access"])
"""


def run_schemathesis(base: str, header: str, selection: list[str], args, report_dir: Path, name: str) -> int:
    command = [
        ST, "--config-file", str(CONFIG), "run", f"{base}/api/schema/",
        "--url", base,
        "--checks", "all",
        "--max-examples", str(args.max_examples),
        "--header", f"Authorization: {header}",
        *selection,
        "--workers", "1",
        "--generation-database", "none",
        "--generation-with-security-parameters", "false",
        "--request-timeout", "30",
        "--report", "junit",
        "--report-junit-path", str(report_dir / f"{name}.xml"),
        "--no-color",
    ]  # fmt: skip
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    print(f"\n--- schemathesis as {name} ---", flush=True)
    return subprocess.run(command, cwd=report_dir).returncode  # its cache stays out of the tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 10)))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", choices=["owner", "session", "box", "pad", "tvbox"], action="append")
    parser.add_argument(
        "--include-path-regex", default=None, help="fuzz only the operations whose path matches (e.g. '/webhook')"
    )
    args = parser.parse_args()
    if not Path(ST).exists():
        sys.exit(f"fuzz: {ST} not found: pip install -r requirements/dev.txt")

    with app_on_postgres(postgres_server("FUZZ_DATABASE_URL"), "kangaroo_fuzz") as (env, var_dir):
        credentials = json.loads(run_django(env, SEED))

        def session_header(name: str):
            return lambda: f"Bearer {run_django(env, SESSION_SEED % name)}"

        principals = [  # devices first: the owner's run may rotate or delete their keys
            *(
                (kind, f"Device {credentials[kind]}", [arg for path in paths for arg in ("--include-path", path)])
                for kind, paths in DEVICE_PATHS.items()
            ),
            (
                "owner",
                f"Bearer {credentials['owner']}",
                ["--exclude-tag", DEVICE_TAG, *(a for p in SESSION_ENDING.values() for a in ("--exclude-path", p))],
            ),
            *(
                (f"session-{name}", session_header(name), ["--include-path", path])
                for name, path in SESSION_ENDING.items()
            ),
        ]
        failed = []
        with serving(env) as base:
            for name, header, selection in principals:
                if args.only and name.split("-")[0] not in args.only:
                    continue
                header = header() if callable(header) else header
                if args.include_path_regex:
                    selection = [*selection, "--include-path-regex", args.include_path_regex]
                if run_schemathesis(base, header, selection, args, var_dir, name) != 0:
                    failed.append(name)
                    reports = Path(os.environ.get("FUZZ_REPORT_DIR", ROOT / "var" / "fuzz"))
                    reports.mkdir(parents=True, exist_ok=True)
                    shutil.copy(var_dir / f"{name}.xml", reports / f"{name}.xml")
        if failed:
            print(f"\nfuzz: findings as {', '.join(failed)}", flush=True)
            return 1
        print("\nfuzz: no findings", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
