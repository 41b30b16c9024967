"""The Django side of the face engine: its rules from the settings.

(The per-company face index and `identify` / `search` for the recognition endpoints follow.)
"""

from __future__ import annotations

from django.conf import settings

import faces


def face_rules() -> faces.QualityRules:
    """The quality rules of enrolment (and the detector's effort) from the settings."""
    return faces.QualityRules(
        min_face_size=settings.FACE_MIN_SIZE,
        min_sharpness=settings.FACE_MIN_SHARPNESS,
        max_yaw=settings.FACE_MAX_YAW,
        upsample=settings.FACE_UPSAMPLE,
        detect_max_side=settings.FACE_DETECT_MAX_SIDE,
    )
