"""Screenshots of the browser tests, for a person to look at: into KANGAROO_SCREENSHOTS when
it is set, else into the test's own `tmp_path` when the test gives one, else nowhere."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError

SCREENSHOTS = os.environ.get("KANGAROO_SCREENSHOTS", "")

# Chromium sometimes has no frame ready for a full-page capture on a busy machine ("Unable to
# capture screenshot"); the page itself is fine, and a moment later the capture works.
ATTEMPTS = 3


def screenshot(page, name: str, tmp_path: Path | None = None) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            return
        except PlaywrightError as exc:
            if "Unable to capture screenshot" not in str(exc) or attempt == ATTEMPTS:
                raise
            page.wait_for_timeout(500 * attempt)
