"""The Kangaroo box agent: what runs on a recognition box next to a camera.

    python -m kangaroo_box --url https://portal.example.com --key kgr_box_... --screen 7 \\
        --camera rtsp://viewer:secret@10.0.0.21/stream1 --state /var/lib/kangaroo-box/state.sqlite3

It keeps a copy of its company's gallery (pulled from the portal's gallery feed) in a local
SQLite file, recognises faces with the same engine as the portal (`faces`) and the company's
threshold, and posts the events in batches, keeping them in an outbox while the portal is
unreachable. It runs without the portal's code: it imports `faces`, `httpx` and the standard
library only (and OpenCV for a camera, when installed), never Django.
"""

__version__ = "1.0.0"
