"""decode_image: every supported format and mode to canonical RGB uint8, and every failure reason."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.data.images import (
    BACKGROUND_RGB,
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    DecodedImage,
    DecodeError,
    decode_image,
    is_image_path,
)


def _rgb(decoded: DecodedImage) -> np.ndarray:
    assert isinstance(decoded, DecodedImage)
    assert decoded.image.mode == "RGB"
    array = np.asarray(decoded.image)
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    return array


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Exact 'over white' compositing, rounded half up: round((c*a + 255*(255-a)) / 255)."""
    c = rgb.astype(np.int64)
    a = alpha.astype(np.int64)[..., None]
    return ((2 * (c * a + 255 * (255 - a)) + 255) // 510).astype(np.uint8)


def _reason(path: Path, **kwargs) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_image(path, **kwargs)
    err = info.value
    assert str(err) == f"{err.reason}: {err.detail}"
    return err


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "save_kwargs", "fmt"),
    [
        ("cat.png", {}, "PNG"),
        ("cat.Png", {}, "PNG"),
        ("cat.PNG", {}, "PNG"),
        ("cat.bmp", {}, "BMP"),
        ("cat.BMP", {"format": "BMP"}, "BMP"),
        ("cat.tif", {}, "TIFF"),
        ("cat.TIFF", {"format": "TIFF"}, "TIFF"),
        ("cat.tiff", {"compression": "tiff_lzw"}, "TIFF"),
        ("cat.webp", {"lossless": True}, "WEBP"),
        ("cat.WebP", {"format": "WEBP", "lossless": True}, "WEBP"),
    ],
)
def test_lossless_formats_decode_to_the_exact_pixels(tmp_path, chelsea, name, save_kwargs, fmt):
    path = tmp_path / name
    Image.fromarray(chelsea).save(path, **save_kwargs)
    decoded = decode_image(path)
    assert decoded.source_format == fmt
    assert decoded.source_mode == "RGB"
    assert decoded.image.size == (451, 300)
    np.testing.assert_array_equal(_rgb(decoded), chelsea)


@pytest.mark.parametrize("name", ["astronaut.jpg", "astronaut.JPG", "astronaut.jpeg", "astronaut.Jpeg", "astronaut.jpe"])
def test_jpeg_decodes_close_to_the_original(tmp_path, astronaut, name):
    path = tmp_path / name
    Image.fromarray(astronaut).save(path, format="JPEG", quality=95)
    decoded = decode_image(path)
    assert decoded.source_format == "JPEG"
    assert decoded.source_mode == "RGB"
    array = _rgb(decoded)
    assert array.shape == astronaut.shape
    assert np.abs(array.astype(int) - astronaut.astype(int)).mean() < 3.0


def test_animated_gif_gives_its_first_frame(tmp_path, big_digits):
    first, second = big_digits[0], big_digits[1]
    path = tmp_path / "anim.GIF"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)], duration=80, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    decoded = decode_image(path)
    assert decoded.source_format == "GIF"
    assert decoded.source_mode == "P"
    array = _rgb(decoded)
    for channel in range(3):
        np.testing.assert_array_equal(array[..., channel], first)
    assert not np.array_equal(array[..., 0], second)


def test_single_frame_colour_gif_uses_its_palette(tmp_path, chelsea):
    quantized = Image.fromarray(chelsea).quantize(colors=64)
    palette = np.array(quantized.getpalette()[: 3 * 64], dtype=np.uint8).reshape(-1, 3)
    expected = palette[np.asarray(quantized)]
    path = tmp_path / "cat.gif"
    quantized.save(path)
    decoded = decode_image(path)
    assert decoded.source_format == "GIF"
    np.testing.assert_array_equal(_rgb(decoded), expected)


# --------------------------------------------------------------------------- EXIF orientation


