"""Tests for seamless tiled upscaling in bounded memory."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from srgan.imaging.io import pixels_to_tensor, tensor_to_pixels
from srgan.imaging.resize import imresize
from srgan.inference import tiling
from srgan.inference.backends.torch import as_numpy_forward
from srgan.inference.tiling import auto_tile_size, available_memory_bytes


def tiled_upscale(source, forward, *args, **kwargs):
    """The engine driven by a PyTorch function, through the torch backend's adapter."""
    return tiling.tiled_upscale(source, as_numpy_forward(forward), *args, **kwargs)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiles are tiny: one thread is faster and steadier on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.inference_mode():
        yield
    torch.set_num_threads(threads)


def _bicubic(scale: int):
    return lambda x: imresize(x, scale=scale)


def _untiled(source: np.ndarray, forward, bit_depth: int = 8) -> np.ndarray:
    """Forward on the whole image, rounded like `tensor_to_pixels`."""
    return tensor_to_pixels(forward(pixels_to_tensor(source).unsqueeze(0))[0], bit_depth)


def _photo() -> np.ndarray:
    return data.astronaut()[:150, :190]


class _SmallNet(torch.nn.Module):
    """Five 3x3 convs (receptive field 11 px) + PixelShuffle x4 on a nearest-upsampled skip."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        channels = 3
        for _ in range(4):
            layers += [torch.nn.Conv2d(channels, 16, 3, padding=1), torch.nn.ReLU()]
            channels = 16
        layers += [torch.nn.Conv2d(16, 3 * 16, 3, padding=1), torch.nn.PixelShuffle(4)]
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="nearest") + 0.5 * self.body(x)


@pytest.fixture(scope="module")
def small_net() -> _SmallNet:
    torch.manual_seed(0)
    return _SmallNet().eval()


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("tile", [None, 0, 500, 190])
def test_single_tile_is_bit_identical(tile: int | None, small_net: _SmallNet) -> None:
    src = _photo()
    for forward, scale in ((_bicubic(2), 2), (small_net, 4)):
        got = tiled_upscale(src, forward, scale, tile, pad=8)
        np.testing.assert_array_equal(got, _untiled(src, forward))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize(
    ("tile", "pad"), [(32, 3), (37, 3), (50, 4), (64, 3), (17, 6), (7, 3), (5, 8)]
)
def test_local_operator_is_exact(scale: int, tile: int, pad: int) -> None:
    src = _photo()
    forward = _bicubic(scale)
    got = tiled_upscale(src, forward, scale, tile, pad)
    expected = _untiled(src, forward)
    assert got.shape == expected.shape == (150 * scale, 190 * scale, 3)
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1


def _seam_stats(tiled: np.ndarray, untiled: np.ndarray, lines: list[int], axis: int):
    """Mean |tiled - untiled| on the two lines at each tile edge vs elsewhere, and the
    gradient energy across tile edges relative to lines 4 and 8 px away (tiled / untiled)."""
    t = np.moveaxis(tiled.astype(np.float64), axis, 0)
    u = np.moveaxis(untiled.astype(np.float64), axis, 0)
    diff = np.abs(t - u)
    at_edge = np.zeros(t.shape[0], dtype=bool)
    for line in lines:
        at_edge[line - 1 : line + 1] = True

    def energy(img: np.ndarray, offsets: tuple[int, ...]) -> float:
        return float(
            np.mean([((img[i + k] - img[i + k - 1]) ** 2).mean() for i in lines for k in offsets])
        )

    ratio_t = energy(t, (0,)) / energy(t, (-8, -4, 4, 8))
    ratio_u = energy(u, (0,)) / energy(u, (-8, -4, 4, 8))
    return diff[at_edge].mean(), diff[~at_edge].mean(), ratio_t / ratio_u


def test_network_tiling_is_close_and_seamless(small_net: _SmallNet) -> None:
    src = data.astronaut()[100:260, 150:350]  # 160 x 200: the last column of tiles is 8 px
    tile, scale = 32, 4
    untiled = _untiled(src, small_net)
    tiled = tiled_upscale(src, small_net, scale, tile, pad=8)
    diff = np.abs(tiled.astype(int) - untiled)
    assert diff.mean() < 1.0
    assert diff.max() <= 8
    for axis, length in ((0, src.shape[0]), (1, src.shape[1])):
        lines = [b * scale for b in range(tile, length, tile)]
        at_edge, elsewhere, energy_ratio = _seam_stats(tiled, untiled, lines, axis)
        assert at_edge <= 2 * elsewhere + 0.01, (axis, at_edge, elsewhere)
        assert abs(energy_ratio - 1) < 0.02, (axis, energy_ratio)

    # The seam statistic does see the hard seams of naive tiling without context.
    naive = tiled_upscale(src, small_net, scale, tile, pad=0)
    lines = [b * scale for b in range(tile, src.shape[0], tile)]
    at_edge, elsewhere, _ = _seam_stats(naive, untiled, lines, 0)
    assert at_edge > 2 * elsewhere + 0.01


# ----------------------------------------------------------------------------- dtypes, channels


def test_uint16_in_uint16_out() -> None:
    src = (_photo().astype(np.uint16) * 257) ^ 0x5A  # use the low byte too
    forward = _bicubic(2)
    got = tiled_upscale(src, forward, 2, 40, 3)
    assert got.dtype == np.uint16
    expected = _untiled(src, forward, bit_depth=16)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_uint16_source_to_uint8_output() -> None:
    src = _photo().astype(np.uint16) * 257
    forward = _bicubic(2)
    got = tiled_upscale(src, forward, 2, 40, 3, out_dtype=np.uint8)
    assert got.dtype == np.uint8
    expected = _untiled(src, forward, bit_depth=8)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_uint8_source_to_uint16_output() -> None:
    src = _photo()
    got = tiled_upscale(src, _bicubic(2), 2, None, 0, out_dtype=np.dtype(np.uint16))
    expected = _untiled(src, _bicubic(2), bit_depth=16)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_gray_and_alpha_channels(channels: int) -> None:
    photo = _photo()
    src = np.ascontiguousarray(np.concatenate([photo, photo[..., 1:2]], axis=2)[..., -channels:])
    forward = _bicubic(3)
    got = tiled_upscale(src, forward, 3, 45, 4)
    assert got.shape == (450, 570, channels)
    assert np.abs(got.astype(int) - _untiled(src, forward)).max() <= 1


# ----------------------------------------------------------------------------- size_multiple


def _needs_multiple_of(multiple: int, scale: int):
    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise AssertionError(f"tile {tuple(x.shape)} is not a multiple of {multiple}")
        return imresize(x, scale=scale)

    return forward


def test_size_multiple_pads_and_crops() -> None:
    src = _photo()[:101, :87]
    forward = _needs_multiple_of(4, 2)
    with pytest.raises(AssertionError):
        tiled_upscale(src, forward, 2, 33, 3)
    got = tiled_upscale(src, forward, 2, 33, 3, size_multiple=4)
    assert got.shape == (202, 174, 3)

    # Untiled reference: the whole image reflect-padded to a multiple of 4, then cropped.
    x = pixels_to_tensor(src).unsqueeze(0)
    x = F.pad(x, (0, -87 % 4, 0, -101 % 4), mode="reflect")
    expected = tensor_to_pixels(forward(x)[0, :, :202, :174])
    # Near the bottom/right border the two runs see different amounts of reflection.
    inner = np.abs(got.astype(int) - expected)[: 202 - 6, : 174 - 6]
    assert inner.max() <= 1


def test_size_multiple_with_tiny_tiles_replicates() -> None:
    src = _photo()[:9, :10]  # tile 4: last tiles are 1 and 2 px, too small to reflect to 8
    got = tiled_upscale(src, _needs_multiple_of(8, 2), 2, 4, 0, size_multiple=8)
    assert got.shape == (18, 20, 3)
    whole = tiled_upscale(src, _needs_multiple_of(8, 2), 2, None, 0, size_multiple=8)
    assert np.abs(got.astype(int) - whole).mean() < 8


# ----------------------------------------------------------------------------- progress, args


def test_progress_reports_every_tile() -> None:
    calls: list[tuple[int, int]] = []
    tiled_upscale(_photo(), _bicubic(2), 2, 64, 3, progress=lambda d, t: calls.append((d, t)))
    total = math.ceil(150 / 64) * math.ceil(190 / 64)
    assert calls == [(i, total) for i in range(1, total + 1)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tile": -1},
        {"pad": -1},
        {"scale": 0},
        {"size_multiple": 0},
        {"source": np.zeros((8, 8), np.uint8)},
        {"source": np.zeros((2, 8, 8, 3), np.uint8)},
        {"source": np.zeros((8, 8, 3), np.float32)},
        {"out_dtype": np.float32},
    ],
)
def test_bad_arguments(kwargs: dict) -> None:
    args = {"source": np.zeros((8, 8, 3), np.uint8), "forward": _bicubic(2), "scale": 2}
    args |= {"tile": 4, "pad": 2} | kwargs
    with pytest.raises(ValueError):
        tiled_upscale(**args)


def test_wrong_forward_output_shape() -> None:
    with pytest.raises(ValueError, match="forward returned shape"):
        tiled_upscale(_photo()[:20, :20], _bicubic(3), 2, 8, 2)


# ----------------------------------------------------------------------------- partial recompute


def _retile(source, previous, forward, grid, changed, max_side=0):
    blocks = tiling.changed_blocks(changed, grid, max_side)
    return tiling.retile(source, previous, as_numpy_forward(forward), grid, blocks)


def _touched(grid: tiling.TileGrid, rows: slice, cols: slice) -> np.ndarray:
    """Tiles whose padded input box overlaps the input pixels [rows, cols]."""
    changed = np.zeros(grid.shape, dtype=bool)
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            box_rows, box_cols = grid.input_box(r, c)
            changed[r, c] = (
                box_rows.start < rows.stop
                and rows.start < box_rows.stop
                and box_cols.start < cols.stop
                and cols.start < box_cols.stop
            )
    return changed


def _moved(photo: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The photo with a patch replaced by another part of it (a local change)."""
    changed = photo.copy()
    height, width = rows.stop - rows.start, cols.stop - cols.start
    changed[rows, cols] = photo[-height:, -width:][::-1]
    return changed


