"""faces.py: decoding is safe and detection/encoding agree with face_recognition."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneeye import faces
from oneeye.errors import ImageError


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


def test_loads_rgb_jpeg(examples: Path) -> None:
    img = faces.load_image(examples / "obama.jpg")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_32bit_png_with_alpha_becomes_rgb(data_dir: Path) -> None:
    img = faces.load_image(data_dir / "ageitgey_face_recognition/tests/test_images/32bit.png")
    assert img.shape[2] == 3


def test_exif_orientation_is_applied() -> None:
    wide = np.zeros((40, 80, 3), np.uint8)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise: stored landscape, shown portrait
    Image.fromarray(wide).save(buf, format="JPEG", exif=exif)
    assert faces.load_image(buf.getvalue()).shape[:2] == (80, 40)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "not an image|corrupt"),
    ],
    ids=["empty", "text", "jpeg-header-only"],
)
def test_bad_bytes_raise_one_clear_error(payload: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        faces.load_image(payload)


def test_truncated_jpeg_is_rejected(examples: Path) -> None:
    data = (examples / "obama.jpg").read_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated"):
        faces.load_image(data[: len(data) // 2])


def test_truncated_jpeg_rejected_even_after_face_recognition_import(examples: Path) -> None:
    import face_recognition  # noqa: F401  (it sets PIL's LOAD_TRUNCATED_IMAGES on import)
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    data = (examples / "obama.jpg").read_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated"):
        faces.load_image(data[: len(data) // 2])


def test_pixel_limit_stops_huge_images() -> None:
    big = _jpeg(np.zeros((1000, 1000, 3), np.uint8))
    with pytest.raises(ImageError, match="image too large"):
        faces.load_image(big, max_pixels=999_999)


def test_byte_limit_stops_huge_files(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 2048)
    with pytest.raises(ImageError, match="file too large"):
        faces.load_image(path, max_bytes=1024)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.jpg: cannot read file"):
        faces.load_image(tmp_path / "nope.jpg")


def test_detects_two_people(examples: Path) -> None:
    img = faces.load_image(examples / "two_people.jpg")
    boxes = faces.detect(img)
    assert len(boxes) == 2
    for top, right, bottom, left in boxes:
        assert 0 <= top < bottom <= img.shape[0] and 0 <= left < right <= img.shape[1]


def test_detection_scale_maps_boxes_back_to_source_pixels(examples: Path) -> None:
    img = faces.load_image(examples / "obama.jpg")
    (full,) = faces.detect(img, upsample=0)
    (half,) = faces.detect(img, upsample=0, scale=0.5)
    assert max(abs(a - b) for a, b in zip(full, half, strict=True)) < 30


def test_no_face_in_blank_image() -> None:
    assert faces.detect(np.full((240, 320, 3), 127, np.uint8)) == []


def test_encoding_matches_face_recognition_and_is_float32(examples: Path) -> None:
    import face_recognition

    img = faces.load_image(examples / "obama.jpg")
    boxes = faces.detect(img)
    (ours,) = faces.encode(img, boxes)
    (ref,) = face_recognition.face_encodings(img, boxes)
    assert ours.dtype == np.float32 and ours.shape == (128,)
    assert np.allclose(ours, ref, atol=1e-5)


def test_same_person_close_other_person_far(examples: Path) -> None:
    def enc(name: str) -> np.ndarray:
        img = faces.load_image(examples / name)
        return faces.encode(img, faces.detect(img))[0]

    obama, obama2, biden = enc("obama.jpg"), enc("obama2.jpg"), enc("biden.jpg")
    assert np.linalg.norm(obama - obama2) < 0.5 < np.linalg.norm(obama - biden)


def test_quality_reports_size_and_blur(examples: Path) -> None:
    import cv2

    img = faces.load_image(examples / "obama.jpg")
    (box,) = faces.detect(img)
    sharp = faces.quality(img, box)
    blurred = faces.quality(cv2.GaussianBlur(img, (31, 31), 12), box)
    assert sharp.size_px == min(box[2] - box[0], box[1] - box[3])
    assert blurred.blur < sharp.blur / 5


def test_analyze_returns_landmarks_and_encodings(examples: Path) -> None:
    (face,) = faces.analyze(faces.load_image(examples / "obama_small.jpg"))
    assert len(face.landmarks) == 5 and face.encoding is not None


def test_detect_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        faces.detect(np.zeros((10, 10), np.uint8))
