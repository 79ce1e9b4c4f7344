"""Training-pair degradations: HR batch -> LR batch, on the device the batch is on.

`bicubic` is MATLAB's imresize (the classic SR benchmark protocol). `realesrgan` is the
two-stage pipeline of Real-ESRGAN (Wang et al. 2021): blur, random resize, Gaussian or
Poisson noise, JPEG; the same again with its own settings; then the resize to the LR
size with a final sinc filter and the final JPEG, in random order. Every tensor
operation runs on the batch's device; JPEG goes through a real codec (Pillow's libjpeg)
on the CPU, one image at a time.

Randomness: parameters (kernels, factors, qualities, ...) come from a numpy Generator,
pixel noise from a torch.Generator on the batch's device (`DegradationRng`), so a seed
gives the same pairs; on the CPU bit for bit.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan.imaging.resize import imresize
from srgan.training.data.degradation_config import (
    DegradationConfig,
    ResizeMode,
    StageConfig,
    UsmConfig,
)
from srgan.training.data.kernels import (
    odd_size,
    pad_kernel,
    pulse_kernel,
    random_blur_kernel,
    sinc_kernel,
)

__all__ = [
    "DEGRADATIONS",
    "BicubicDegradation",
    "Degradation",
    "DegradationConfig",
    "DegradationRng",
    "RealESRGANDegradation",
    "add_gaussian_noise",
    "add_poisson_noise",
    "blur_step",
    "filter2d",
    "final_step",
    "jpeg_compress",
    "jpeg_step",
    "make_degradation",
    "noise_step",
    "resize",
    "resize_step",
    "usm_sharpen",
]

DegradationName = Literal["bicubic", "realesrgan"]
DEGRADATIONS: tuple[DegradationName, ...] = ("bicubic", "realesrgan")
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for gray noise


@dataclass
class DegradationRng:
    """The two generators a degradation draws from."""

    numpy: np.random.Generator
    torch: torch.Generator

    @classmethod
    def from_seed(
        cls, seed: int | Sequence[int], device: torch.device | str = "cpu"
    ) -> DegradationRng:
        """Both generators from one seed (an int or a sequence such as [seed, epoch, step])."""
        sequence = np.random.SeedSequence(seed)
        torch_seed = int(sequence.spawn(1)[0].generate_state(1, np.uint64)[0])
        generator = torch.Generator(device=torch.device(device)).manual_seed(torch_seed)
        return cls(np.random.default_rng(sequence), generator)


class Degradation(Protocol):
    scale: int

    def __call__(self, hr: torch.Tensor, rng: DegradationRng) -> torch.Tensor: ...


def _check_batch(hr: torch.Tensor, scale: int) -> None:
    if not isinstance(hr, torch.Tensor) or not hr.is_floating_point():
        raise TypeError("hr must be a floating-point tensor [N, 3, H, W] in [0, 1]")
    if hr.ndim != 4 or hr.shape[1] != 3:
        raise ValueError(f"hr must have shape [N, 3, H, W], got {list(hr.shape)}")
    height, width = hr.shape[-2:]
    if height % scale or width % scale or height < scale or width < scale:
        raise ValueError(f"HR size {height}x{width} is not a positive multiple of {scale}")


def _quantise(images: torch.Tensor) -> torch.Tensor:
    """Rounded to 8-bit levels and clipped to [0, 1], as a saved image would be."""
    return torch.clamp(torch.round(images * 255.0), 0, 255) / 255.0


# ---------------------------------------------------------------- tensor operations


def _mirror_indices(length: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of [-pad, length + pad) reflected about the edges without repeating them
    (numpy's "reflect"), for any pad: tiny intermediate images are padded correctly too."""
    positions = torch.arange(-pad, length + pad, device=device)
    if length == 1:
        return torch.zeros_like(positions)
    period = 2 * (length - 1)
    folded = torch.remainder(positions, period)
    return torch.where(folded < length, folded, period - folded)


