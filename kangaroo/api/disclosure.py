"""Image links are opt-in: no disclosure of biometric data by default.

Photos, snapshots and signed consent forms are biometric data (GDPR Art. 9, BIPA). An answer
of the API carries links to them (`image_url`, `thumbnail_url`, `snapshot_url`, `photo_url`,
`evidence_url`) only when the caller asks, with `?include=images`, **and** may see faces
(`User.can_view_biometrics`: owners and admins). Otherwise those fields are present and
`null`, the same shape either way, so a generated client needs no second model:

- not asked: `null`, for everyone;
- asked without the permission (a viewer, an API key): 403 `biometrics_not_permitted`,
  before anything is read or written;
- a value other than `images` (exactly; a blank value is no question): 400 `validation_error`
  naming `include`.

A view opts in with `ImageLinksMixin` and lists its operations that answer such fields in
`image_link_actions`; `kangaroo.api.schema.AutoSchema` documents the parameter on exactly
those. Serializers ask `image_links_shown(self.context)`: without a request in their context
(a webhook, a listener) the answer is no.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from kangaroo import errors
from kangaroo.api.filters import BLANK_IS_ABSENT
from kangaroo.errors import KangarooError

INCLUDE = "include"
IMAGES = "images"
_DECIDED = "_kangaroo_image_links"

INCLUDE_IMAGES_PARAMETER = OpenApiParameter(
    INCLUDE,
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    enum=[IMAGES],
    extensions={BLANK_IS_ABSENT: True},  # `?include=` asks for nothing, as no `include` does
    description=(
        "`images`: answer the links to photos, thumbnails, snapshots and signed forms. Without it those "
        "fields are null. Only for roles that may see faces (owners, admins): anyone else asking gets 403 "
        "`biometrics_not_permitted`."
    ),
)


def images_included(request) -> bool:
    """Whether this request asked for image links and may have them; raises the coded error
    when the question is malformed or the requester may not see faces. Decided once per
    request."""
    decided = getattr(request, _DECIDED, None)
    if decided is not None:
        return decided
    params = getattr(request, "query_params", None)
    if params is None:
        params = getattr(request, "GET", {})
    value = params.get(INCLUDE) or ""
    if not value:
        decided = False
    elif value != IMAGES:
        message = _("Only “images” may be included.")
        raise KangarooError(errors.VALIDATION_ERROR, message, fields={INCLUDE: [str(message)]})
    elif not getattr(request.user, "can_view_biometrics", False):
        raise KangarooError(errors.BIOMETRICS_NOT_PERMITTED)
    else:
        decided = True
    setattr(request, _DECIDED, decided)
    return decided


def image_links_shown(context: dict[str, Any]) -> bool:
    """For a serializer: render image links? Only for a request that asked and may."""
    request = context.get("request")
    return request is not None and images_included(request)


class ImageLinksMixin:
    """For a view whose answers carry image links: checks `?include=` before the view runs,
    so a refused request reads and writes nothing. `image_link_actions` names the view set's
    actions that answer such links (an APIView: leave it None, every method does)."""

    image_link_actions: frozenset[str] | None = None

    def answers_image_links(self) -> bool:
        actions = self.image_link_actions
        return actions is None or getattr(self, "action", None) in actions

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.answers_image_links():
            images_included(request)