def test_jpeg_exif_orientation_6_is_applied(tmp_path, astronaut):
    original = astronaut[:256]  # 256 rows x 512 columns: PIL size (512, 256)
    img = Image.fromarray(original)
    exif = img.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, quality=95, exif=exif)
    with Image.open(path) as raw:
        assert raw.size == (512, 256)
        assert raw.getexif()[0x0112] == 6
    decoded = decode_image(path)
    assert decoded.image.size == (256, 512)
    array = _rgb(decoded)
    clockwise = np.rot90(original, k=-1).astype(int)
    counter = np.rot90(original, k=1).astype(int)
    assert np.abs(array.astype(int) - clockwise).mean() < 3.0
    assert np.abs(array.astype(int) - counter).mean() > 20.0


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (1, lambda a: a),
        (2, lambda a: a[:, ::-1]),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_png_exif_orientation_is_applied_exactly(tmp_path, chelsea, orientation, expected):
    img = Image.fromarray(chelsea)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    img.save(path, exif=exif)
    np.testing.assert_array_equal(_rgb(decode_image(path)), expected(chelsea))


# --------------------------------------------------------------------------- modes


def test_grayscale_becomes_rgb_with_equal_channels(tmp_path, digits):
    path = tmp_path / "digit.png"
    Image.fromarray(digits[7]).save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "L"
    array = _rgb(decoded)
    assert array.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(array[..., channel], digits[7])


def test_one_bit_image_becomes_black_and_white(tmp_path, digits):
    path = tmp_path / "bits.png"
    Image.fromarray(digits[0]).convert("1", dither=Image.Dither.NONE).save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "1"
    expected = np.where(digits[0] >= 128, 255, 0).astype(np.uint8)
    array = _rgb(decoded)
    for channel in range(3):
        np.testing.assert_array_equal(array[..., channel], expected)


def test_palette_without_transparency_maps_through_the_palette(tmp_path, chelsea):
    quantized = Image.fromarray(chelsea).quantize(colors=32)
    palette = np.array(quantized.getpalette()[: 3 * 32], dtype=np.uint8).reshape(-1, 3)
    expected = palette[np.asarray(quantized)]
    path = tmp_path / "cat_p.png"
    quantized.save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "P"
    np.testing.assert_array_equal(_rgb(decoded), expected)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_composites_the_transparent_index_on_white(tmp_path, digits, suffix):
    indices = (digits[3] // 15).astype(np.uint8)  # 0..16, zero is the (common) background
    assert (indices == 0).any() and (indices > 0).any()
    palette = []
    for i in range(256):
        palette += [i * 15 % 256, 7, 255 - i * 15 % 256]
    img = Image.fromarray(indices, mode="P")
    img.putpalette(palette)
    path = tmp_path / f"digit_t{suffix}"
    img.save(path, transparency=0)
    decoded = decode_image(path)
    assert decoded.source_mode == "P"
    array = _rgb(decoded)
    pal = np.array(palette, dtype=np.uint8).reshape(-1, 3)
    expected = pal[indices]
    expected[indices == 0] = BACKGROUND_RGB
    np.testing.assert_array_equal(array, expected)


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.array(
        [[[255, 0, 0, 0], [12, 34, 56, 255], [200, 0, 0, 128], [0, 100, 200, 64]]], dtype=np.uint8
    )
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, "RGBA").save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "RGBA"
    array = _rgb(decoded)
    assert array[0, 0].tolist() == [255, 255, 255]  # fully transparent: white, not red
    assert array[0, 1].tolist() == [12, 34, 56]  # opaque: unchanged
    assert array[0, 2].tolist() == [227, 127, 127]  # (200*128 + 255*127)/255 = 227.4; 255*127/255 = 127
    assert array[0, 3].tolist() == [191, 216, 241]
    np.testing.assert_array_equal(array, _composite_on_white(pixels[..., :3], pixels[..., 3]))


def test_rgba_photo_with_random_alpha_is_composited_exactly(tmp_path, chelsea):
    alpha = np.random.default_rng(7).integers(0, 256, size=chelsea.shape[:2], dtype=np.uint8)
    path = tmp_path / "cat_rgba.png"
    Image.fromarray(np.dstack([chelsea, alpha]), "RGBA").save(path)
    np.testing.assert_array_equal(_rgb(decode_image(path)), _composite_on_white(chelsea, alpha))


