"""Results written band by band: the tiling engine hands rows on as each band is blended,
the banded resize equals the whole-image one, and the streamed PNG/TIFF files decode to
the same pixels as the files written from the whole image."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

import srgan
from srgan.imaging.io import Image, ImageMeta, read_image, write_image, write_rows
from srgan.imaging.png_stream import PngRowWriter
from srgan.imaging.resize import imresize, resize_rows
from srgan.imaging.rows import collect, stream_array
from srgan.inference.tiling import tiled_rows
from tests import pngcodec
from tests.hostile_files import run_srgan


def random_pixels(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def test_rows_are_handed_on_as_each_band_is_blended():
    calls = []

    def forward(x: np.ndarray) -> np.ndarray:
        calls.append(x.shape)
        return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)

    source = random_pixels((40, 24, 3))
    stream = tiled_rows(source, forward, 2, 8, 2)
    blocks = iter(stream)
    first = next(blocks)
    # Only the first row of tiles (3 tiles across) ran before the first rows came out.
    assert len(calls) == 3 and 0 < first.shape[0] < 80
    rest = list(blocks)
    assert len(calls) == 15 and sum(b.shape[0] for b in [first, *rest]) == 80
    whole = np.concatenate([first, *rest])
    np.testing.assert_array_equal(whole, np.repeat(np.repeat(source, 2, axis=0), 2, axis=1))


@pytest.mark.parametrize(
    "kwargs", [{"scale": 0.25}, {"scale": 1 / 3}, {"scale": 2.5}, {"size": (37, 90)}]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_banded_resize_equals_the_whole_image_resize(kwargs, dtype):
    pixels = random_pixels((61, 47, 3), dtype)
    meta = ImageMeta(bit_depth=np.dtype(dtype).itemsize * 8)
    whole = Image.from_tensor(
        imresize(Image(pixels, meta).to_tensor(), **kwargs).clamp_(0, 1), meta
    )
    banded = collect(resize_rows(stream_array(pixels, rows_per_block=5), **kwargs))
    np.testing.assert_array_equal(banded, whole.pixels)


LAYOUTS = [(1, np.uint8), (2, np.uint8), (3, np.uint8), (4, np.uint8), (1, np.uint16),
           (3, np.uint16), (4, np.uint16)]  # fmt: skip


@pytest.mark.parametrize(("channels", "dtype"), LAYOUTS)
def test_streamed_png_is_valid_and_has_the_pixels_and_chunks(channels, dtype):
    pixels = random_pixels((23, 17, channels), dtype, seed=channels)
    buffer = io.BytesIO()
    writer = PngRowWriter(
        buffer,
        23,
        17,
        channels,
        np.dtype(dtype).itemsize * 8,
        level=3,
        icc_profile=b"profile bytes",
        exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00",
    )
    for start in (0, 1, 9, 22):  # uneven blocks, one of a single row
        writer.write(pixels[start : {0: 1, 1: 9, 9: 22, 22: 23}[start]])
    writer.close()
    data = buffer.getvalue()
    decoded, chunks = pngcodec.decode(data)  # independent decoder: checks every CRC
    np.testing.assert_array_equal(decoded, pixels)
    assert chunks[b"eXIf"] == b"MM\x00*\x00\x00\x00\x08\x00\x00"
    assert chunks[b"iCCP"].startswith(b"ICC profile\x00\x00")
    libpng = imagecodecs.png_decode(data)
    np.testing.assert_array_equal(libpng.reshape(pixels.shape), pixels)


def _decode(path):
    if path.suffix == ".tif":
        pixels = tifffile.imread(path)
    else:
        pixels = imagecodecs.png_decode(path.read_bytes())
    return pixels.reshape(*pixels.shape[:2], -1)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (4, np.uint8), (3, np.uint16)])
def test_cli_streamed_output_decodes_like_the_whole_image_written(tmp_path, ext, channels, dtype):
    pixels = random_pixels((40, 30, channels), dtype, seed=7)
    meta = ImageMeta(icc_profile=b"not a real profile, kept as bytes")
    source = tmp_path / f"in{ext}"
    write_image(source, Image(pixels, meta))
    streamed = tmp_path / f"streamed{ext}"
    # Tiles (alpha as a second channel group, interleaved), then the banded --outscale.
    model = ["-m", "anime-video", "--backend", "torch", "--tile", "16", "--outscale", "3.5"]
    result = run_srgan(["-v", "upscale", source, streamed, *model], timeout=180)
    assert result.returncode == 0, result.stderr
    assert "(streamed)" in result.stderr
    # The same job through the API: the whole result in memory, then written at once.
    torch_model = srgan.load_model("anime-video", backend="torch")  # as the CLI run above
    whole = srgan.upscale(source, torch_model, tile=16, outscale=3.5)
    assert isinstance(whole, Image)
    in_memory = tmp_path / f"whole{ext}"
    write_image(in_memory, whole)
    np.testing.assert_array_equal(_decode(streamed), _decode(in_memory))
    np.testing.assert_array_equal(read_image(streamed).pixels, whole.pixels)
    assert read_image(streamed).meta.icc_profile == meta.icc_profile
    if ext == ".png":
        with PILImage.open(streamed) as pil:
            pil.load()  # Pillow reads it too (its own CRC and zlib checks)


def test_streamed_output_never_holds_the_whole_image(tmp_path):
    """A 4788x4788 RGB result (66 MiB) written as PNG by `srgan upscale` is never held:
    the same job writing JPEG (encoded from the whole image) peaks higher by more than the
    image. (Bicubic at a fractional scale: the banded resize feeds the writer directly.)"""
    source = tmp_path / "in.png"
    write_image(source, Image(random_pixels((1200, 1200, 3), seed=3), ImageMeta()))
    args = ["-m", "bicubic", "--outscale", "3.99"]
    png = run_srgan(["upscale", source, tmp_path / "o.png", *args], timeout=300)
    jpeg = run_srgan(["upscale", source, tmp_path / "o.jpg", *args], timeout=300)
    assert png.returncode == jpeg.returncode == 0, png.stderr + jpeg.stderr
    output_mb = 4788 * 4788 * 3 / 2**20
    assert jpeg.peak_rss_mb - png.peak_rss_mb > output_mb, (png.peak_rss_mb, jpeg.peak_rss_mb)
    assert read_image(tmp_path / "o.png").pixels.shape == (4788, 4788, 3)


def test_write_rows_of_a_non_streamed_format_collects_them(tmp_path):
    pixels = random_pixels((9, 7, 3))
    write_rows(tmp_path / "o.bmp", stream_array(pixels, 2), ImageMeta())
    np.testing.assert_array_equal(read_image(tmp_path / "o.bmp").pixels, pixels)