def test_retile_of_every_tile_is_tiled_upscale() -> None:
    src = _photo()
    grid = tiling.tile_grid(150, 190, 2, 40, 4)
    garbage = np.full((300, 380, 3), 77, np.uint8)
    got = _retile(src, garbage, _bicubic(2), grid, np.ones(grid.shape, bool))
    expected = tiled_upscale(src, _bicubic(2), 2, 40, 4)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_retile_of_the_changed_tiles_equals_a_full_run_for_a_local_operator() -> None:
    before = _photo()
    rows, cols = slice(50, 70), slice(100, 130)
    after = _moved(before, rows, cols)
    grid = tiling.tile_grid(150, 190, 2, 32, 4)
    changed = _touched(grid, rows, cols)
    assert 0 < changed.sum() < changed.size / 2
    previous = tiled_upscale(before, _bicubic(2), 2, 32, 4)
    kept = previous.copy()
    got = _retile(after, previous, _bicubic(2), grid, changed)
    np.testing.assert_array_equal(previous, kept)  # left as it was
    expected = tiled_upscale(after, _bicubic(2), 2, 32, 4)
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert np.abs(got.astype(int) - previous).max() > 50  # the change is in


def test_retile_blends_recomputed_and_kept_tiles_without_seams(small_net: _SmallNet) -> None:
    before = data.astronaut()[100:260, 150:350]
    rows, cols = slice(60, 90), slice(70, 110)
    after = _moved(before, rows, cols)
    tile, pad, scale = 32, 8, 4
    grid = tiling.tile_grid(160, 200, scale, tile, pad)
    changed = _touched(grid, rows, cols)
    previous = tiled_upscale(before, small_net, scale, tile, pad)
    got = _retile(after, previous, small_net, grid, changed)
    full = tiled_upscale(after, small_net, scale, tile, pad)
    diff = np.abs(got.astype(int) - full)
    assert diff.mean() < 0.1
    # Along the borders between recomputed and kept tiles: no more error than elsewhere
    # in tiling itself (the network sees 11 px, more than pad / 2: not exact).
    untiled = _untiled(after, small_net)
    assert diff.max() <= np.abs(full.astype(int) - untiled).max()
    for axis in (0, 1):
        flags = np.asarray(changed.any(axis=1 - axis))
        edges = [i for i in range(1, len(flags)) if flags[i] != flags[i - 1]]
        lines = [i * tile * scale for i in edges]
        at_edge, elsewhere, energy_ratio = _seam_stats(got, untiled, lines, axis)
        assert at_edge <= 2 * elsewhere + 0.01, (axis, at_edge, elsewhere)
        assert abs(energy_ratio - 1) < 0.02, (axis, energy_ratio)


