"""The agent's loop: keep the gallery in step, recognise what the camera sees, send events.

One thread does everything, in this order, every `tick`:

1. talk to the portal, unless it is being left alone after a failure (backoff): a heartbeat
   when the last answer's `next_heartbeat_in` has passed, a gallery pull when the heartbeat
   says the gallery moved on or `sync_every` has passed, then the outbox, in batches;
2. look at the source (watch folder or camera) and turn each face into an event in the
   outbox.

Recognition never waits for the portal: while it is unreachable or answering 5xx, events
pile up in the outbox (SQLite, see `kangaroo_box.store`) and the gallery stays as it was;
when it answers again, the outbox drains oldest first. A revoked key ends the loop.

The log has a line per change of state — `connected`, `lagging` (the portal has gallery
changes the box could not apply yet), `offline`, `resynced` — and per event the portal
refused, never a line per frame.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faces
from kangaroo_box import __version__
from kangaroo_box.backoff import Backoff
from kangaroo_box.portal import KeyRefused, Portal, Refused, ResyncRequired, Unreachable
from kangaroo_box.sources import CameraSource, FolderSource, Frame, Picture
from kangaroo_box.store import Store

log = logging.getLogger("kangaroo_box")

# Until the portal has told the box its company's threshold (the first heartbeat answer),
# the portal's own default is the best guess; a box never recognises before its first sync
# anyway, since its gallery comes from the same portal.
DEFAULT_THRESHOLD = 0.55
LOOK_SECONDS = 1.0  # the longest the loop looks at pictures before talking to the portal again
EXIT_STOPPED = 0
EXIT_CONFIGURATION = 2
EXIT_KEY_REFUSED = 3

CONNECTED, LAGGING, OFFLINE = "connected", "lagging", "offline"


class ConfigurationError(Exception):
    """Something only the person running the box can fix (a wrong screen, a wrong key)."""


@dataclass(frozen=True)
class Options:
    url: str
    key: str
    screen_id: int
    state: Path
    watch: Path | None = None
    camera: str | None = None
    fps: float = 2.0
    sync_every: float = 60.0
    batch_size: int = 100
    page_size: int = 1000
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    repeat_after: float = 10.0
    snapshot_max_kb: int = 64
    timeout: float = 20.0
    tick: float = 0.2


def company_of_key(key: str) -> str:
    """The company a box key belongs to: the key's public third part (`kgr_box_<company>_...`)."""
    parts = key.split("_", 4)
    if len(parts) != 5 or parts[0] != "kgr" or parts[1] != "box" or not parts[2].isdigit():
        raise ConfigurationError("this is not a box key (a box's key starts with kgr_box_)")
    return parts[2]


