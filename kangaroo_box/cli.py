"""`python -m kangaroo_box`: the options, the log, and stopping on SIGTERM (systemd's stop)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from kangaroo_box import __version__

KEY_VARIABLE = "KANGAROO_BOX_KEY"


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be more than 0")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kangaroo_box",
        description="The Kangaroo recognition box: pulls the company's gallery from the portal, recognises "
        "faces from a camera or a watch folder, and posts the events (kept in an outbox while the portal "
        "cannot be reached).",
    )
    p.add_argument("--url", required=True, help="The portal's address, e.g. https://portal.example.com")
    p.add_argument(
        "--key",
        default=os.environ.get(KEY_VARIABLE),
        help=f"The box's device key (kgr_box_...). Better: set {KEY_VARIABLE}, which other users cannot see in ps.",
    )
    p.add_argument("--screen", type=_positive(int), required=True, help="The id of the screen (camera) in the portal.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", help="A camera stream (rtsp://..., http://...) or device number; needs OpenCV.")
    source.add_argument("--watch", type=Path, help="A folder: each picture dropped into it is recognised once.")
    p.add_argument(
        "--state",
        type=Path,
        default=Path("kangaroo-box.sqlite3"),
        help="The SQLite file of the gallery, the cursor and the outbox (default: ./kangaroo-box.sqlite3).",
    )
    p.add_argument(
        "--sync-every",
        type=_positive(float),
        default=60.0,
        help="Seconds between gallery pulls besides those the heartbeat asks for (default 60).",
    )
    p.add_argument("--batch-size", type=int, choices=range(1, 501), default=100, metavar="1-500",
                   help="Events per post (default 100).")  # fmt: skip
    p.add_argument(
        "--backoff-max",
        type=_positive(float),
        default=60.0,
        help="The longest wait between tries while the portal cannot be reached, in seconds (default 60).",
    )
    p.add_argument("--fps", type=_positive(float), default=2.0, help="Camera frames recognised per second (default 2).")
    p.add_argument(
        "--repeat-after",
        type=float,
        default=10.0,
        help="Camera: the same person seen again within these seconds is not a new event (default 10).",
    )
    p.add_argument(
        "--snapshot-max-kb",
        type=_positive(int),
        default=64,
        help="The largest stranger snapshot sent, in KiB: the portal's EVENT_SNAPSHOT_MAX_KB (default 64).",
    )
    p.add_argument(
        "--timeout", type=_positive(float), default=20.0, help="Seconds to wait for the portal (default 20)."
    )
    p.add_argument("--verbose", "-v", action="store_true", help="Also log each recognition.")
    p.add_argument("--version", action="version", version=f"kangaroo_box {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.key:
        parser().error(f"give the box's key with --key or in {KEY_VARIABLE}")
    if not args.url.startswith(("http://", "https://")):
        parser().error("--url must start with https:// (or http://)")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is not a state change
    logging.getLogger("httpcore").setLevel(logging.WARNING)

    # Imported here: `--help` answers without loading the face engine.
    from kangaroo_box.agent import EXIT_CONFIGURATION, Agent, ConfigurationError, Options

    options = Options(
        url=args.url,
        key=args.key,
        screen_id=args.screen,
        state=args.state,
        watch=args.watch,
        camera=args.camera,
        fps=args.fps,
        sync_every=args.sync_every,
        batch_size=args.batch_size,
        backoff_max=args.backoff_max,
        repeat_after=args.repeat_after,
        snapshot_max_kb=args.snapshot_max_kb,
        timeout=args.timeout,
    )
    try:
        agent = Agent(options)
    except ConfigurationError as problem:
        logging.getLogger("kangaroo_box").error("stopped: %s", problem)
        return EXIT_CONFIGURATION
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: agent.stop())
    return agent.run()
