"""Detect, check and embed one face with dlib.

Which detection is "the" face: the HOG detector also fires, with a low but positive
score, on face-like patterns (a badge, a patch on a suit), sometimes as large as the face.
The face is the detection with the best `score + ln(width)`: confidence first, and among
similar confidences the larger face, which is the one nearest the camera.

What counts as a second face (`multiple_faces`): another detection with a confident score
(`other_face_min_score`) and a comparable size (at least `other_face_ratio` of the face's
width). Two people side by side qualify; a face-like patch (scores under 0.3 on the
test portraits) or a passer-by far behind does not.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass, field

import dlib
import numpy as np
from PIL import Image

# Reason codes of an enrolment photo that cannot be used (also error codes of the portal).
NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
FACE_TOO_SMALL = "face_too_small"
FACE_NOT_FRONTAL = "face_not_frontal"
TOO_BLURRY = "too_blurry"
REASONS = (NO_FACE, MULTIPLE_FACES, FACE_TOO_SMALL, FACE_NOT_FRONTAL, TOO_BLURRY)

# Recorded with every stored embedding: embeddings of different models are not comparable,
# so a model change means re-enrolling every photo.
MODEL = "dlib-resnet-v1"
EMBEDDING_DIM = 128
CHIP_SIZE = 150  # the ResNet's input: an aligned 150 x 150 face chip
CHIP_PADDING = 0.25
# The pitch (nose below the eye line, in eye distances) of a face looking at the camera is
# 0.65-0.8; far outside, the head is tilted up or down.
PITCH_RANGE = (0.4, 1.1)


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the quality checks and how hard the detector looks.

    min_face_size: the face box's smaller side, in pixels of the image, for enrolment.
    min_sharpness: variance of the Laplacian on the aligned 150 px face chip; sharp photos
        measure 200-2000, a Gaussian blur of radius 2-4 px brings them under 10.
    max_yaw: how far the nose may sit off the middle of the eyes, in eye distances (a
        frontal face measures under 0.1, a half-profile 0.3 and more).
    other_face_min_score, other_face_ratio: what counts as a second face (module doc).
    upsample: detector upsampling; 1 finds faces down to about 40 px, 0 only from 80 px
        and is five times faster.
    detect_max_side: the image is scaled down to this longest side for detection only
        (landmarks and the descriptor use the full image), bounding its cost.
    """

    min_face_size: int = 80
    min_sharpness: float = 15.0
    max_yaw: float = 0.3
    other_face_min_score: float = 0.5
    other_face_ratio: float = 0.75
    upsample: int = 1
    detect_max_side: int = 800


DEFAULT_RULES = QualityRules()


@dataclass(frozen=True)
class Face:
    """One detected face. `box` is (left, top, right, bottom) in image pixels."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[tuple[int, int], ...]
    sharpness: float
    yaw: float
    pitch: float
    quality: float
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        left, top, right, bottom = self.box
        return min(right - left, bottom - top)

    def box_dict(self) -> dict[str, int]:
        left, top, right, bottom = self.box
        return {"left": left, "top": top, "right": right, "bottom": bottom}


@dataclass(frozen=True)
class Enrolment:
    face: Face | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


# --- Models -----------------------------------------------------------------------------


class _Models:
    def __init__(self) -> None:
        import face_recognition_models

        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self.descriptor = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


_models: _Models | None = None
_load_lock = threading.Lock()
# dlib's network keeps its activations in the model object and dlib lets other threads run
# meanwhile: concurrent calls (sync views in the ASGI server's threads, jobs in theirs) give
# wrong embeddings or crash the process (tests/faces/test_engine_threads.py). One call at a
# time per process rather than models per thread: a process has about as many cores to give
# as calls to run, and models per thread would cost 30 MB for every thread that ever enrolled.
_run_lock = threading.Lock()


def load_models() -> None:
    """Load the models now (they otherwise load on first use): about 0.1 s, 30 MB."""
    _get_models()


def _get_models() -> _Models:
    global _models
    if _models is None:
        with _load_lock:
            if _models is None:
                _models = _Models()
    return _models


# --- Images and embeddings --------------------------------------------------------------


def load_image(data: bytes) -> np.ndarray:
    """Decode image bytes (any format Pillow reads) to an RGB uint8 array.

    Raises ValueError on data that is not an image. EXIF orientation is not applied: the
    portal stores photos already upright (kangaroo.images).
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"not an image: {exc}") from None