def test_changed_blocks_join_neighbours_and_respect_the_size_limit() -> None:
    grid = tiling.tile_grid(100, 100, 2, 20, 4)  # 5 x 5 tiles
    changed = np.zeros(grid.shape, bool)
    changed[1:3, 1:4] = True  # a 2 x 3 rectangle
    changed[4, 0] = True
    assert sorted(tiling.changed_blocks(changed, grid)) == [(1, 3, 1, 4), (4, 5, 0, 1)]
    # padded input sides: 3 tiles = 60 + 8, 2 tiles = 40 + 8
    blocks = tiling.changed_blocks(changed, grid, max_side=50)
    covered = np.zeros(grid.shape, bool)
    for r0, r1, c0, c1 in blocks:
        assert not covered[r0:r1, c0:c1].any()
        covered[r0:r1, c0:c1] = True
        assert grid.rows[r1 - 1].stop - grid.rows[r0].start <= 50
        assert grid.cols[c1 - 1].stop - grid.cols[c0].start <= 50
    np.testing.assert_array_equal(covered, changed)
    assert tiling.changed_blocks(np.zeros(grid.shape, bool), grid) == []
    with pytest.raises(ValueError, match="shape"):
        tiling.changed_blocks(np.zeros((2, 2), bool), grid)


# ----------------------------------------------------------------------------- memory


