"""The box agent runs on a box without the portal: it imports `faces`, `httpx` and the standard
library (and OpenCV, lazily, for a camera), never Django nor any of the portal's apps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.imports import imported_modules

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {"faces", "httpx", "kangaroo_box", "__future__"}
LAZY = {"cv2"}  # the camera's optional dependency, imported inside CameraSource only
PORTAL = ["django", "rest_framework", "kangaroo", "accounts", "subjects", "devices", "events", "privacy",
          "integrations", "visits", "tests"]  # fmt: skip

BLOCKER = """
import importlib.abc, sys

class NoPortal(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not on a box")
        return None

sys.meta_path.insert(0, NoPortal())
import kangaroo_box, kangaroo_box.cli, kangaroo_box.agent, kangaroo_box.portal, kangaroo_box.store
import kangaroo_box.sources, kangaroo_box.backoff
from kangaroo_box.agent import Agent, Options
store = kangaroo_box.store.Store(":memory:")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {blocked!r})
print("loaded:", loaded)
"""


def test_the_agent_imports_only_faces_httpx_and_the_standard_library():
    found = {}
    for path in sorted((REPO / "kangaroo_box").glob("*.py")):
        others = imported_modules(path) - ALLOWED - set(sys.stdlib_module_names)
        if path.name == "sources.py":
            others -= LAZY
        found[path.name] = others
    assert "agent.py" in found and not any(found.values()), found


def test_the_agent_loads_with_django_unimportable():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=set(PORTAL))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded: []"


def test_a_camera_without_opencv_is_a_clear_message():
    blocker = BLOCKER.format(blocked={"cv2"}) + "kangaroo_box.sources.CameraSource('rtsp://camera/stream')\n"
    done = subprocess.run([sys.executable, "-c", blocker], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "reading a camera needs OpenCV: pip install opencv-python-headless" in done.stderr