def _as_rgb(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image, got shape {array.shape}")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype != np.uint8:
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    return np.asarray(embedding, dtype="<f4").reshape(EMBEDDING_DIM).tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4").astype(np.float32).reshape(EMBEDDING_DIM)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)))


# --- Detection and checks ---------------------------------------------------------------


@dataclass(frozen=True)
class _Detection:
    rect: dlib.rectangle
    score: float

    @property
    def width(self) -> int:
        return self.rect.width()

    @property
    def rank(self) -> float:
        return self.score + math.log(max(self.width, 1))


def _detect(models: _Models, image: np.ndarray, rules: QualityRules) -> list[_Detection]:
    height, width = image.shape[:2]
    scale = 1.0
    small = image
    if max(height, width) > rules.detect_max_side:
        scale = rules.detect_max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    rects, scores, _ = models.detector.run(small, rules.upsample, 0.0)
    found = []
    for rect, score in zip(rects, scores, strict=True):
        if scale != 1.0:
            rect = dlib.rectangle(
                round(rect.left() / scale),
                round(rect.top() / scale),
                round(rect.right() / scale),
                round(rect.bottom() / scale),
            )
        found.append(_Detection(rect, float(score)))
    found.sort(key=lambda detection: detection.rank, reverse=True)
    return found


def _laplacian_variance(chip: np.ndarray) -> float:
    grey = chip.astype(np.float32).mean(axis=2)
    # The middle 60% of the chip: the face itself, not the hair or background around it.
    margin = chip.shape[0] // 5
    grey = grey[margin:-margin, margin:-margin]
    laplacian = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def _pose(points: list[tuple[int, int]]) -> tuple[float, float]:
    """(yaw, pitch) from the 5 landmarks: two corners of each eye, then the nose.

    yaw: the nose's offset from the middle of the eyes along the eye line; pitch: its
    distance below the eye line. Both in eye distances, so independent of scale and roll.
    """
    p = np.asarray(points, dtype=np.float64)
    eye_a, eye_b, nose = p[0:2].mean(axis=0), p[2:4].mean(axis=0), p[4]
    axis = eye_a - eye_b
    eye_distance = float(np.hypot(*axis))
    if eye_distance < 1e-6:
        return 1.0, 0.0
    unit = axis / eye_distance
    offset = nose - (eye_a + eye_b) / 2
    yaw = float(offset @ unit) / eye_distance
    pitch = float(unit[0] * offset[1] - unit[1] * offset[0]) / eye_distance
    return yaw, pitch


def _quality(score: float, size: int, sharpness: float, yaw: float, rules: QualityRules) -> float:
    """0..1: the mean of detector confidence, size, sharpness and frontality, each 0..1."""
    parts = (
        min(max(score / 1.5, 0.0), 1.0),
        min(size / (2 * rules.min_face_size), 1.0),
        min(max(math.log10(max(sharpness, 1.0)) / 3, 0.0), 1.0),  # 1000 and more: 1
        max(1.0 - abs(yaw) / max(rules.max_yaw, 1e-6), 0.0),
    )
    return round(sum(parts) / len(parts), 4)


def _examine(models: _Models, image: np.ndarray, detection: _Detection, rules: QualityRules) -> tuple[Face, object]:
    shape = models.landmarks(image, detection.rect)
    points = [(point.x, point.y) for point in shape.parts()]
    chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    sharpness = _laplacian_variance(chip)
    yaw, pitch = _pose(points)
    rect = detection.rect
    height, width = image.shape[:2]
    box = (max(rect.left(), 0), max(rect.top(), 0), min(rect.right(), width), min(rect.bottom(), height))
    size = min(box[2] - box[0], box[3] - box[1])
    face = Face(
        box=box,
        score=round(detection.score, 4),
        landmarks=tuple(points),
        sharpness=round(sharpness, 2),
        yaw=round(yaw, 4),
        pitch=round(pitch, 4),
        quality=_quality(detection.score, size, sharpness, yaw, rules),
    )
    return face, chip


def _embed(models: _Models, chip) -> np.ndarray:
    # The chip overload: the same aligned chip `compute_face_descriptor(image, shape)`
    # would extract, without extracting it a second time.
    return np.asarray(models.descriptor.compute_face_descriptor(chip), dtype=np.float32)


def _with_embedding(face: Face, embedding: np.ndarray) -> Face:
    return Face(**{**face.__dict__, "embedding": embedding})


def enrol_face(image, rules: QualityRules = DEFAULT_RULES) -> Enrolment:
    """Find the one face of an enrolment photo and check it (checks in this order):

    no face → `no_face`; a second face (module doc) → `multiple_faces`; smaller than
    `min_face_size` → `face_too_small`; turned away → `face_not_frontal`; blurred →
    `too_blurry`; else usable, with its embedding. `image`: an RGB array or a PIL image.
    """
    image = _as_rgb(image)
    models = _get_models()
    with _run_lock:
        detections = _detect(models, image, rules)
        if not detections:
            return Enrolment(None, NO_FACE)
        best = detections[0]
        face, chip = _examine(models, image, best, rules)
        others = [
            other
            for other in detections[1:]
            if other.score >= rules.other_face_min_score and other.width >= rules.other_face_ratio * best.width
        ]
        if others:
            return Enrolment(face, MULTIPLE_FACES)
        if face.size < rules.min_face_size:
            return Enrolment(face, FACE_TOO_SMALL)
        if abs(face.yaw) > rules.max_yaw or not PITCH_RANGE[0] <= face.pitch <= PITCH_RANGE[1]:
            return Enrolment(face, FACE_NOT_FRONTAL)
        if face.sharpness < rules.min_sharpness:
            return Enrolment(face, TOO_BLURRY)
        return Enrolment(_with_embedding(face, _embed(models, chip)))


def snapshot_face(image, rules: QualityRules = DEFAULT_RULES) -> Face | None:
    """The best face of a camera snapshot with its embedding, or None if there is none.

    Nothing but the absence of a face rejects it: a door camera takes what it gets, and
    the match threshold decides. The quality fields are filled for the caller to log.
    """
    image = _as_rgb(image)
    models = _get_models()
    with _run_lock:
        detections = _detect(models, image, rules)
        if not detections:
            return None
        face, chip = _examine(models, image, detections[0], rules)
        return _with_embedding(face, _embed(models, chip))


# --- Snapshots ----------------------------------------------------------------------------------


def snapshot_jpeg(image, face: Face | None, max_bytes: int, *, max_side: int = 480) -> bytes:
    """A JPEG of `face` with the head around it (the whole image when `face` is None), at most
    `max_bytes` long: what a box sends with a stranger's event.

    The crop keeps half a face of margin on every side, so the portal's engine finds the face
    again in it (it groups strangers by their faces). It is scaled to `max_side`, then the
    quality steps down, then the size, until it fits. Raises ValueError if even a thumbnail
    does not fit (`max_bytes` far too small).
    """
    picture = Image.fromarray(_as_rgb(image))
    if face is not None:
        left, top, right, bottom = face.box
        margin = max(right - left, bottom - top) // 2
        picture = picture.crop(
            (
                max(left - margin, 0),
                max(top - margin, 0),
                min(right + margin, picture.width),
                min(bottom + margin, picture.height),
            )
        )
    side = min(max(picture.size), max_side)
    while side >= 48:
        scale = side / max(picture.size)
        sized = picture
        if scale < 1:
            sized = picture.resize(
                (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                Image.Resampling.BILINEAR,
            )
        for quality in (85, 70, 55, 40):
            out = io.BytesIO()
            sized.save(out, format="JPEG", quality=quality)
            if out.tell() <= max_bytes:
                return out.getvalue()
        side = int(side * 0.7)
    raise ValueError(f"no snapshot fits in {max_bytes} bytes")
