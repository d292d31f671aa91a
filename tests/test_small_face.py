"""A missing person's only photo is small (issue 24 §9).

An officer's only photo of a missing person often has a 36–40 px face; it was refused
as "face too small" and the case stayed pending. On the ``missing`` watchlist such a face
is now enrolled from a 2× enlarged copy with a visible ``low_resolution`` warning (the
upload status the phone shows, the case record, ``gallery build``'s report); faces under
20 px are still refused. ``customers`` keeps refusing faces under 40 px (a bank can take
another photo; a weak gallery entry costs every visit).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from oneeye import faces
from oneeye import gallery as gal
from oneeye.cloud.dal import gallery_store, store
from oneeye.errors import EnrolmentRejected
from oneeye.gallery.enrol import LOW_RESOLUTION
from oneeye.ids import new_id
from tests.cloud_support import put_upload, run_queue

ONEEYE = [sys.executable, "-m", "oneeye.cli"]
PERSON = "Hans_Blix"


def _shrunk(photo: Path, face_px: int) -> bytes:
    """``photo`` scaled so its face box is ~``face_px``, on a 200x240 grey card (JPEG)."""
    image = faces.load_image(photo)
    (top, right, bottom, left), = faces.detect(image)
    s = face_px / min(bottom - top, right - left)
    small = cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)),
                       interpolation=cv2.INTER_AREA)
    card = np.full((240, 200, 3), 128, np.uint8)
    h, w = small.shape[:2]
    card[60:60 + h, 50:50 + w] = small
    buf = io.BytesIO()
    Image.fromarray(card).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def person_photos(lfw: Path) -> list[Path]:
    return sorted((lfw / "gallery" / PERSON).iterdir()) + sorted(
        (lfw / "probes" / PERSON).iterdir())


def test_a_38px_face_enrols_on_missing_with_the_warning(person_photos: list[Path],
                                                        lfw: Path) -> None:
    small = _shrunk(person_photos[0], 38)
    done = gal.enrol_photo(small, gal.policy_for("missing"))
    assert done.warning == LOW_RESOLUTION and 30 <= done.face_px < 40
    assert "low-resolution photo" in done.message and f"{done.face_px} px" in done.message
    # it is the person: nearer their other photo than anyone else's
    other = gal.encode_enrolment_photo(person_photos[1])
    stranger = gal.encode_enrolment_photo(sorted((lfw / "impostors").iterdir())[0])
    assert np.linalg.norm(done.encoding - other) < 0.5 < np.linalg.norm(done.encoding - stranger)


def test_the_same_photo_is_still_refused_for_customers(person_photos: list[Path]) -> None:
    with pytest.raises(EnrolmentRejected) as err:
        gal.enrol_photo(_shrunk(person_photos[0], 38), gal.policy_for("customers"))
    assert err.value.reason == "face_too_small" and "need at least 40 px" in str(err.value)


def test_a_face_that_cannot_be_encoded_is_refused_even_for_missing(
        person_photos: list[Path]) -> None:
    with pytest.raises(EnrolmentRejected) as err:
        gal.enrol_photo(_shrunk(person_photos[0], 12), gal.policy_for("missing"))
    assert err.value.reason in {"no_face", "face_too_small"}


def test_a_full_size_photo_has_no_warning(person_photos: list[Path]) -> None:
    done = gal.enrol_photo(person_photos[0], gal.policy_for("missing"))
    assert done.warning is None and done.message == "" and done.face_px >= 40


def test_gallery_build_reports_the_warning(person_photos: list[Path], tmp_path: Path) -> None:
    (tmp_path / "src" / "MP-2026-0038").mkdir(parents=True)
    (tmp_path / "src" / "MP-2026-0038" / "only.jpg").write_bytes(_shrunk(person_photos[0], 38))
    for watchlist, enrolled in (("missing", 1), ("customers", 0)):
        proc = subprocess.run(
            [*ONEEYE, "gallery", "build", str(tmp_path / "src"), "--watchlist", watchlist,
             "--out", str(tmp_path / f"{watchlist}.npz")],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert f"{enrolled} identities" in proc.stdout, proc.stdout
        if enrolled:
            assert "warning" in proc.stdout and "low-resolution photo" in proc.stdout
        else:
            assert "face_too_small" in proc.stdout


def test_the_phone_and_the_case_see_the_warning(cloud_env: dict[str, str],
                                                person_photos: list[Path]) -> None:
    upload_id = new_id()
    key = f"uploads/missing/MP-2026-0038/{upload_id}.jpg"
    put_upload(cloud_env, key, _shrunk(person_photos[0], 38),
               **{"case-id": "MP-2026-0038", "upload-id": upload_id, "agency": "met"})
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    st = bucket.get_json(f"status/{upload_id}.json")
    assert st is not None and st["state"] == "accepted" and st["warning"] == "low_resolution"
    assert "warning: low-resolution photo" in st["message"]
    case = store.Cases(cloud_env["CASES_TABLE"]).get("MP-2026-0038")
    assert case and case["status"] == "open" and "low-resolution photo" in case["photo_warning"]
    g, _ = gallery_store.read_latest(bucket, "missing")
    assert g.identities() == {"MP-2026-0038": 1}
    # a customer's photo of the same size is refused, and says why
    put_upload(cloud_env, "uploads/customers/C-38/1.jpg", _shrunk(person_photos[0], 38))
    assert [r["reason"] for r in run_queue(cloud_env)] == ["face_too_small"]