def test_opaque_rgba_webp_keeps_its_colours(tmp_path, chelsea):
    path = tmp_path / "cat_rgba.webp"
    alpha = np.full(chelsea.shape[:2], 255, dtype=np.uint8)
    Image.fromarray(np.dstack([chelsea, alpha]), "RGBA").save(path, lossless=True, exact=True)
    np.testing.assert_array_equal(_rgb(decode_image(path)), chelsea)


def test_la_is_composited_on_white(tmp_path):
    grey = np.array([[0, 0, 100, 240]], dtype=np.uint8)
    alpha = np.array([[0, 255, 128, 64]], dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "LA"
    array = _rgb(decoded)
    assert array[0, :, 0].tolist() == [255, 0, 177, 251]
    np.testing.assert_array_equal(array, _composite_on_white(np.repeat(grey[..., None], 3, axis=2), alpha))


def test_la_digit_with_digit_alpha(tmp_path, digits):
    grey, alpha = digits[10], digits[11]
    path = tmp_path / "la_digit.png"
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(path)
    expected = _composite_on_white(np.repeat(grey[..., None], 3, axis=2), alpha)
    np.testing.assert_array_equal(_rgb(decode_image(path)), expected)


def test_grey_png_with_transparent_key_is_composited(tmp_path):
    grey = np.array([[0, 50], [100, 150]], dtype=np.uint8)
    path = tmp_path / "key_l.png"
    Image.fromarray(grey).save(path, transparency=50)
    array = _rgb(decode_image(path))
    assert array[..., 0].tolist() == [[0, 255], [100, 150]]


def test_rgb_png_with_transparent_key_is_composited(tmp_path, chelsea):
    # An RGB PNG with a tRNS colour key: that colour is transparent and must become white,
    # as it does for grey and palette images.
    key = tuple(int(v) for v in chelsea[0, 0])
    path = tmp_path / "key_rgb.png"
    Image.fromarray(chelsea).save(path, transparency=key)
    with Image.open(path) as raw:
        assert raw.mode == "RGB" and raw.info["transparency"] == key
    array = _rgb(decode_image(path))
    is_key = (chelsea == np.array(key, dtype=np.uint8)).all(axis=2)
    expected = chelsea.copy()
    expected[is_key] = BACKGROUND_RGB
    assert is_key.sum() >= 1
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(("name", "dtype"), [("g16.png", "<u2"), ("g16.tif", "<u2"), ("g16b.tif", ">u2")])
def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path, name, dtype):
    values = np.array([[0, 65535, 32896, 257, 128, 129, 65406, 65407, 1000]], dtype=dtype)
    path = tmp_path / name
    Image.fromarray(values).save(path)
    decoded = decode_image(path)
    assert decoded.source_mode.startswith("I;16")
    array = _rgb(decoded)
    # round(value / 257), halves up: 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1, 65406 -> 254.498 -> 254, 65407 -> 254.502 -> 255
    assert array[0, :, 0].tolist() == [0, 255, 128, 1, 0, 1, 254, 255, 4]
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()


def test_sixteen_bit_png_opens_as_i16(tmp_path, digits):
    scaled = digits[5].astype(np.uint16) * 273  # 0..240 -> 0..65520
    path = tmp_path / "digit16.png"
    Image.fromarray(scaled).save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "I;16"
    expected = ((scaled.astype(np.int64) + 128) // 257).astype(np.uint8)
    np.testing.assert_array_equal(_rgb(decoded)[..., 1], expected)


def test_cmyk_tiff_pixels_convert_by_the_defined_formula(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128], [100, 50, 200, 30]]], dtype=np.uint8)
    path = tmp_path / "cmyk.tif"
    Image.fromarray(cmyk, "CMYK").save(path)
    decoded = decode_image(path)
    assert decoded.source_mode == "CMYK"
    assert decoded.source_format == "TIFF"
    # channel = (255 - ink) * (255 - K) / 255, rounded
    assert _rgb(decoded).tolist() == [[[255, 255, 255], [0, 255, 255], [0, 0, 0], [127, 127, 127], [137, 181, 49]]]


