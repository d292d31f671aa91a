"""The one decoder: every Pillow mode and bit depth, every container, faithfully or by name.

Each generated input starts from a real face photo (``obama_small.jpg``) and is compared
with what a person would see: the same grey or colour values, alpha over white, the
first frame, the picture upright.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from oneeye import images
from oneeye.errors import ImageError

CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"


@pytest.fixture(scope="module")
def photo(examples: Path) -> Image.Image:
    """A real face photo, RGB, 8 bit."""
    return Image.open(examples / "obama_small.jpg").convert("RGB")


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _grey(photo: Image.Image) -> np.ndarray:
    return np.asarray(photo.convert("L"), dtype=np.int32)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


# ------------------------------------------------------------------ grey and deep modes


def _sixteen(photo: Image.Image) -> np.ndarray:
    return (_grey(photo) * 257).astype(np.uint16)  # 8-bit grey spread over 0…65535


GREY_INPUTS = {
    "L-png": lambda p: _encode(p.convert("L"), "PNG"),
    "LA-png": lambda p: _encode(p.convert("LA"), "PNG"),
    "I;16-png": lambda p: _encode(Image.fromarray(_sixteen(p)), "PNG"),
    "I;16-tiff": lambda p: _encode(Image.fromarray(_sixteen(p)), "TIFF"),
    "I;16B-tiff": lambda p: _encode(  # (Pillow's convert("I;16B") clips to 255)
        Image.frombytes("I;16B", p.size, _sixteen(p).astype(">u2").tobytes()), "TIFF"),
    "I-tiff-16bit-values": lambda p: _encode(
        Image.fromarray(_sixteen(p).astype(np.int32)), "TIFF"),
    "I-tiff-8bit-values": lambda p: _encode(Image.fromarray(_grey(p)), "TIFF"),
    "F-tiff-0-1": lambda p: _encode(
        Image.fromarray((_grey(p) / 255.0).astype(np.float32)), "TIFF"),
    "F-tiff-0-255": lambda p: _encode(Image.fromarray(_grey(p).astype(np.float32)), "TIFF"),
}


@pytest.mark.parametrize("kind", sorted(GREY_INPUTS))
def test_grey_modes_and_bit_depths_decode_to_the_same_grey(photo: Image.Image,
                                                           kind: str) -> None:
    data = GREY_INPUTS[kind](photo)
    rgb = images.load_image(data)
    expected = _grey(photo)
    assert rgb.shape == (*expected.shape, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], rgb[..., 2])  # grey stays grey
    assert np.abs(rgb[..., 0].astype(np.int32) - expected).max() <= 1


def test_sixteen_bit_full_range_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    rgb = images.load_image(_encode(Image.fromarray(ramp), "PNG"))
    assert Image.open(io.BytesIO(_encode(Image.fromarray(ramp), "PNG"))).mode == "I;16"
    assert np.array_equal(rgb[0, :, 0], np.arange(256))  # not 0, 255, 255, 255 …


def test_thirty_two_bit_values_outside_sixteen_bits_use_the_data_range() -> None:
    values = np.tile(np.array([-1000, 0, 100_000], np.int32), (8, 1))
    rgb = images.load_image(_encode(Image.fromarray(values), "TIFF"))
    assert list(rgb[0, :, 0]) == [0, 3, 255]  # (v + 1000) / 101000 × 255


def test_bilevel_mode_1_stays_black_and_white(photo: Image.Image) -> None:
    bilevel = photo.convert("1")
    rgb = images.load_image(_encode(bilevel, "PNG"))
    assert set(np.unique(rgb)) <= {0, 255}
    assert np.array_equal(rgb[..., 0] == 255, np.asarray(bilevel))


def test_sixteen_bit_rgb_png_keeps_its_colours(photo: Image.Image) -> None:
    import cv2

    rgb8 = np.asarray(photo)
    bgr16 = (rgb8[..., ::-1].astype(np.uint16) * 257)
    ok, png = cv2.imencode(".png", bgr16)
    assert ok
    assert np.array_equal(images.load_image(png.tobytes()), rgb8)


# ------------------------------------------------------------------ colour modes


COLOUR_INPUTS = {
    # mode in the file → (bytes, largest mean |difference| allowed, in 8-bit steps)
    "RGB-png": (lambda p: _encode(p, "PNG"), 0.0),
    "RGBA-png-opaque": (lambda p: _encode(p.convert("RGBA"), "PNG"), 0.0),
    "CMYK-tiff": (lambda p: _encode(p.convert("CMYK"), "TIFF"), 0.0),
    "CMYK-jpeg": (lambda p: _encode(p.convert("CMYK"), "JPEG", quality=95), 3.0),
    "YCbCr-tiff": (lambda p: _encode(p.convert("YCbCr"), "TIFF"), 1.5),
    "LAB-tiff": (lambda p: _encode(p.convert("LAB"), "TIFF"), 1.5),
    "P-png": (lambda p: _encode(p.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), 4.0),
    "jfif": (lambda p: _encode(p, "JPEG", quality=95), 3.0),
    "webp-lossless": (lambda p: _encode(p, "WEBP", lossless=True), 0.0),
    "webp-lossy": (lambda p: _encode(p, "WEBP", quality=90), 3.0),
    "bmp": (lambda p: _encode(p, "BMP"), 0.0),
    "avif": (lambda p: _encode(p, "AVIF", quality=90), 4.0),
}


@pytest.mark.parametrize("kind", sorted(COLOUR_INPUTS))
def test_colour_modes_and_formats_keep_their_colours(photo: Image.Image, kind: str) -> None:
    make, tolerance = COLOUR_INPUTS[kind]
    rgb = images.load_image(make(photo))
    assert rgb.shape == (photo.height, photo.width, 3) and rgb.dtype == np.uint8
    assert _diff(rgb, np.asarray(photo)) <= tolerance


def test_jfif_file_name_is_read(photo: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "portrait.jfif"
    path.write_bytes(_encode(photo, "JPEG", quality=95))
    assert path.read_bytes()[6:10] == b"JFIF"
    assert _diff(images.load_image(path), np.asarray(photo)) <= 3.0


@pytest.mark.parametrize("mode", ["HSV", "RGBX", "RGBa", "La", "PA"])
def test_modes_no_file_format_stores_convert_too(photo: Image.Image, mode: str) -> None:
    src = photo.convert("LA").convert("La") if mode == "La" else (
        photo.convert("P").convert("PA") if mode == "PA" else photo.convert(mode))
    assert src.mode == mode
    rgb = np.asarray(images.to_rgb(src))
    reference = np.asarray(photo.convert("L").convert("RGB") if mode == "La" else
                           photo.convert("P").convert("RGB") if mode == "PA" else photo)
    assert _diff(rgb, reference) <= 1.0


# ------------------------------------------------------------------ alpha and palettes


def test_transparent_pixels_are_composited_on_white() -> None:
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = (0, 0, 0, 0)        # fully transparent black → white
    rgba[:, 10:] = (0, 0, 0, 128)      # half-transparent black → mid grey
    rgb = images.load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (rgb[:, :10] == 255).all()
    assert np.abs(rgb[:, 10:].astype(int) - 127).max() <= 1


def test_grey_with_alpha_is_composited_on_white() -> None:
    la = Image.fromarray(np.zeros((4, 4), np.uint8), "L")
    la.putalpha(0)
    assert (images.load_image(_encode(la, "PNG")) == 255).all()


def test_palette_transparency_becomes_white() -> None:
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.paste(0, (0, 0, 4, 8))
    rgb = images.load_image(_encode(pal, "GIF", transparency=0))
    assert (rgb[:, :4] == 255).all()
    assert (rgb[:, 4:] == (255, 0, 0)).all()


@pytest.mark.parametrize(("mode", "key", "other"), [("L", 0, 90), ("RGB", (0, 0, 0), (200, 0, 0))])
def test_a_transparent_colour_key_becomes_white(mode: str, key: object, other: object) -> None:
    img = Image.new(mode, (8, 8), key)  # type: ignore[arg-type]
    img.paste(other, (4, 0, 8, 8))  # type: ignore[arg-type]
    data = _encode(img, "PNG", transparency=key)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    rgb = images.load_image(data)
    assert (rgb[:, :4] == 255).all()
    assert (rgb[:, 4:] == (other if mode == "RGB" else (other,) * 3)).all()


# ------------------------------------------------------------------ frames and orientation


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (16, 16), c) for c in ((200, 0, 0), (0, 0, 200), (0, 200, 0))]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_animated_or_multipage_files_give_their_first_frame(fmt: str) -> None:
    first, *rest = _frames()
    data = _encode(first, fmt, save_all=True, append_images=rest, duration=100,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    rgb = images.load_image(data)
    assert np.abs(rgb.astype(int) - (200, 0, 0)).max() <= 3


def _marked() -> Image.Image:
    """A picture whose orientation is unambiguous: a red block in the top-left corner."""
    arr = np.zeros((30, 50, 3), np.uint8)
    arr[:10, :10] = (255, 0, 0)
    return Image.fromarray(arr)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(_marked(), "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert np.array_equal(images.load_image(data), expected)


def test_exif_orientation_applies_to_deep_modes_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    deep = Image.fromarray(np.zeros((40, 80), np.uint16))
    assert images.load_image(_encode(deep, "TIFF", exif=exif)).shape == (80, 40, 3)


# ------------------------------------------------------------------ refused by name


def test_heic_is_refused_by_name() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(ImageError, match="HEIC is not supported; export as JPEG") as info:
        images.load_image(heic)
    assert info.value.reason == "unsupported_format"


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO"])
def test_other_formats_are_refused_by_name(photo: Image.Image, fmt: str) -> None:
    with pytest.raises(ImageError, match=f"unsupported image format {fmt}") as info:
        images.load_image(_encode(photo.resize((64, 64)), fmt))
    assert info.value.reason == "unsupported_format"


def test_decompression_bomb_keeps_a_clear_error() -> None:
    # 20000 × 20000 grey PNG: a few kB on disk, 400 MP decoded.
    header = _encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    with pytest.raises(ImageError, match="image too large") as info:
        images.load_image(header)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    ("payload", "reason", "message"),
    [
        (b"", "empty", "empty file"),
        (b"this is not an image at all", "not_an_image", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "not_an_image|corrupt", "not an image|corrupt"),
    ],
    ids=["empty", "text", "jpeg-header-only"],
)
def test_bad_bytes_raise_one_clear_error(payload: bytes, reason: str, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        images.load_image(payload)
    assert info.value.reason in reason.split("|")


def test_truncated_jpeg_is_rejected_even_after_face_recognition_import(examples: Path) -> None:
    import face_recognition  # noqa: F401  (it sets PIL's LOAD_TRUNCATED_IMAGES on import)
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    data = (examples / "obama.jpg").read_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated") as info:
        images.load_image(data[: len(data) // 2])
    assert info.value.reason == "corrupt"


def test_pixel_and_byte_limits(tmp_path: Path) -> None:
    big = _encode(Image.new("RGB", (1000, 1000)), "JPEG")
    with pytest.raises(ImageError, match="image too large"):
        images.load_image(big, max_pixels=999_999)
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 2048)
    with pytest.raises(ImageError, match="file too large"):
        images.load_image(path, max_bytes=1024)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.jpg: cannot read file") as info:
        images.load_image(tmp_path / "nope.jpg")
    assert info.value.reason == "unreadable"


# ------------------------------------------------------------------ stills vs videos


def test_stills_are_recognised_by_content_not_only_by_name(photo: Image.Image,
                                                           tmp_path: Path) -> None:
    odd = tmp_path / "snapshot.dat"
    odd.write_bytes(_encode(photo, "PNG"))
    video = tmp_path / "clip.bin"
    video.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)  # an MP4 header
    mpeg1 = tmp_path / "clip.mpg"  # Pillow identifies MPEG-1 video; it is still a video
    mpeg1.write_bytes(b"\x00\x00\x01\xb3\x14\x00\xf0\x13" + b"\x00" * 64)
    assert Image.open(mpeg1).format == "MPEG"
    assert images.is_still_image(odd) and images.is_still_image(tmp_path / "a.heic")
    assert not images.is_still_image(video) and not images.is_still_image(mpeg1)


def test_analyze_reads_a_rotated_still_through_the_decoder(tmp_path: Path) -> None:
    from oneeye.media import iter_media

    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.tif"  # OpenCV would ignore the orientation
    path.write_bytes(_encode(Image.new("RGB", (80, 40)), "TIFF", exif=exif))
    (frame,) = list(iter_media(path))
    assert frame.rgb.shape == (80, 40, 3)


# ------------------------------------------------------------------ the field case


def test_16bit_grey_case_matches_obama(examples: Path, tmp_path: Path) -> None:
    """../shared/cases/image-16bit-grey: the face is found and is obama at ≈ 0.38."""
    from oneeye import faces
    from oneeye import gallery as gal

    grey16 = CASES / "image-16bit-grey" / "grey16.png"
    assert Image.open(grey16).mode == "I;16"
    train = images.list_photo_dir(examples / "knn_examples" / "train")
    g, report = gal.enrol(train.photos, watchlist="customers",
                          policy=gal.EnrolmentPolicy(jitters=1))
    assert not report.rejected
    image = images.load_image(grey16)
    assert 60 < image.mean() < 160  # a photo, not a white page
    (enc,) = faces.encode(image, faces.detect(image))
    match = g.match(enc)
    assert match is not None and match.person_id == "obama"
    assert match.distance == pytest.approx(0.38, abs=0.04)
