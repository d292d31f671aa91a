"""What upload_url, upload_status and the gallery indexer share about an upload.

The content types a phone may send, the reason codes of a rejected photo with the
sentence the phone shows for each (:data:`REASONS`, :func:`rejection_message`), and
the grace after a link's expiry before a pending upload counts as expired. The
functions themselves are :mod:`oneeye.cloud.functions.upload_url`,
:mod:`~oneeye.cloud.functions.upload_status` and
:mod:`~oneeye.cloud.functions.gallery_indexer`.
"""

from __future__ import annotations

import re

CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png"}
#: The largest photo an upload may be, bytes, by default: the presigned POST's limit, which
#: the indexer re-checks (``UPLOAD_MAX_BYTES`` changes it in the cloud); the desk's customer
#: photos and ``oneeye amber`` keep to it too.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
#: A photo that must be converted to JPEG first (WebP, TIFF, BMP, an oversized JPEG …) is
#: sent at most this many px on its longer side: enrolment needs a face of ~80 px, and a
#: phone's 4000 px original is megabytes the indexer would only scale down.
CONVERTED_MAX_SIDE = 1600
#: Seconds after the link's expiry before a still-pending upload counts as expired
#: (an upload that started just before expiry may still be arriving).
EXPIRY_GRACE_S = 60

#: Reason code → what the phone shows, for upload_status and the indexer alike (the
#: indexer's own sentence, when it says more, goes in ``detail``).
REASONS = {
    "no_face": "no face found — use a photo where the face is clearly visible",
    "several_faces": "{count} faces — crop to one person",
    "face_too_small": "face too small — use a closer photo, or crop around the face",
    "too_blurred": "face too blurred — use a sharper photo",
    "too_dark": "face too dark — use a brighter photo",
    "too_large": "file too large — use a photo under {mb} MB",
    "not_an_image": "not an image — use a JPEG or PNG photo",
    "unreadable": "the photo could not be read (corrupt or cut off) — take it again",
    "invalid_id": "invalid case or customer id — use 1–128 letters, digits and _.:@-",
    "expired": "the upload link expired before the photo arrived — try again",
    "refused": "the photo did not match its upload link (late, revoked or another type) — "
               "request a new link",
}
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


def rejection_message(reason: str, detail: str, max_bytes: int) -> str:
    template = REASONS.get(reason)
    if template is None:
        return detail or f"rejected ({reason or 'no reason given'})"
    m = re.search(r"(\d+) faces", detail)
    count = int(m.group(1)) if m else 2
    return template.format(count=_NUMBERS.get(count, str(count)), mb=max_bytes >> 20)
