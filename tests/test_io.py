"""Reading and writing images: depth, alpha, gray, palette, CMYK, ICC, EXIF, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from srgan.errors import BadInputError
from srgan.imaging import Image, ImageMeta, read_image, write_image
from tests import pngcodec

RNG = np.random.default_rng(0)


def random_pixels(channels: int, dtype: type = np.uint8, size: tuple[int, int] = (13, 17)):
    peak = np.iinfo(dtype).max
    return RNG.integers(0, peak + 1, size=(*size, channels)).astype(dtype)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_lossless_roundtrip_keeps_depth_and_channels(tmp_path, channels, dtype, ext):
    pixels = random_pixels(channels, dtype)
    path = tmp_path / f"image{ext}"
    write_image(path, Image(pixels, ImageMeta(bit_depth=np.iinfo(dtype).bits)))
    back = read_image(path)
    assert back.pixels.dtype == dtype
    assert back.meta.bit_depth == np.iinfo(dtype).bits
    np.testing.assert_array_equal(back.pixels, pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_reads_16bit_png_made_by_an_independent_encoder(tmp_path, channels):
    pixels = random_pixels(channels, np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(pngcodec.encode(pixels))
    # Pillow alone would hand back 8-bit data for these files.
    back = read_image(path)
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, pixels)


def test_16bit_rgba_png_written_is_read_by_an_independent_decoder(tmp_path):
    pixels = random_pixels(4, np.uint16)
    profile = srgb_profile()
    path = tmp_path / "out.png"
    write_image(path, Image(pixels, ImageMeta(bit_depth=16, icc_profile=profile)))
    decoded, chunks = pngcodec.decode(path.read_bytes())
    np.testing.assert_array_equal(decoded, pixels)
    assert b"iCCP" in chunks
    assert read_image(path).meta.icc_profile == profile


def test_to_tensor_and_back_is_exact_for_16bit():
    pixels = random_pixels(3, np.uint16)
    image = Image(pixels, ImageMeta(bit_depth=16))
    tensor = image.to_tensor()
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 13, 17)
    assert tensor.min() >= 0 and tensor.max() <= 1
    np.testing.assert_array_equal(Image.from_tensor(tensor, image.meta).pixels, pixels)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_keeps_mode_and_quality_matters(tmp_path, mode):
    from skimage import data

    photo = data.astronaut()[:128, :128]
    pixels = photo.mean(axis=2, keepdims=True).astype(np.uint8) if mode == "L" else photo
    image = Image(pixels, ImageMeta())
    sizes = {}
    for quality in (30, 95):
        path = tmp_path / f"q{quality}.jpg"
        write_image(path, image, quality=quality)
        sizes[quality] = path.stat().st_size
        back = read_image(path)
        assert back.channels == pixels.shape[2]
        assert PILImage.open(path).mode == mode
    assert sizes[30] < sizes[95]
    assert np.abs(back.pixels.astype(int) - pixels).mean() < 3


def test_webp_lossless_keeps_alpha(tmp_path):
    pixels = random_pixels(4)
    path = tmp_path / "a.webp"
    write_image(path, Image(pixels, ImageMeta()), quality=100)
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


def test_bmp_roundtrip(tmp_path):
    pixels = random_pixels(3)
    write_image(tmp_path / "a.bmp", Image(pixels, ImageMeta()))
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp").pixels, pixels)


def test_16bit_to_jpeg_writes_8bit_and_drops_alpha(tmp_path, caplog):
    pixels = random_pixels(4, np.uint16)
    path = tmp_path / "a.jpg"
    write_image(path, Image(pixels, ImageMeta(bit_depth=16)))
    assert PILImage.open(path).mode == "RGB"
    assert "8 bits" in caplog.text and "alpha" in caplog.text


def test_palette_png_becomes_rgb_and_with_transparency_rgba(tmp_path):
    rgb = PILImage.fromarray(random_pixels(3, size=(8, 8))).quantize(16)
    rgb.save(tmp_path / "p.png")
    plain = read_image(tmp_path / "p.png")
    assert plain.channels == 3
    np.testing.assert_array_equal(plain.pixels, np.asarray(rgb.convert("RGB")))
    rgb.info["transparency"] = 0
    rgb.save(tmp_path / "pt.png", transparency=0)
    with_alpha = read_image(tmp_path / "pt.png")
    assert with_alpha.channels == 4
    assert set(np.unique(with_alpha.pixels[..., 3])) <= {0, 255}


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = PILImage.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "c.jpg", quality=100)
    image = read_image(tmp_path / "c.jpg")
    assert image.channels == 3
    red, green, blue = image.pixels[4, 4].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_bilevel_becomes_gray(tmp_path):
    PILImage.new("1", (5, 4), 1).save(tmp_path / "b.png")
    image = read_image(tmp_path / "b.png")
    assert image.channels == 1 and image.pixels.max() == 255


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_a_viewer(tmp_path, orientation):
    pixels = random_pixels(3, size=(6, 10))
    pil = PILImage.fromarray(pixels)
    exif = pil.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "srgan test camera"
    pil.save(tmp_path / "o.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    image = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(image.pixels, expected)
    # The kept EXIF still has the camera but no longer the orientation.
    write_image(tmp_path / "w.jpg", image)
    written = PILImage.open(tmp_path / "w.jpg").getexif()
    assert written.get(0x010F) == "srgan test camera"
    assert written.get(0x0112) in (None, 1)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_icc_profile_is_kept(tmp_path, ext):
    profile = srgb_profile()
    path = tmp_path / f"icc{ext}"
    write_image(path, Image(random_pixels(3), ImageMeta(icc_profile=profile)))
    assert read_image(path).meta.icc_profile == profile


def test_tiff_16bit_written_is_read_by_tifffile(tmp_path):
    pixels = random_pixels(4, np.uint16)
    write_image(tmp_path / "a.tiff", Image(pixels, ImageMeta(bit_depth=16)))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tiff"), pixels)


def test_list_images_skips_hidden_partial_and_other_files(tmp_path):
    from srgan.imaging import list_images

    for name in ("b.png", "a.JPG", ".a.png.1234.part", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]


# --------------------------------------------------------------------------- bad input


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(random_pixels(3, size=(64, 64))).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.png", b""), "empty"),
        (lambda d: _write(d / "text.png", b"hello, not an image\n"), "not a recognised image"),
        (lambda d: _write(d / "cut.png", _png_bytes()[:300]), "truncated"),
        (
            lambda d: _write(d / "cut16.png", pngcodec.encode(random_pixels(4, np.uint16))[:200]),
            "damaged",
        ),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(BadInputError) as caught:
        read_image(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and message in text


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    # A 20000 x 20000 PNG of zeros compresses to a few hundred kilobytes.
    bomb = PILImage.new("L", (20000, 20000))
    bomb.save(tmp_path / "bomb.png")
    with pytest.raises(BadInputError, match="exceeds the limit"):
        read_image(tmp_path / "bomb.png", max_pixels=100_000_000)


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "keep.png"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError):
        write_image(path, Image(np.zeros((4, 4, 5), np.uint8), ImageMeta()))
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_unknown_output_extension_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="unsupported output extension"):
        write_image(tmp_path / "a.xyz", Image(random_pixels(3), ImageMeta()))
    assert list(tmp_path.iterdir()) == []


def test_16bit_png_keeps_exif(tmp_path):
    exif = PILImage.new("RGB", (1, 1)).getexif()
    exif[0x010F] = "srgan camera"
    path = tmp_path / "e.png"
    write_image(path, Image(random_pixels(3, np.uint16), ImageMeta(16, exif=exif.tobytes())))
    assert PILImage.open(path).getexif().get(0x010F) == "srgan camera"
    assert read_image(path).meta.bit_depth == 16


def test_tiff_tags_are_not_copied_as_exif(tmp_path):
    PILImage.fromarray(random_pixels(3)).save(tmp_path / "t.tif")
    image = read_image(tmp_path / "t.tif")
    assert image.meta.exif is None
    write_image(tmp_path / "t.jpg", image)
    assert 256 not in PILImage.open(tmp_path / "t.jpg").getexif()  # no ImageWidth tag


def test_deep_tiff_colour_models(tmp_path):
    gray = random_pixels(1, np.uint16)[..., 0]
    tifffile.imwrite(tmp_path / "white.tif", gray, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "white.tif").pixels[..., 0], 65535 - gray)
    tifffile.imwrite(tmp_path / "cmyk.tif", random_pixels(4, np.uint16), photometric="separated")
    with pytest.raises(BadInputError, match="SEPARATED"):
        read_image(tmp_path / "cmyk.tif")


def test_bmp_drops_alpha_with_a_warning(tmp_path, caplog):
    write_image(tmp_path / "a.bmp", Image(random_pixels(4), ImageMeta()))
    assert read_image(tmp_path / "a.bmp").channels == 3
    assert "alpha" in caplog.text
