"""Where pictures come from: a folder that pictures are dropped into, or a camera stream.

A watch folder takes JPEG, PNG, WebP... files (whatever the face engine decodes). A picture
is processed once: afterwards it is moved into `done/` inside the folder (a file that is not
a picture goes to `rejected/`), and it is recorded in the box's state file together with its
event until it has been moved, so a box stopped in between does not count it twice. Files
whose name starts with a dot are ignored: write a picture under such a name and rename it,
or the box waits until the file's size stops changing between two looks.

A camera (`rtsp://`, `http://` or a device number) is read with OpenCV, which is an optional
dependency (`opencv-python-headless`), imported only when a camera is asked for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("kangaroo_box")

DONE = "done"
REJECTED = "rejected"
CAMERA_OK, CAMERA_NO_SIGNAL, CAMERA_ERROR = "ok", "no_signal", "error"


@dataclass(frozen=True)
class Picture:
    """A file of the watch folder, as seen when it was listed."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.path.name, self.size, self.mtime_ns)


@dataclass(frozen=True)
class Frame:
    """A camera frame: RGB pixels and when it was taken."""

    image: object  # an RGB uint8 array
    taken_at: datetime


class FolderSource:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / DONE).mkdir(exist_ok=True)
        (self.folder / REJECTED).mkdir(exist_ok=True)
        self._sizes: dict[str, int] = {}

    def status(self) -> str:
        return CAMERA_OK if self.folder.is_dir() and os.access(self.folder, os.R_OK | os.W_OK) else CAMERA_ERROR

    def poll(self) -> list[Picture]:
        """The pictures ready to be processed, oldest first. A file is ready once its size
        was the same at two looks (a copy still being written is left for later)."""
        try:
            entries = [entry for entry in os.scandir(self.folder) if entry.is_file() and not entry.name.startswith(".")]
        except OSError:
            return []
        ready, sizes = [], {}
        for entry in entries:
            try:
                stat = entry.stat()
            except OSError:  # gone meanwhile
                continue
            sizes[entry.name] = stat.st_size
            if self._sizes.get(entry.name) == stat.st_size:
                ready.append(Picture(Path(entry.path), stat.st_size, stat.st_mtime_ns))
        self._sizes = sizes
        ready.sort(key=lambda picture: (picture.mtime_ns, picture.path.name))
        return ready

    def finish(self, picture: Picture, *, rejected: bool = False) -> None:
        """Move the picture out of the way: into `done/`, or `rejected/` for a file that is
        not a picture. A name already there gets a number."""
        target_dir = self.folder / (REJECTED if rejected else DONE)
        target_dir.mkdir(exist_ok=True)  # someone may have removed it meanwhile
        target = target_dir / picture.path.name
        number = 1
        while target.exists():
            target = target_dir / f"{picture.path.stem}.{number}{picture.path.suffix}"
            number += 1
        os.replace(picture.path, target)
        self._sizes.pop(picture.path.name, None)


class CameraSource:
    """Reads a stream in a thread of its own and keeps only the latest frame: recognition
    takes `fps` frames a second of the newest, never a backlog of old ones."""

    def __init__(self, url: str, *, fps: float = 2.0, reconnect_after: float = 5.0):
        try:
            import cv2  # optional: only a box with a camera needs it
        except ImportError:
            raise SystemExit(
                "kangaroo_box: reading a camera needs OpenCV: pip install opencv-python-headless "
                "(or use --watch <folder>)"
            ) from None
        self._cv2 = cv2
        self.url = int(url) if url.isdigit() else url
        self.interval = 1.0 / fps
        self.reconnect_after = reconnect_after
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._last_frame_at = 0.0
        self._opened = False
        self._taken = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="camera", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        cv2 = self._cv2
        while not self._stop.is_set():
            capture = cv2.VideoCapture(self.url)
            self._opened = capture.isOpened()
            while self._opened and not self._stop.is_set():
                ok, bgr = capture.read()
                if not ok:
                    break
                frame = Frame(image=bgr[:, :, ::-1], taken_at=datetime.now(UTC))  # OpenCV's BGR to RGB
                with self._lock:
                    self._latest = frame
                    self._last_frame_at = time.monotonic()
            capture.release()
            self._opened = False
            self._stop.wait(self.reconnect_after)

    def status(self) -> str:
        if not self._opened:
            return CAMERA_ERROR if self._last_frame_at == 0.0 else CAMERA_NO_SIGNAL
        return CAMERA_OK if time.monotonic() - self._last_frame_at < self.reconnect_after else CAMERA_NO_SIGNAL

    def poll(self) -> list[Frame]:
        now = time.monotonic()
        if now - self._taken < self.interval:
            return []
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is None:
            return []
        self._taken = now
        return [frame]

    def close(self) -> None:
        self._stop.set()