class Agent:
    def __init__(
        self,
        options: Options,
        *,
        portal: Portal | None = None,
        source: FolderSource | CameraSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.options = options
        self.clock = clock
        company = company_of_key(options.key)
        self.store = Store(options.state)
        if self.store.claim(company):
            log.warning("the state file held another company's gallery and events: they were dropped")
        self.portal = portal or Portal(options.url, options.key, timeout=options.timeout)
        if source is None:
            source = FolderSource(options.watch) if options.watch else CameraSource(options.camera, fps=options.fps)
        self.source = source
        self.backoff = Backoff(base=options.backoff_base, cap=max(options.backoff_max, options.backoff_base))
        self.index = faces.FaceIndex.from_rows(self.store.face_rows())
        self.state: str | None = None
        self.known_sequence: int | None = None
        self.next_heartbeat = 0.0
        self.next_sync = 0.0
        self.sync_wanted = True
        self.started = clock()
        self.stopping = threading.Event()
        self._etag: tuple[int, str] | None = None  # (cursor, ETag of the feed's answer there)
        self._recent: list[tuple[float, int | None, object]] = []  # camera: what was just reported

    # --- the loop -------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> int:
        subjects, held = self.store.counts()
        log.info(
            "starting: screen %s, gallery of %s subjects (%s faces) at cursor %s, %s events to send",
            self.options.screen_id,
            subjects,
            held,
            self.store.cursor,
            self.store.pending_count(),
        )
        try:
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(self.options.tick)
            log.info("stopped: %s events left to send", self.store.pending_count())
            return EXIT_STOPPED
        except KeyRefused as refusal:
            if refusal.revoked:
                log.error(
                    "stopped: the portal revoked this box's key (%s). Issue a new key for the box in "
                    "the portal and start the agent with it. %s events kept in %s.",
                    refusal.code,
                    self.store.pending_count(),
                    self.options.state,
                )
            else:
                log.error("stopped: the portal does not accept this box's key (%s): %s", refusal.code, refusal.message)
            return EXIT_KEY_REFUSED
        except ConfigurationError as problem:
            log.error("stopped: %s", problem)
            return EXIT_CONFIGURATION
        finally:
            self.close()

    def close(self) -> None:
        if isinstance(self.source, CameraSource):
            self.source.close()
        self.portal.close()
        self.store.close()

    def step(self) -> None:
        if self.backoff.ready(self.clock()):
            try:
                self.talk()
            except Unreachable as problem:
                delay = self.backoff.failed(self.clock(), at_least=problem.retry_after)
                self.set_state(
                    OFFLINE,
                    f"{problem}; trying again in {delay:.1f} s; {self.store.pending_count()} events kept",
                )
        self.look()

    def set_state(self, state: str, detail: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        level = logging.INFO if state == CONNECTED else logging.WARNING
        log.log(level, "%s%s", state, f": {detail}" if detail else "")

    # --- the portal -----------------------------------------------------------------------------

    def talk(self) -> None:
        if self.clock() >= self.next_heartbeat:
            self.heartbeat()
        if self.sync_wanted or self.clock() >= self.next_sync:
            self.sync()
        self.flush()
        self.backoff.succeeded()
        cursor = self.store.cursor
        if self.known_sequence is not None and cursor < self.known_sequence:
            self.set_state(LAGGING, f"gallery at {cursor}, the portal at {self.known_sequence}")
        else:
            subjects, held = self.store.counts()
            self.set_state(CONNECTED, f"{self.options.url}, {subjects} subjects ({held} faces) at cursor {cursor}")

    @property
    def threshold(self) -> float:
        stored = self.store.threshold
        return stored if stored is not None else DEFAULT_THRESHOLD

    def heartbeat(self) -> None:
        body = {
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": __version__,
            "uptime": int(self.clock() - self.started),
            "cameras": [{"screen_id": self.options.screen_id, "status": self.source.status()}],
            "gallery_cursor": self.store.cursor,
        }
        try:
            answer = self.portal.heartbeat(body)
        except KeyRefused:
            raise
        except Refused as refusal:
            if any(name.startswith("cameras") for name in refusal.fields):
                raise ConfigurationError(
                    f"the portal says screen {self.options.screen_id} is not one of this box's screens ({refusal})"
                ) from None
            log.warning("heartbeat refused: %s", refusal)
            self.next_heartbeat = self.clock() + 30
            return
        self.next_heartbeat = self.clock() + max(float(answer.get("next_heartbeat_in", 30)), 1.0)
        threshold = answer.get("match_threshold")
        if threshold is not None and threshold != self.store.threshold:
            self.store.set_threshold(threshold)
            log.info("match threshold %s", threshold)
        sequence = answer.get("gallery_sequence")
        if sequence is not None:
            self.known_sequence = int(sequence)
            if self.known_sequence != self.store.cursor:
                self.sync_wanted = True

    def sync(self) -> None:
        """Pull the gallery's changes after the cursor until there are no more."""
        applied, resynced = 0, False
        while True:
            cursor = self.store.cursor
            etag = self._etag[1] if self._etag and self._etag[0] == cursor else None
            try:
                page = self.portal.gallery(after=cursor, limit=self.options.page_size, etag=etag)
            except ResyncRequired:
                if resynced:  # cannot happen from 0; never loop on it
                    raise Unreachable("the gallery feed refuses cursor 0") from None
                self.store.clear_gallery()
                self._etag = None
                resynced = True
                continue
            if page.changes is None:  # 304: nothing new
                break
            if page.etag:
                self._etag = (cursor, page.etag)
            if page.changes or page.next != cursor:  # an idle poll writes nothing
                applied += self.store.apply(page.changes, next_cursor=page.next, model=faces.MODEL)
            self.known_sequence = max(self.known_sequence or 0, page.sequence or 0)
            if not page.more:
                break
        if applied or resynced:
            self.index = faces.FaceIndex.from_rows(self.store.face_rows())
        if resynced:
            subjects, held = self.store.counts()
            self.state = None  # the next state is logged again after this line
            log.warning(
                "resynced: the portal asked for the whole gallery again; %s subjects (%s faces) at cursor %s",
                subjects,
                held,
                self.store.cursor,
            )
        self.sync_wanted = False
        self.next_sync = self.clock() + self.options.sync_every

    def flush(self) -> None:
        """Send the outbox, oldest first, a batch at a time. A row leaves it once the portal
        has answered for it: stored, already stored (a retry), or refused for good."""
        while True:
            batch = self.store.pending(self.options.batch_size)
            if not batch:
                return
            try:
                results = self.portal.post_events([pending.item for pending in batch])
            except KeyRefused:
                raise
            except Refused as refusal:
                # The whole body refused: not these events' fault (they are checked one by
                # one), so keep them and try again later.
                raise Unreachable(f"events refused as a whole: {refusal}") from None
            answered = []
            for pending, result in zip(batch, results, strict=True):
                status = result.get("status")
                if status in ("created", "duplicate"):
                    answered.append(pending.id)
                elif status == "error":
                    error = result.get("error") or {}
                    log.warning(
                        "event %s refused by the portal, dropped: %s %s %s",
                        pending.uid,
                        error.get("code"),
                        error.get("message", ""),
                        error.get("fields", ""),
                    )
                    answered.append(pending.id)
            self.store.done(answered)
            if len(batch) < self.options.batch_size:
                return

    # --- recognition ----------------------------------------------------------------------------

    def look(self) -> None:
        # A folder that received hundreds of pictures at once is worked through a second at
        # a time, between turns with the portal: heartbeats and events keep going meanwhile.
        until = self.clock() + LOOK_SECONDS
        for seen in self.source.poll():
            if self.stopping.is_set() or self.clock() > until:
                return
            if isinstance(seen, Picture):
                self.take_picture(seen)
            else:
                self.take_frame(seen)

    def take_picture(self, picture: Picture) -> None:
        name = picture.path.name
        if self.store.file_recorded(*picture.key):
            self._finish(picture)  # its event was stored before the box stopped
            return
        try:
            image = faces.load_image(picture.path.read_bytes())
        except FileNotFoundError:
            return
        except (ValueError, OSError) as problem:
            log.warning("%s is not a picture (%s): moved to rejected/", name, problem)
            self._finish(picture, rejected=True)
            return
        item = self.recognise(image, taken_at=datetime.now(UTC), repeats=True)
        if item is not None:
            self.store.enqueue(item, file=picture.key)
        else:
            self.store.record_file(*picture.key)
        self._finish(picture)

    def _finish(self, picture: Picture, *, rejected: bool = False) -> None:
        try:
            self.source.finish(picture, rejected=rejected)
        except FileNotFoundError:
            pass
        except OSError as problem:
            log.warning("could not move %s out of the watch folder: %s", picture.path.name, problem)
            return  # the record stays: it will not be processed again
        self.store.forget_file(picture.path.name)

    def take_frame(self, frame: Frame) -> None:
        item = self.recognise(frame.image, taken_at=frame.taken_at, repeats=False)
        if item is not None:
            self.store.enqueue(item)

    def recognise(self, image, *, taken_at: datetime, repeats: bool) -> dict | None:
        """The event for the face in `image` (None without a face). `repeats`: every
        picture is an event (a watch folder); otherwise a camera's frames of a person still
        at the door within `repeat_after` seconds are one event."""
        face = faces.snapshot_face(image)
        if face is None:
            return None
        threshold = self.threshold
        match = self.index.identify(face.embedding, threshold) if len(self.index) else None
        if not repeats and self._repeated(match, face.embedding, threshold):
            return None
        item: dict = {
            "uid": uuid.uuid4().hex,
            "happened_at": taken_at.isoformat(timespec="milliseconds"),
            "screen_id": self.options.screen_id,
            "subject_id": match.subject_id if match else None,
        }
        if match is not None:
            # 1 for the same picture, falling as the face moves away from the enrolled one.
            item["confidence"] = round(min(max(1.0 - match.distance, 0.0), 1.0), 4)
            log.debug("recognised subject %s at %.3f", match.subject_id, match.distance)
        else:
            snapshot = faces.snapshot_jpeg(image, face, self.options.snapshot_max_kb * 1024)
            item["snapshot"] = base64.b64encode(snapshot).decode("ascii")
            log.debug("a stranger")
        return item

    def _repeated(self, match, embedding, threshold: float) -> bool:
        now = self.clock()
        self._recent = [seen for seen in self._recent if now - seen[0] < self.options.repeat_after]
        for _at, subject_id, seen_embedding in self._recent:
            if match is not None and subject_id == match.subject_id:
                return True
            if match is None and subject_id is None and faces.distance(embedding, seen_embedding) < threshold:
                return True
        self._recent.append((now, match.subject_id if match else None, embedding))
        return False
