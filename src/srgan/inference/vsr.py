"""Run a video super-resolution (temporal) model over a stream of frames.

Temporal windows. A recurrent VSR network sees a whole clip at once, but a video is too
long for that, so frames go through in overlapping windows of ``window`` frames that
advance by ``window - 2 * margin``. Of each window only the central outputs are kept:
the ``margin`` frames at either end are context whose outputs are recomputed, with
context on both sides, by the neighbouring window. The first window also keeps its start
and the last its end (there is no context beyond the video). The last window is aligned to
the end of the stream (it holds the last ``window`` frames), so it overlaps its
predecessor more than the others do. For 12 frames, window 5 and margin 1::

    window [0, 5)   keeps 0 1 2 3
    window [3, 8)   keeps 4 5 6
    window [6, 11)  keeps 7 8 9
    window [7, 12)  keeps 10 11

Every output frame is exactly the network's output for that frame within the window that
kept it; every frame away from the ends of the video has at least ``margin`` frames of
context on each side. At most ``window`` input frames are held at any time.

Scene cuts and held frames. Within a window, frames are split at scene cuts and held
(repeated) frames are run once (`imaging.scene_cuts`): the network never carries features
from one scene into the next, and a run of identical input frames gives identical output
frames (no flicker). `TemporalWindows(scene_cuts=False)` runs every window whole.

Spatial tiles. A window of frames ``(T, H, W, C)`` is stacked into one ``(H, W, T*C)``
array and cut into tiles with ``tiling.tiled_upscale``: each tile is reshaped back into a
``[1, T, C, h, w]`` clip for the network. Large frames (1080p and up) thus run in bounded
memory with the same seam-free blending as images. The recurrence spreads information
further than a tile's padding, so a tiled result is close to, not equal to, an untiled one.

Nothing here prints.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from srgan.defaults import DEFAULT_VSR_WINDOW
from srgan.errors import BadInputError
from srgan.imaging.scene_cuts import plan_segments, run_in_segments, transitions
from srgan.inference.tiling import Forward, tiled_upscale
from srgan.inference.upscaler import AnyModel, UpscaleOptions, make_runner, tile_for_budget
from srgan.zoo.descriptor import LoadedModel

__all__ = [
    "DEFAULT_WINDOW",
    "DEFAULT_WINDOWS",
    "ClipUpscaler",
    "TemporalWindows",
    "WindowedVSR",
    "default_margin",
    "upscale_clip",
    "upscale_frames",
]

DEFAULT_WINDOW = DEFAULT_VSR_WINDOW
MAX_WINDOW = 64

ClipUpscaler = Callable[[np.ndarray], np.ndarray]
"""(T, H, W, C) integer frames -> (T, H*scale, W*scale, C) frames of the same dtype."""


def default_margin(window: int) -> int:
    """Context frames dropped at each end of a window: a quarter of it, at least 1.

    Window 5 -> margin 1 (advance 3: each frame computed 5/3 times on average), 9 -> 2."""
    return max(1, window // 4) if window >= 3 else 0


@dataclass(frozen=True)
class TemporalWindows:
    """Window length and margin, checked (BadInputError) on creation."""

    window: int = DEFAULT_WINDOW
    margin: int | None = None  # None: default_margin(window)
    scene_cuts: bool = True  # split windows at cuts, run held frames once

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_WINDOW:
            raise BadInputError(f"--window {self.window}: give 1 to {MAX_WINDOW} frames")
        margin = default_margin(self.window) if self.margin is None else self.margin
        if margin < 0 or 2 * margin >= self.window:
            raise BadInputError(
                f"a margin of {margin} frames leaves nothing of a {self.window}-frame window"
            )
        object.__setattr__(self, "margin", margin)

    @property
    def context(self) -> int:
        return int(self.margin or 0)

    @property
    def stride(self) -> int:
        return self.window - 2 * self.context


DEFAULT_WINDOWS = TemporalWindows()


class WindowedVSR:
    """Feed frames one by one; get upscaled frames back, in order, as windows complete.

    ``upscale`` runs one window ``(T, H, W, C) -> (T, H*s, W*s, C)``. ``push`` returns the
    outputs that became final (possibly none), ``finish`` the rest at the end of the stream.
    """

    def __init__(self, upscale: ClipUpscaler, windows: TemporalWindows = DEFAULT_WINDOWS):
        self.upscale = upscale
        self.windows = windows
        self.held: deque[np.ndarray] = deque(maxlen=windows.window)  # the last input frames
        self.received = 0  # frames pushed so far
        self.emitted = 0  # frames whose outputs were returned

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.held.append(frame)
        self.received += 1
        if len(self.held) < self.windows.window or not self._window_is_due():
            return []
        return self._run(keep_until=self.received - self.windows.context)

    def finish(self) -> list[np.ndarray]:
        if self.emitted >= self.received:
            return []
        return self._run(keep_until=self.received)

    def _window_is_due(self) -> bool:
        """The held window starts `margin` frames before the first frame not yet emitted
        (the first window: at frame 0)."""
        window_start = self.received - len(self.held)
        wanted = 0 if self.emitted == 0 else self.emitted - self.windows.context
        return window_start == wanted

    def _run(self, keep_until: int) -> list[np.ndarray]:
        window_start = self.received - len(self.held)
        outputs = self.upscale(np.stack(self.held))
        kept = outputs[self.emitted - window_start : keep_until - window_start]
        self.emitted = keep_until
        return [np.ascontiguousarray(frame) for frame in kept]


def by_scene(upscale: ClipUpscaler) -> ClipUpscaler:
    """`upscale` run on each scene of a window alone, each held frame once."""

    def run(frames: np.ndarray) -> np.ndarray:
        segments = plan_segments(transitions(list(frames)))
        return run_in_segments(frames, segments, upscale, np.concatenate)

    return run


def _clip_tile_forward(runner: Forward, frames: int, model_channels: int) -> Forward:
    """A tile forward for stacked frames: [1, T*C, h, w] -> [1, T*C, h*s, w*s].

    Gray frames (C = 1) go through a colour model as three equal channels, averaged after."""

    def forward(tile: np.ndarray) -> np.ndarray:
        _, stacked, height, width = tile.shape
        channels = stacked // frames
        clip = tile.reshape(1, frames, channels, height, width)
        if channels != model_channels:
            clip = np.repeat(clip, model_channels, axis=2)
        out = np.asarray(runner(np.ascontiguousarray(clip)))
        if channels != model_channels:
            out = out.mean(axis=2, keepdims=True, dtype=np.float32)
        return out.reshape(1, stacked, out.shape[-2], out.shape[-1])

    return forward


def clip_tile_size(model: AnyModel, frames: np.ndarray, options: UpscaleOptions) -> int:
    """The tile side for a window of frames: the user's, or what fits the memory budget
    with the activations of every frame of the window."""
    if options.tile is not None:
        return options.tile
    count, height, width = frames.shape[:3]
    per_pixel = model.descriptor.memory_per_pixel * count
    if not model.descriptor.tileable or per_pixel <= 0:
        return 0
    return tile_for_budget(model, per_pixel, height, width, options)


def upscale_clip(
    model: AnyModel, frames: np.ndarray, options: UpscaleOptions, runner: Forward
) -> np.ndarray:
    """(T, H, W, C) uint8/uint16 frames -> (T, H*s, W*s, C), tiled in space (not resized
    to --outscale: see `upscale_frames`). C is the model's channels, or 1 for a colour
    model (gray frames)."""
    count, height, width, channels = frames.shape
    wanted = model.descriptor.in_channels
    if channels != wanted and not (channels == 1 and wanted == 3):
        raise BadInputError(
            f"model {model.name} takes {wanted}-channel frames; these have {channels}"
        )
    scale = int(model.scale)
    stacked = frames.transpose(1, 2, 0, 3).reshape(height, width, count * channels)
    result = tiled_upscale(
        stacked,
        _clip_tile_forward(runner, count, wanted),
        scale,
        clip_tile_size(model, frames, options),
        options.tile_pad,
        size_multiple=model.descriptor.size_multiple,
    )
    return result.reshape(height * scale, width * scale, count, channels).transpose(2, 0, 1, 3)


def windowed_runner(
    model: AnyModel,
    options: UpscaleOptions,
    windows: TemporalWindows = DEFAULT_WINDOWS,
    runner: Forward | None = None,
) -> WindowedVSR:
    """A `WindowedVSR` running `model` (PyTorch, temporal) with these options, at the
    model's own scale."""
    if not isinstance(model, LoadedModel) or not model.descriptor.temporal:
        raise BadInputError(f"model {model.name} is not a video (temporal) PyTorch model")
    forward = runner or make_runner(model, options)

    def upscale(frames: np.ndarray) -> np.ndarray:
        return upscale_clip(model, frames, options, forward)

    return WindowedVSR(by_scene(upscale) if windows.scene_cuts else upscale, windows)


