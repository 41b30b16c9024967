"""Kangaroo's face engine: a plain library, no Django, no database.

Anyone may import it: the portal's enrolment jobs and recognition endpoints, and the box
agent, which runs without Django. It wraps dlib (the `dlib-bin` wheel) with the model
files of the `face_recognition_models` package: HOG frontal face detector, 5-point
landmarks, ResNet 128-d descriptor. Models load lazily, once per process.

The interface (everything else is private):

- `load_image(data) -> np.ndarray`: JPEG/PNG/... bytes to an RGB uint8 array.
- `enrol_face(image, rules) -> Enrolment`: the one face of an enrolment photo, checked for
  quality. `Enrolment.reason` is "" (usable; `.face.embedding` is set) or one of the reason
  codes `NO_FACE`, `MULTIPLE_FACES`, `FACE_TOO_SMALL`, `FACE_NOT_FRONTAL`, `TOO_BLURRY`
  (`.face` is then set too, except for `NO_FACE`, with its box but no embedding).
- `snapshot_face(image, rules) -> Face | None`: the best face of a camera snapshot, with
  its embedding, rejected for nothing but the absence of a face (recognition).
- `FaceIndex`: float32 matrix of embeddings with the subject (and photo) of each row;
  `identify(embedding, threshold)`, `search(embedding, k)`, `nearest(embedding)`.
- `embedding_to_bytes` / `embedding_from_bytes` / `distance`; `MODEL` (the name and version
  recorded with each stored embedding: an embedding of another model is never compared).
- `QualityRules`: the thresholds (the portal fills it from its settings).
- `snapshot_jpeg(image, face, max_bytes)`: the face and the head around it as a JPEG of at
  most `max_bytes` (what a box sends with a stranger's event).

Distances are Euclidean between 128-d descriptors, as dlib defines them: the same person
is typically under 0.5, different people over 0.6.
"""

from faces.engine import (
    EMBEDDING_DIM,
    FACE_NOT_FRONTAL,
    FACE_TOO_SMALL,
    MODEL,
    MULTIPLE_FACES,
    NO_FACE,
    REASONS,
    TOO_BLURRY,
    Enrolment,
    Face,
    QualityRules,
    distance,
    embedding_from_bytes,
    embedding_to_bytes,
    enrol_face,
    load_image,
    load_models,
    snapshot_face,
    snapshot_jpeg,
)
from faces.index import FaceIndex, Match

__all__ = [
    "EMBEDDING_DIM",
    "FACE_NOT_FRONTAL",
    "FACE_TOO_SMALL",
    "MODEL",
    "MULTIPLE_FACES",
    "NO_FACE",
    "REASONS",
    "TOO_BLURRY",
    "Enrolment",
    "Face",
    "FaceIndex",
    "Match",
    "QualityRules",
    "distance",
    "embedding_from_bytes",
    "embedding_to_bytes",
    "enrol_face",
    "load_image",
    "load_models",
    "snapshot_face",
    "snapshot_jpeg",
]