def test_peak_memory_is_one_band() -> None:
    height, width, channels, scale, tile, pad = 2000, 1500, 3, 4, 128, 8
    src = np.random.default_rng(0).integers(0, 256, (height, width, channels), dtype=np.uint8)

    def nearest(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(scale, 2).repeat_interleave(scale, 3)

    tracemalloc.start()
    try:
        out = tiled_upscale(src, nearest, scale, tile, pad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    band_bound = (tile + 2 * pad) * scale * width * scale * channels * 4
    extra = peak - out.nbytes
    assert extra < 3 * band_bound
    assert extra < out.size * 4 / 4  # far below a float32 copy of the output
    np.testing.assert_array_equal(out[::scale, ::scale], src)
    np.testing.assert_array_equal(out[scale - 1 :: scale, scale - 1 :: scale], src)


# ----------------------------------------------------------------------------- helpers


def test_auto_tile_size() -> None:
    assert auto_tile_size(1000.0, 512 * 512 * 1000) == 512
    assert auto_tile_size(1000.0, 512 * 512 * 1000 - 1) == 384
    assert auto_tile_size(1e9, 1) == 64
    assert auto_tile_size(1.0, 10**12) == 1024
    assert auto_tile_size(4.0, 100 * 100 * 4, candidates=(50, 100, 200)) == 100
    with pytest.raises(ValueError):
        auto_tile_size(1.0, 100, candidates=())


def test_available_memory_bytes() -> None:
    assert available_memory_bytes(torch.device("cpu")) > 0
    assert available_memory_bytes("meta") == 4 * 1024**3