def test_cmyk_tiff_photo_round_trips_exactly(tmp_path, chelsea):
    path = tmp_path / "cat_cmyk.TIF"
    Image.fromarray(chelsea).convert("CMYK").save(path, format="TIFF")
    decoded = decode_image(path)
    assert decoded.source_mode == "CMYK"
    np.testing.assert_array_equal(_rgb(decoded), chelsea)


def test_cmyk_jpeg_converts_to_rgb(tmp_path, chelsea):
    path = tmp_path / "cat_cmyk.jpg"
    Image.fromarray(chelsea).convert("CMYK").save(path, quality=95)
    decoded = decode_image(path)
    assert decoded.source_mode == "CMYK"
    assert decoded.source_format == "JPEG"
    array = _rgb(decoded)
    assert array.shape == chelsea.shape
    assert np.abs(array.astype(int) - chelsea.astype(int)).mean() < 3.0


def test_decoded_image_outlives_the_file(tmp_path, chelsea):
    path = tmp_path / "gone.jpg"
    Image.fromarray(chelsea).save(path)
    decoded = decode_image(path)
    path.unlink()
    assert _rgb(decoded).shape == chelsea.shape


# --------------------------------------------------------------------------- failures


def test_zero_byte_file_is_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    err = _reason(path)
    assert err.reason == "empty_file"
    assert err.detail == "the file has 0 bytes"


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is a shopping list, not a picture\n", encoding="utf-8")
    assert _reason(path).reason == "not_an_image"


def test_png_signature_only_is_not_an_image(tmp_path, chelsea):
    whole = tmp_path / "whole.png"
    Image.fromarray(chelsea).save(whole)
    path = tmp_path / "sig.png"
    path.write_bytes(whole.read_bytes()[:8])
    assert _reason(path).reason == "not_an_image"


@pytest.mark.parametrize(
    ("name", "fmt", "detail"),
    [
        ("half.png", "PNG", "image file is truncated"),
        ("half.jpg", "JPEG", "image file is truncated ("),
        ("half.bmp", "BMP", "image file is truncated ("),
        ("half.tif", "TIFF", "image file is truncated ("),
    ],
)
def test_first_half_of_the_bytes_is_truncated(tmp_path, astronaut, name, fmt, detail):
    whole = tmp_path / f"whole_{name}"
    Image.fromarray(astronaut).save(whole, format=fmt)
    data = whole.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    err = _reason(path)
    assert err.reason == "truncated"
    assert err.detail.startswith(detail)


def test_jpeg_cut_inside_its_header_is_truncated(tmp_path, astronaut):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(astronaut).save(whole)
    path = tmp_path / "head.jpg"
    path.write_bytes(whole.read_bytes()[:100])
    err = _reason(path)
    assert err.reason == "truncated"
    assert err.detail == "Truncated File Read"