def resize_to_outscale(
    pixels: np.ndarray, source_size: tuple[int, int], outscale: float | None, scale: float
) -> np.ndarray:
    """An upscaled frame brought to ceil(side * outscale) by MATLAB bicubic, as
    `upscale_image` does; unchanged without --outscale."""
    if outscale is None or outscale == scale:
        return pixels
    import torch

    from srgan.imaging.io import Image, ImageMeta
    from srgan.imaging.resize import imresize, output_size

    size = output_size(*source_size, outscale)
    image = Image(pixels, ImageMeta(bit_depth=pixels.itemsize * 8))
    with torch.inference_mode():
        tensor = imresize(image.to_tensor(), size=size).clamp_(0, 1)
    return Image.from_tensor(tensor, image.meta).pixels


def upscale_frames(
    model: AnyModel,
    frames: Iterable[np.ndarray],
    options: UpscaleOptions | None = None,
    windows: TemporalWindows = DEFAULT_WINDOWS,
    runner: Forward | None = None,
) -> Iterator[np.ndarray]:
    """Upscale a stream of (H, W, C) frames with a temporal model, yielding each output
    frame (at --outscale if set) as soon as it is final; holds at most one window."""
    options = options or UpscaleOptions()
    vsr = windowed_runner(model, options, windows, runner)
    size: tuple[int, int] | None = None
    for frame in frames:
        size = (frame.shape[0], frame.shape[1])
        for out in vsr.push(frame):
            yield resize_to_outscale(out, size, options.outscale, model.scale)
    for out in vsr.finish():
        assert size is not None
        yield resize_to_outscale(out, size, options.outscale, model.scale)