def _reflect_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    if pad < min(height, width):  # torch's own reflection is faster where it applies
        n, channels = images.shape[:2]
        flat = images.reshape(1, n * channels, height, width)
        padded = F.pad(flat, (pad, pad, pad, pad), mode="reflect")
        return padded.reshape(n, channels, height + 2 * pad, width + 2 * pad)
    rows = _mirror_indices(height, pad, images.device)
    cols = _mirror_indices(width, pad, images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def _fft_length(minimum: int) -> int:
    """The smallest 2^a 3^b 5^c at or above `minimum` (FFTs are fast at such lengths)."""
    length = minimum
    while True:
        rest = length
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return length
        length += 1


def filter2d(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Correlate each image of [N, C, H, W] with its own kernel ([N, k, k]) or all of
    them with one ([k, k]); reflected borders; the size is kept.

    Computed by FFT on the reflect-padded image: the same result as a direct
    correlation (to float rounding), several times faster for the 21-tap kernels than
    torch's depthwise convolution on a CPU."""
    n, _, height, width = images.shape
    k = kernels.shape[-1]
    if k % 2 == 0 or kernels.shape[-2] != k:
        raise ValueError(f"kernels must be square with an odd size, got {list(kernels.shape)}")
    weight = kernels.to(images).reshape(-1, 1, k, k)
    if weight.shape[0] not in (1, n):
        raise ValueError(f"{weight.shape[0]} kernels for {n} images")
    pad = k // 2
    padded = _reflect_pad(images, pad)
    size = (_fft_length(padded.shape[-2]), _fft_length(padded.shape[-1]))
    # Correlation = convolution with the flipped kernel. With transforms at least as long
    # as the padded image, the circular wrap-around only reaches the first 2 * pad rows
    # and columns, which are cut away.
    spectrum = torch.fft.rfft2(padded, s=size)
    spectrum *= torch.fft.rfft2(torch.flip(weight, (-2, -1)), s=size)
    out = torch.fft.irfft2(spectrum, s=size)
    return out[..., 2 * pad : 2 * pad + height, 2 * pad : 2 * pad + width].contiguous()


def resize(images: torch.Tensor, size: tuple[int, int], mode: ResizeMode) -> torch.Tensor:
    """torch's area, bilinear or bicubic resampling (no antialiasing, as Real-ESRGAN)."""
    if mode == "area":
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=mode, align_corners=False)


def _per_image(
    images: torch.Tensor,
    gray: Sequence[bool],
    colour_field: Callable[[torch.Tensor], torch.Tensor],
    gray_field: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """A noise field per image: `colour_field` where `gray` is False, `gray_field` (one
    channel, shared by all three) where it is True. One image at a time: slices are
    views, where gathering subsets by index would copy the batch twice."""
    if len(gray) != images.shape[0]:
        raise ValueError(f"{len(gray)} gray flags for {images.shape[0]} images")
    noise = torch.empty_like(images)
    for index, shared in enumerate(gray):
        image = images[index : index + 1]
        noise[index : index + 1] = gray_field(image) if shared else colour_field(image)
    return noise


def _flags(values: torch.Tensor | Sequence[bool]) -> list[bool]:
    return [bool(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]


def _per_image_values(values: torch.Tensor | Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype).to(like.device).view(-1, 1, 1, 1)


def add_gaussian_noise(
    images: torch.Tensor,
    sigma: torch.Tensor | Sequence[float],
    gray: torch.Tensor | Sequence[bool],
    generator: torch.Generator,
) -> torch.Tensor:
    """images + N(0, sigma^2) per pixel, `sigma` one value per image on the [0, 1] scale;
    where `gray` is True one noise field is shared by the three channels. Not clipped."""

    def field(image: torch.Tensor, channels: int) -> torch.Tensor:
        shape = (1, channels, *image.shape[2:])
        return torch.randn(shape, generator=generator, device=image.device, dtype=image.dtype)

    noise = _per_image(images, _flags(gray), lambda x: field(x, x.shape[1]), lambda x: field(x, 1))
    return images + noise * _per_image_values(sigma, images)


def _levels(images: torch.Tensor) -> torch.Tensor:
    """Per image, the number of distinct 8-bit values rounded up to a power of two: the
    photon count scale of BasicSR's Poisson noise ([N, 1, 1, 1])."""
    n = images.shape[0]
    codes = torch.round(images.clamp(0, 1) * 255).long().reshape(n, -1)
    codes = codes + 256 * torch.arange(n, device=images.device).view(n, 1)
    distinct = (torch.bincount(codes.reshape(-1), minlength=256 * n).view(n, 256) > 0).sum(1)
    return torch.exp2(torch.ceil(torch.log2(distinct.to(images.dtype)))).view(n, 1, 1, 1)


def _poisson_field(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    quantised = _quantise(images)
    levels = _levels(quantised)
    return torch.poisson(quantised * levels, generator=generator) / levels - quantised


def add_poisson_noise(
    images: torch.Tensor,
    scale: torch.Tensor | Sequence[float],
    gray: torch.Tensor | Sequence[bool],
    generator: torch.Generator,
) -> torch.Tensor:
    """images + scale x (Poisson(v L) / L - v), v the 8-bit image and L its number of
    distinct levels rounded up to a power of two (BasicSR's model: the variance grows
    with the intensity, v / L x scale^2), `scale` one value per image. Where `gray` is
    True the noise is drawn on the luma and shared by the channels. Not clipped."""
    luma = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    noise = _per_image(
        images,
        _flags(gray),
        lambda x: _poisson_field(x, generator),
        lambda x: _poisson_field((x * luma).sum(1, keepdim=True), generator),
    )
    return images + noise * _per_image_values(scale, images)


def jpeg_compress(images: torch.Tensor, qualities: Sequence[int]) -> torch.Tensor:
    """Encode and decode each RGB image at its quality with libjpeg through Pillow
    (4:2:0 chroma subsampling, the common camera and web setting); values are clipped to
    [0, 1] and rounded to 8 bits first, as a saved image would be."""
    if len(qualities) != images.shape[0]:
        raise ValueError(f"{len(qualities)} qualities for {images.shape[0]} images")
    pixels = torch.round(images.detach().clamp(0, 1) * 255).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    decoded = np.empty_like(pixels)
    for index, quality in enumerate(qualities):
        buffer = io.BytesIO()
        Image.fromarray(pixels[index], "RGB").save(
            buffer, "JPEG", quality=int(quality), subsampling=2
        )
        buffer.seek(0)
        with Image.open(buffer) as jpeg:
            decoded[index] = np.asarray(jpeg.convert("RGB"))
    out = torch.from_numpy(decoded).to(images.device).permute(0, 3, 1, 2)
    return out.to(images.dtype) / 255.0


def _gaussian_taps(size: int) -> torch.Tensor:
    """OpenCV's getGaussianKernel(size, 0): sigma = 0.3 ((size - 1) / 2 - 1) + 0.8."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def _blur_matrix(length: int, taps: torch.Tensor) -> torch.Tensor:
    """[length, length] matrix M with (M @ x) = x correlated with `taps`, borders reflected."""
    k = taps.shape[0]
    rows = torch.arange(length).repeat_interleave(k)
    cols = _mirror_indices(length, k // 2, torch.device("cpu")).unfold(0, k, 1).reshape(-1)
    matrix = torch.zeros(length, length, dtype=taps.dtype)
    return matrix.index_put_((rows, cols), taps.repeat(length), accumulate=True)


def _separable_blur(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    # Two dense matrix products: much faster than a 51-tap convolution on a CPU.
    height, width = images.shape[-2:]
    along_rows = _blur_matrix(height, taps).to(images)
    along_cols = _blur_matrix(width, taps).to(images)
    return along_rows @ images @ along_cols.T


def usm_sharpen(images: torch.Tensor, settings: UsmConfig | None = None) -> torch.Tensor:
    """Unsharp masking of a batch in [0, 1] (see UsmConfig); the result stays in [0, 1]."""
    settings = settings or UsmConfig()
    size = settings.radius + 1 if settings.radius % 2 == 0 else settings.radius
    taps = _gaussian_taps(size)
    residual = images - _separable_blur(images, taps)
    mask = (residual.abs() * 255 > settings.threshold).to(images.dtype)
    soft_mask = _separable_blur(mask, taps)
    sharp = torch.clamp(images + settings.weight * residual, 0, 1)
    return soft_mask * sharp + (1 - soft_mask) * images


# ---------------------------------------------------------------------- pipelines


class BicubicDegradation:
    """MATLAB bicubic shrink, clipped and rounded to 8 bits (deterministic)."""

    def __init__(self, scale: int) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, not {scale}")
        self.scale = scale

    def __call__(self, hr: torch.Tensor, rng: DegradationRng | None = None) -> torch.Tensor:
        _check_batch(hr, self.scale)
        return _quantise(imresize(hr, scale=1 / self.scale))


# One function per step of a stage; each draws its parameters from `rng` in a fixed order
# (part of what a seed means: keep the order stable).


def blur_step(images: torch.Tensor, stage: StageConfig, rng: DegradationRng) -> torch.Tensor:
    """Each image blurred with its own random kernel, or left as is (1 - blur_prob)."""
    kernels = []
    for _ in range(images.shape[0]):
        if rng.numpy.uniform() < stage.blur_prob:
            kernels.append(random_blur_kernel(rng.numpy, stage))
        else:
            kernels.append(pulse_kernel(stage.kernel_sizes[1]))
    return filter2d(images, torch.stack(kernels).to(images.device))


def resize_step(
    images: torch.Tensor, stage: StageConfig, reference: tuple[int, int], rng: DegradationRng
) -> torch.Tensor:
    """The batch resized to `reference` x a factor drawn up (1..high), down (low..1) or
    kept, with a random mode (one draw for the batch: the tensor keeps one size)."""
    weights = np.asarray(stage.resize_prob, dtype=np.float64)
    direction = int(rng.numpy.choice(3, p=weights / weights.sum()))
    low, high = stage.resize_range
    factor = 1.0
    if direction == 0:
        factor = float(rng.numpy.uniform(1.0, high))
    elif direction == 1:
        factor = float(rng.numpy.uniform(low, 1.0))
    mode = stage.resize_modes[int(rng.numpy.integers(len(stage.resize_modes)))]
    size = (max(1, int(reference[0] * factor)), max(1, int(reference[1] * factor)))
    return resize(images, size, mode)


def noise_step(images: torch.Tensor, stage: StageConfig, rng: DegradationRng) -> torch.Tensor:
    """Gaussian (gaussian_noise_prob) or Poisson noise per image, colour or gray
    (gray_noise_prob), at a level drawn per image; clipped to [0, 1]."""
    n = images.shape[0]
    gaussian = rng.numpy.uniform(size=n) < stage.gaussian_noise_prob
    sigma = rng.numpy.uniform(*stage.noise_range, size=n) / 255.0
    poisson_scale = rng.numpy.uniform(*stage.poisson_scale_range, size=n)
    gray = rng.numpy.uniform(size=n) < stage.gray_noise_prob
    out = torch.empty_like(images)
    for i in range(n):
        image, flag = images[i : i + 1], [bool(gray[i])]
        if gaussian[i]:
            out[i : i + 1] = add_gaussian_noise(image, [sigma[i]], flag, rng.torch)
        else:
            out[i : i + 1] = add_poisson_noise(image, [poisson_scale[i]], flag, rng.torch)
    return out.clamp_(0, 1)


def jpeg_qualities(stage: StageConfig, n: int, rng: DegradationRng) -> list[int]:
    low, high = stage.jpeg_range
    return [int(q) for q in rng.numpy.integers(low, high + 1, size=n)]


def jpeg_step(images: torch.Tensor, stage: StageConfig, rng: DegradationRng) -> torch.Tensor:
    """Each image through JPEG at a quality drawn from jpeg_range."""
    return jpeg_compress(images, jpeg_qualities(stage, images.shape[0], rng))


def final_sinc_kernels(config: DegradationConfig, n: int, rng: DegradationRng) -> torch.Tensor:
    """Per image a sinc kernel (final_sinc_prob; cutoff in [pi/3, pi]) or the identity,
    sized from second.kernel_sizes, [n, k, k]."""
    sizes = config.second.kernel_sizes
    kernels = []
    for _ in range(n):
        if rng.numpy.uniform() < config.final_sinc_prob:
            size = odd_size(rng.numpy, sizes)
            cutoff = float(rng.numpy.uniform(math.pi / 3, math.pi))
            kernels.append(pad_kernel(sinc_kernel(size, cutoff), sizes[1]))
        else:
            kernels.append(pulse_kernel(sizes[1]))
    return torch.stack(kernels)


def final_step(
    images: torch.Tensor, config: DegradationConfig, lr_size: tuple[int, int], rng: DegradationRng
) -> torch.Tensor:
    """[resize to lr_size + sinc filter] and the final JPEG (second.jpeg_range), in an
    order drawn for the batch; Real-ESRGAN found the other orders twist lines."""
    sinc = final_sinc_kernels(config, images.shape[0], rng).to(images.device)
    jpeg_first = rng.numpy.uniform() < config.final_jpeg_first_prob
    modes = config.final_resize_modes
    mode = modes[int(rng.numpy.integers(len(modes)))]
    qualities = jpeg_qualities(config.second, images.shape[0], rng)
    out = jpeg_compress(images, qualities) if jpeg_first else images
    out = filter2d(resize(out, lr_size, mode), sinc)
    return out if jpeg_first else jpeg_compress(out, qualities)


class RealESRGANDegradation:
    """Real-ESRGAN's high-order degradation of an HR batch in [0, 1] to an LR batch of
    1 / scale the size (rounded to 8 bits). See DegradationConfig for the settings."""

    def __init__(self, config: DegradationConfig | None = None, scale: int = 4) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, not {scale}")
        self.config = config or DegradationConfig()
        self.scale = scale

    def __call__(self, hr: torch.Tensor, rng: DegradationRng) -> torch.Tensor:
        _check_batch(hr, self.scale)
        if rng.torch.device.type != hr.device.type:
            raise ValueError(
                f"the torch generator is on {rng.torch.device} but the batch on {hr.device}: "
                "make it with DegradationRng.from_seed(seed, device=hr.device)"
            )
        chunk = self.config.chunk_size or hr.shape[0]
        parts = [self._degrade(part, rng) for part in torch.split(hr, chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def sharpen_target(self, hr: torch.Tensor) -> torch.Tensor:
        """The HR target with the configured unsharp masking (unchanged if gt_usm is off)."""
        return usm_sharpen(hr, self.config.usm) if self.config.gt_usm else hr

    def _degrade(self, hr: torch.Tensor, rng: DegradationRng) -> torch.Tensor:
        first, second = self.config.first, self.config.second
        height, width = hr.shape[-2:]
        lr_size = (height // self.scale, width // self.scale)
        out = blur_step(hr, first, rng)
        out = resize_step(out, first, (height, width), rng)
        out = noise_step(out, first, rng)
        out = jpeg_step(out, first, rng)
        out = blur_step(out, second, rng)
        out = resize_step(out, second, lr_size, rng)
        out = noise_step(out, second, rng)
        return _quantise(final_step(out, self.config, lr_size, rng))


def make_degradation(
    name: DegradationName, config: DegradationConfig | None = None, scale: int = 4
) -> Degradation:
    """The degradation called `name` (bicubic, realesrgan); `config` is for realesrgan."""
    if name == "bicubic":
        return BicubicDegradation(scale)
    if name == "realesrgan":
        return RealESRGANDegradation(config, scale)
    raise ValueError(f"unknown degradation {name!r}: use one of {', '.join(DEGRADATIONS)}")