def test_truncated_webp_is_reported_as_corrupt(tmp_path, chelsea):
    # libwebp gives no "truncated" message, so the code cannot tell truncation from corruption.
    whole = tmp_path / "whole.webp"
    Image.fromarray(chelsea).save(whole, lossless=True)
    data = whole.read_bytes()
    path = tmp_path / "half.webp"
    path.write_bytes(data[: len(data) // 2])
    err = _reason(path)
    assert err.reason == "corrupt"
    assert err.detail == "could not create decoder object"


def test_tiff_claiming_the_wrong_compression_is_corrupt(tmp_path, chelsea):
    whole = tmp_path / "raw.tif"
    Image.fromarray(chelsea).save(whole)
    data = bytearray(whole.read_bytes())
    assert data[:2] == b"II"
    tag = data.find(struct.pack("<HHIH", 259, 3, 1, 1))  # Compression = 1 (none)
    assert tag > 0
    data[tag + 8 : tag + 10] = struct.pack("<H", 5)  # claim LZW over raw bytes
    path = tmp_path / "lzw_lie.tif"
    path.write_bytes(bytes(data))
    err = _reason(path)
    assert err.reason == "corrupt"
    assert err.detail.startswith("decoder error")


def test_scrambled_png_data_stream(tmp_path, chelsea):
    whole = tmp_path / "ok.png"
    Image.fromarray(chelsea).save(whole)
    data = bytearray(whole.read_bytes())
    start = data.find(b"IDAT") + 10
    for i in range(start, start + 50):
        data[i] ^= 0xFF
    path = tmp_path / "scrambled.png"
    path.write_bytes(bytes(data))
    err = _reason(path)
    # zlib's "broken data stream" is classified with truncations
    assert err.reason == "truncated"
    assert err.detail == "broken data stream when reading image file"


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [30000, 10000])
def test_png_claiming_huge_dimensions_is_a_decompression_bomb(tmp_path, monkeypatch, side):
    path = tmp_path / f"bomb{side}.png"
    path.write_bytes(_png_header_only(side, side))
    assert path.stat().st_size < 100
    with monkeypatch.context() as patch:  # with Pillow's own guard off, the crafted header is valid
        patch.setattr(Image, "MAX_IMAGE_PIXELS", None)
        with Image.open(path) as probe:
            assert probe.format == "PNG" and probe.size == (side, side)
    err = _reason(path)
    assert err.reason == "decompression_bomb"
    assert f"{side * side} pixels" in err.detail


def test_max_pixels_limit_is_inclusive(tmp_path, chelsea):
    path = tmp_path / "cat.png"
    Image.fromarray(chelsea).save(path)
    pixels = 451 * 300
    assert pixels < DEFAULT_MAX_PIXELS
    assert decode_image(path, max_pixels=pixels).image.size == (451, 300)
    err = _reason(path, max_pixels=pixels - 1)
    assert err.reason == "decompression_bomb"
    assert err.detail == f"451x300 = {pixels} pixels exceeds the limit of {pixels - 1}"


def test_broken_symlink_is_unreadable(tmp_path):
    link = tmp_path / "link.png"
    os.symlink(tmp_path / "nowhere.png", link)
    err = _reason(link)
    assert err.reason == "unreadable"
    assert err.detail == "No such file or directory"


def test_missing_file_is_unreadable_and_a_directory_not_a_regular_file(tmp_path):
    assert _reason(tmp_path / "missing.jpg").reason == "unreadable"
    folder = tmp_path / "folder.png"
    folder.mkdir()
    err = _reason(folder)
    assert err.reason == "not_a_regular_file"
    assert "folder" in err.detail


def test_fifo_and_device_images_are_never_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block until a writer appears
    assert _reason(tmp_path / "pipe.png").reason == "not_a_regular_file"
    os.symlink("/dev/zero", tmp_path / "zero.png")  # reading it would never end
    err = _reason(tmp_path / "zero.png")
    assert err.reason == "not_a_regular_file" and "character device" in err.detail


# --------------------------------------------------------------------------- extensions


def test_is_image_path_ignores_letter_case():
    for ext in IMAGE_EXTENSIONS:
        assert is_image_path(Path("a" + ext))
        assert is_image_path(Path("dir.x/a" + ext.upper()))
    assert is_image_path(Path("ñandú/ß.Png"))
    for name in ("a.txt", "a.png.txt", "png", "a.heic", "a.svg", "a"):
        assert not is_image_path(Path(name))
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def test_decompression_bomb_leaves_no_raw_pillow_warning_on_stderr(tmp_path):
    """Pillow warns (a raw ``DecompressionBombWarning`` line on stderr) for images between its limit and
    twice it; our decoder reports them as ``decompression_bomb`` and nothing else reaches stderr. In a
    child process: pytest captures warnings in its own process."""
    import subprocess
    import sys

    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(10000, 10000))  # 100 Mpx: Pillow warns rather than refuses
    child = ("import sys; from pathlib import Path; from repcurate.data.images import DecodeError, decode_image\n"
             "try:\n    decode_image(Path(sys.argv[1]))\nexcept DecodeError as exc:\n    print(exc.reason)\n")
    result = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "decompression_bomb"
    assert "DecompressionBombWarning" not in result.stderr and result.stderr == ""
