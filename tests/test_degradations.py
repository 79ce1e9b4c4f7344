"""The training-pair degradations: kernels, each Real-ESRGAN stage on synthetic images,
the whole pipeline's determinism and sizes, its configuration, and bicubic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from srgan.imaging.resize import imresize
from srgan.training.data.degradation_config import (
    DegradationConfig,
    KernelProbabilities,
    StageConfig,
    UsmConfig,
)
from srgan.training.data.degradations import (
    BicubicDegradation,
    DegradationRng,
    RealESRGANDegradation,
    add_gaussian_noise,
    add_poisson_noise,
    blur_step,
    filter2d,
    final_step,
    jpeg_compress,
    jpeg_step,
    make_degradation,
    noise_step,
    resize_step,
    usm_sharpen,
)
from srgan.training.data.kernels import (
    gaussian_kernel,
    generalized_gaussian_kernel,
    odd_size,
    plateau_kernel,
    random_blur_kernel,
    random_sinc_cutoff,
    sinc_kernel,
)

KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def only_kernel(kind: str, **changes: object) -> StageConfig:
    weights = {name: 1.0 if name == kind else 0.0 for name in KINDS}
    return StageConfig(kernel_prob=KernelProbabilities(**weights), sinc_prob=0.0, **changes)


def moments(kernel: torch.Tensor) -> tuple[float, float, float]:
    """Variance along x (columns), along y (rows), and the x-y covariance."""
    axis = torch.arange(kernel.shape[-1], dtype=kernel.dtype) - (kernel.shape[-1] - 1) / 2
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return (
        float((kernel * x * x).sum()),
        float((kernel * y * y).sum()),
        float((kernel * x * y).sum()),
    )


def edge_width(row: torch.Tensor) -> float:
    """10-90% rise distance (pixels, interpolated) of a monotonic rising edge profile."""
    low, high = float(row[0]), float(row[-1])
    values = ((row - low) / (high - low)).tolist()

    def crossing(level: float) -> float:
        for i in range(len(values) - 1):
            if values[i] < level <= values[i + 1]:
                return i + (level - values[i]) / (values[i + 1] - values[i])
        raise AssertionError(f"profile never crosses {level}")

    return crossing(0.9) - crossing(0.1)


def smooth_image(size: int = 128, seed: int = 0) -> torch.Tensor:
    """[1, 3, size, size]: slow ramps and soft blobs, nothing sharp (content of JPEG tests)."""
    axis = torch.linspace(0, 1, size, dtype=torch.float64)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    gen = torch.Generator().manual_seed(seed)
    phase = torch.rand(3, generator=gen) * 6
    channels = [
        0.5 + 0.3 * torch.sin(2.2 * math.pi * x + phase[c]) * torch.cos(1.7 * math.pi * y)
        for c in range(3)
    ]
    return torch.stack(channels).unsqueeze(0).float()


# ------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kind", KINDS)
def test_every_kernel_family_sums_to_one_at_the_padded_size(kind):
    rng = np.random.default_rng(0)
    stage = only_kernel(kind)
    for _ in range(20):
        kernel = random_blur_kernel(rng, stage)
        assert kernel.shape == (21, 21)
        assert kernel.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert kernel.min() >= 0
        torch.testing.assert_close(kernel, kernel.flip(0, 1))  # centrally symmetric
        assert int(kernel.argmax()) == 21 * 10 + 10  # peak in the middle


def test_sinc_kernels_sum_to_one_and_their_sizes_and_cutoffs_follow_real_esrgan():
    rng = np.random.default_rng(1)
    stage = StageConfig(sinc_prob=1.0)
    kernels = [random_blur_kernel(rng, stage) for _ in range(30)]
    assert all(k.shape == (21, 21) and k.sum().item() == pytest.approx(1) for k in kernels)
    assert any(k.min() < 0 for k in kernels)  # ringing lobes: it is a sinc, not a blur
    sizes = {odd_size(rng, (7, 21)) for _ in range(400)}
    assert sizes == {7, 9, 11, 13, 15, 17, 19, 21}
    small = [random_sinc_cutoff(rng, 11) for _ in range(300)]
    large = [random_sinc_cutoff(rng, 13) for _ in range(300)]
    assert math.pi / 3 <= min(small) and max(small) <= math.pi
    assert math.pi / 5 <= min(large) < math.pi / 3  # larger kernels may cut lower


def test_gaussian_kernels_have_the_configured_spread_and_orientation():
    var_x, var_y, cov = moments(gaussian_kernel(21, 2.0))
    assert var_x == pytest.approx(4.0, rel=1e-3) and var_y == pytest.approx(var_x)
    assert cov == pytest.approx(0.0, abs=1e-12)
    # Wide along x (columns) at theta 0, along y (rows) at theta pi/2.
    var_x, var_y, cov = moments(gaussian_kernel(21, 3.0, 1.0, 0.0))
    assert var_x == pytest.approx(9.0, rel=1e-2) and var_y == pytest.approx(1.0, rel=1e-3)
    var_x, var_y, _ = moments(gaussian_kernel(21, 3.0, 1.0, math.pi / 2))
    assert var_x == pytest.approx(1.0, rel=1e-3) and var_y == pytest.approx(9.0, rel=1e-2)
    # At pi/4 the long axis runs from top left to bottom right: cov = (9 - 1) / 2.
    var_x, var_y, cov = moments(gaussian_kernel(21, 3.0, 1.0, math.pi / 4))
    assert var_x == pytest.approx(5.0, rel=1e-2) and cov == pytest.approx(4.0, rel=1e-2)


def test_generalized_and_plateau_kernels_follow_their_formulas():
    # beta = 1 is the Gaussian.
    torch.testing.assert_close(
        generalized_gaussian_kernel(21, 2.5, 1.5, 0.7, 1.0), gaussian_kernel(21, 2.5, 1.5, 0.7)
    )
    centre = 10
    # exp(-q^beta / 2) with q = (2 / 1)^2 = 4 at two pixels right of centre, beta = 2.
    k = generalized_gaussian_kernel(21, 1.0, None, 0.0, 2.0)
    assert float(k[centre, centre + 2] / k[centre, centre]) == pytest.approx(math.exp(-8))
    # 1 / (1 + q^beta): q = 1 at one sigma (2 px), so half the peak; q = 4 at 4 px.
    k = plateau_kernel(21, 2.0, None, 0.0, 1.5)
    assert float(k[centre, centre + 2] / k[centre, centre]) == pytest.approx(0.5)
    assert float(k[centre + 4, centre] / k[centre, centre]) == pytest.approx(1 / (1 + 4**1.5))
    # Anisotropic plateau: q = 1 at sigma_y = 1 px across a horizontal long axis.
    k = plateau_kernel(21, 3.0, 1.0, 0.0, 2.0)
    assert float(k[centre + 1, centre] / k[centre, centre]) == pytest.approx(0.5)
    assert float(k[centre, centre + 3] / k[centre, centre]) == pytest.approx(0.5)


@pytest.mark.parametrize("cutoff", [math.pi / 3, math.pi / 2, 2 * math.pi / 3])
def test_the_sinc_kernel_spectrum_is_cut_off_at_the_configured_frequency(cutoff):
    spectrum = torch.fft.fft2(sinc_kernel(21, cutoff), s=(256, 256)).abs()
    freq = torch.fft.fftfreq(256, dtype=torch.float64) * 2 * math.pi
    fy, fx = torch.meshgrid(freq, freq, indexing="ij")
    radius = torch.sqrt(fx**2 + fy**2)
    assert spectrum[radius < 0.7 * cutoff].mean() > 0.9  # passes below the cutoff
    assert spectrum[(radius > 1.3 * cutoff) & (radius < math.pi)].mean() < 0.03  # stops above
    # Along the x axis the response falls through one half near the cutoff.
    profile = spectrum[0, :128]
    half = int(torch.nonzero(profile < 0.5)[0]) * 2 * math.pi / 256
    assert half == pytest.approx(cutoff, rel=0.12)


# ----------------------------------------------------------------- tensor operations


def direct_correlation(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Reference: numpy's reflect padding (any width) and a plain conv2d."""
    n, c, h, w = images.shape
    k = kernels.shape[-1]
    pad = k // 2
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    weight = kernels.reshape(n, 1, k, k).repeat_interleave(c, 0).to(images)
    out = F.conv2d(
        torch.from_numpy(padded).reshape(1, n * c, h + 2 * pad, w + 2 * pad), weight, groups=n * c
    )
    return out.reshape(n, c, h, w)


@pytest.mark.parametrize("size", [(40, 33), (5, 7), (1, 3)])
def test_filter2d_is_a_correlation_with_reflected_borders_even_on_tiny_images(size):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, *size, generator=gen, dtype=torch.float64)
    kernels = torch.rand(3, 21, 21, generator=gen, dtype=torch.float64)  # not symmetric
    torch.testing.assert_close(filter2d(images, kernels), direct_correlation(images, kernels))


def test_blur_widens_an_edge_by_the_amount_its_sigma_predicts():
    image = torch.full((1, 3, 64, 96), 0.2)
    image[..., 48:] = 0.8
    rng = DegradationRng.from_seed(0)
    assert edge_width(image[0, 0, 32]) < 1.0  # a step: the crossings are one pixel apart
    for sigma in (1.0, 2.0, 3.0):
        stage = only_kernel("iso", blur_sigma=(sigma, sigma), kernel_sizes=(21, 21))
        blurred = blur_step(image, stage, rng)
        expected = 2 * 1.2816 * sigma  # 10-90% of a Gaussian-blurred step
        assert edge_width(blurred[0, 0, 32]) == pytest.approx(expected, rel=0.08)
    skipped = blur_step(image, only_kernel("iso", blur_prob=0.0), rng)
    torch.testing.assert_close(skipped, image)


def block_discontinuity(luma: torch.Tensor, offset: int) -> float:
    """Mean |step| across columns j -> j + 1 with j = offset (mod 8), over the mean |step|
    at the other columns."""
    steps = (luma[..., 1:] - luma[..., :-1]).abs().mean(dim=tuple(range(luma.ndim - 1)))
    columns = torch.arange(steps.shape[0])
    on_grid = (columns % 8) == offset
    return float(steps[on_grid].mean() / steps[~on_grid].mean())


def test_jpeg_leaves_8x8_block_edges_and_higher_quality_leaves_fewer_errors():
    image = smooth_image(128)
    luma = lambda x: (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)  # noqa: E731
    assert block_discontinuity(luma(image), 7) == pytest.approx(1.0, abs=0.05)
    compressed = jpeg_compress(image, [20])
    assert block_discontinuity(luma(compressed), 7) > 1.5  # steps at the block boundaries
    assert block_discontinuity(luma(compressed), 3) < 1.15  # not at a shifted grid
    errors = [float((jpeg_compress(image, [q]) - image).abs().mean()) for q in (20, 50, 95)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert compressed.shape == image.shape and compressed.dtype == image.dtype
    assert torch.equal(torch.round(compressed * 255), compressed * 255)  # decoded 8-bit values


def test_jpeg_step_draws_one_quality_per_image_within_the_range():
    images = smooth_image(64).repeat(6, 1, 1, 1)
    out = jpeg_step(images, StageConfig(jpeg_range=(10, 90)), DegradationRng.from_seed(3))
    errors = {round(float((o - i).abs().mean()), 6) for o, i in zip(out, images, strict=True)}
    assert len(errors) > 1  # different qualities for identical images
    same = jpeg_step(images, StageConfig(jpeg_range=(40, 40)), DegradationRng.from_seed(3))
    torch.testing.assert_close(same, jpeg_compress(images, [40] * 6))


def test_gaussian_noise_has_the_configured_sigma_in_colour_and_in_gray():
    image = torch.full((2, 3, 128, 128), 0.5)
    gen = torch.Generator().manual_seed(0)
    sigma = torch.tensor([10 / 255, 25 / 255])
    noisy = add_gaussian_noise(image, sigma, torch.tensor([False, True]), gen)
    noise = noisy - image
    for index in range(2):
        assert float(noise[index].std()) == pytest.approx(float(sigma[index]), rel=0.03)
    assert float(noise[index].mean()) == pytest.approx(0.0, abs=2e-3)
    colour = noise[0].reshape(3, -1)
    assert abs(float(torch.corrcoef(colour)[0, 1])) < 0.03  # independent channels
    torch.testing.assert_close(noise[1, 0], noise[1, 2])  # gray: one field for all


def test_noise_step_uses_the_configured_ranges():
    image = torch.full((4, 3, 64, 64), 0.5)
    stage = StageConfig(gaussian_noise_prob=1.0, noise_range=(12, 12), gray_noise_prob=0.0)
    noise = noise_step(image, stage, DegradationRng.from_seed(0)) - image
    assert float(noise.std()) == pytest.approx(12 / 255, rel=0.03)
    gray = (
        noise_step(
            image, stage.model_copy(update={"gray_noise_prob": 1.0}), DegradationRng.from_seed(0)
        )
        - image
    )
    assert torch.equal(gray[:, 0], gray[:, 1])
    near_white = torch.full((1, 3, 32, 32), 0.995)
    clipped = noise_step(near_white, stage, DegradationRng.from_seed(0))
    assert float(clipped.max()) <= 1.0  # clipped to the image range


def test_poisson_noise_variance_is_proportional_to_the_intensity():
    # Columns hold every 8-bit level, so BasicSR's level count L is 256.
    levels = torch.arange(256, dtype=torch.float32) / 255
    image = levels.view(1, 1, 1, 256).expand(1, 3, 512, 256).contiguous()
    gen = torch.Generator().manual_seed(0)
    scale = 2.0
    noise = add_poisson_noise(image, [scale], [False], gen) - image
    variance = noise[0].var(dim=(0, 1))  # per column, i.e. per intensity
    bins = [(i, i + 32) for i in range(32, 256, 32)]
    for low, high in bins:
        ratio = float(variance[low:high].mean() / levels[low:high].mean())
        assert ratio == pytest.approx(scale**2 / 256, rel=0.08)
    assert float(variance[:2].max()) < 1e-4  # black stays (almost) noiseless
    gray = add_poisson_noise(image, [scale], [True], gen) - image
    torch.testing.assert_close(gray[0, 0], gray[0, 1])


def test_poisson_noise_grows_when_an_image_has_few_levels():
    few = torch.tensor([0.25, 0.75]).repeat_interleave(64).view(1, 1, 1, 128)
    few = few.expand(1, 3, 128, 128).contiguous()  # 2 levels: L = 2, very strong noise
    gen = torch.Generator().manual_seed(0)
    noise = add_poisson_noise(few, [1.0], [False], gen) - few
    assert float(noise[..., :64].var()) == pytest.approx(0.25 / 2, rel=0.1)


def test_resize_step_sizes():
    images = torch.rand(2, 3, 40, 60)
    rng = DegradationRng.from_seed(0)
    kept = resize_step(images, StageConfig(resize_prob=(0, 0, 1)), (40, 60), rng)
    assert kept.shape[-2:] == (40, 60)
    for _ in range(10):
        up = resize_step(images, StageConfig(resize_prob=(1, 0, 0)), (40, 60), rng)
        assert 40 <= up.shape[-2] <= 60 and 60 <= up.shape[-1] <= 90
        down = resize_step(images, StageConfig(resize_prob=(0, 1, 0)), (10, 15), rng)
        assert 1 <= down.shape[-2] <= 10 and 2 <= down.shape[-1] <= 15
    # "down" draws the factor from [low, 1]: here 0.5..1, so 20..40 rows, same aspect.
    halving = StageConfig(resize_prob=(0, 1, 0), resize_range=(0.5, 0.5), resize_modes=("area",))
    sizes = {tuple(resize_step(images, halving, (40, 60), rng).shape[-2:]) for _ in range(20)}
    for height, width in sizes:
        assert 20 <= height <= 40 and 30 <= width <= 60 and abs(width / height - 1.5) < 0.1
    assert len(sizes) > 1


def test_final_step_reaches_the_lr_size_in_either_order():
    images = torch.rand(3, 3, 22, 18)
    for jpeg_first in (0.0, 1.0):
        config = DegradationConfig(final_jpeg_first_prob=jpeg_first)
        out = final_step(images, config, (16, 16), DegradationRng.from_seed(0))
        assert out.shape == (3, 3, 16, 16)


def test_usm_sharpens_edges_and_leaves_flat_areas_alone():
    image = torch.full((1, 3, 96, 96), 0.3)
    image[..., 48:] = 0.6
    sharp = usm_sharpen(image)
    assert float(sharp[0, 0, 40, 46]) < 0.3 < 0.6 < float(sharp[0, 0, 40, 49])  # overshoot
    torch.testing.assert_close(sharp[..., :, :10], image[..., :, :10])  # far from the edge
    assert float(sharp.min()) >= 0 and float(sharp.max()) <= 1
    flat = torch.full((1, 3, 32, 32), 0.5)
    torch.testing.assert_close(usm_sharpen(flat), flat)
    off = RealESRGANDegradation(DegradationConfig(gt_usm=False))
    assert off.sharpen_target(image) is image
    stronger = usm_sharpen(image, UsmConfig(weight=1.0))
    assert float(stronger[0, 0, 40, 49]) > float(sharp[0, 0, 40, 49])


# ------------------------------------------------------------------------ pipelines


@pytest.fixture(scope="module")
def hr_batch() -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    return (
        smooth_image(64).repeat(4, 1, 1, 1) + 0.1 * torch.rand(4, 3, 64, 64, generator=gen)
    ).clamp(0, 1)


def test_the_same_seed_gives_the_same_pairs_and_another_seed_others(hr_batch):
    degrade = RealESRGANDegradation(DegradationConfig(), scale=4)
    first = degrade(hr_batch, DegradationRng.from_seed([7, 0, 3]))
    again = degrade(hr_batch, DegradationRng.from_seed([7, 0, 3]))
    other = degrade(hr_batch, DegradationRng.from_seed([7, 0, 4]))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == (4, 3, 16, 16)
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    assert torch.equal(torch.round(first * 255), first * 255)  # 8-bit levels
    # Different images of the batch get different degradations (per-image draws).
    same_image = degrade(hr_batch[:1].repeat(4, 1, 1, 1), DegradationRng.from_seed(1))
    assert not torch.equal(same_image[0], same_image[1])


@pytest.mark.parametrize(("scale", "size"), [(4, (64, 48)), (2, (30, 40)), (1, (24, 24))])
def test_the_pipeline_gives_the_lr_size(scale, size):
    hr = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        lr = make_degradation("realesrgan", None, scale)(hr, DegradationRng.from_seed(seed))
        assert lr.shape == (2, 3, size[0] // scale, size[1] // scale)


def test_chunks_draw_their_own_sizes_and_stay_deterministic(hr_batch):
    chunked = RealESRGANDegradation(DegradationConfig(chunk_size=1), 4)
    a = chunked(hr_batch, DegradationRng.from_seed(2))
    assert a.shape == (4, 3, 16, 16)
    assert torch.equal(a, chunked(hr_batch, DegradationRng.from_seed(2)))


def test_bad_batches_are_refused_with_a_clear_message(hr_batch):
    degrade = RealESRGANDegradation()
    rng = DegradationRng.from_seed(0)
    with pytest.raises(ValueError, match="not a positive multiple of 4"):
        degrade(hr_batch[..., :62], rng)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        degrade(hr_batch[:, :1], rng)
    with pytest.raises(TypeError, match="floating-point"):
        degrade((hr_batch * 255).to(torch.uint8), rng)
    with pytest.raises(ValueError, match="unknown degradation 'blurry'"):
        make_degradation("blurry", None, 4)  # type: ignore[arg-type]


def test_bicubic_degradation_is_matlab_imresize_rounded_to_8_bits(hr_batch):
    degrade = make_degradation("bicubic", None, 4)
    assert isinstance(degrade, BicubicDegradation)
    lr = degrade(hr_batch, DegradationRng.from_seed(0))
    expected = torch.round(imresize(hr_batch, scale=0.25).clamp(0, 1) * 255) / 255
    torch.testing.assert_close(lr, expected, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_pipeline_runs_on_the_gpu_and_is_seeded_there(hr_batch):
    degrade = RealESRGANDegradation()
    hr = hr_batch.cuda()
    a = degrade(hr, DegradationRng.from_seed(0, "cuda"))
    b = degrade(hr, DegradationRng.from_seed(0, "cuda"))
    assert a.device.type == "cuda" and a.shape == (4, 3, 16, 16)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="generator is on cpu"):
        degrade(hr, DegradationRng.from_seed(0))


# ------------------------------------------------------------------- configuration


def test_defaults_are_real_esrgans_x4plus_options():
    config = DegradationConfig()
    first, second = config.first, config.second
    assert first.kernel_prob.weights() == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    assert (first.sinc_prob, first.blur_sigma, first.betag_range, first.betap_range) == (
        0.1,
        (0.2, 3.0),
        (0.5, 4.0),
        (1.0, 2.0),
    )
    assert (first.resize_prob, first.resize_range) == ((0.2, 0.7, 0.1), (0.15, 1.5))
    assert (first.gaussian_noise_prob, first.noise_range, first.poisson_scale_range) == (
        0.5,
        (1.0, 30.0),
        (0.05, 3.0),
    )
    assert (first.gray_noise_prob, first.jpeg_range, first.blur_prob) == (0.4, (30, 95), 1.0)
    assert (second.blur_prob, second.blur_sigma, second.sinc_prob) == (0.8, (0.2, 1.5), 0.1)
    assert (second.resize_prob, second.resize_range) == ((0.3, 0.4, 0.3), (0.3, 1.2))
    assert (second.noise_range, second.poisson_scale_range) == ((1.0, 25.0), (0.05, 2.5))
    assert (second.gray_noise_prob, second.jpeg_range) == (0.4, (30, 95))
    assert second.kernel_sizes == first.kernel_sizes == (7, 21)
    assert (config.final_sinc_prob, config.final_jpeg_first_prob, config.gt_usm) == (0.8, 0.5, True)
    assert (config.usm.weight, config.usm.radius, config.usm.threshold) == (0.5, 50, 10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"first": {"blur_sigma": [3, 1]}}, "blur_sigma: the first value 3.0 is above"),
        ({"first": {"kernel_sizes": [8, 21]}}, "kernel sizes are odd"),
        ({"first": {"kernel_sizes": [7, 999]}}, "less than or equal to 41"),
        ({"second": {"sinc_prob": 1.5}}, "less than or equal to 1"),
        ({"second": {"noise_range": [1, "nan"]}}, "finite number"),
        ({"first": {"resize_range": [0.5, 100]}}, "less than or equal to 4"),
        ({"first": {"resize_range": [0.5, 0.9]}}, "above 1 for 'up'"),
        ({"first": {"resize_prob": [0, 0, 0]}}, "at least one of up, down, keep"),
        ({"first": {"kernel_prob": dict.fromkeys(KINDS, 0)}}, "at least one kernel"),
        ({"first": {"resize_modes": ["nearest"]}}, "'area', 'bilinear' or 'bicubic'"),
        ({"first": {"resize_modes": []}}, "name at least one"),
        ({"first": {"jpeg_range": [0, 95]}}, "greater than or equal to 1"),
        ({"first": {"blur_sigmas": [1, 2]}}, "Extra inputs are not permitted"),
        ({"chunk_size": 0}, "greater than 0"),
        ({"usm": {"radius": 10_000}}, "less than or equal to 101"),
    ],
)
def test_bad_settings_are_rejected_with_the_key_named(data, message):
    with pytest.raises(ValidationError, match=message):
        DegradationConfig.model_validate(data)


def test_settings_read_from_a_config_file_shape(tmp_path):
    config = DegradationConfig.model_validate(
        {
            "first": {"blur_sigma": [0.5, 2], "kernel_prob": {"iso": 1, "aniso": 0}},
            "second": {"blur_prob": 0.0},
            "final_sinc_prob": 0.0,
            "gt_usm": False,
        }
    )
    assert config.first.blur_sigma == (0.5, 2.0)
    assert config.first.kernel_prob.iso == 1 and config.first.kernel_prob.plateau_iso == 0.12
    assert config.second.blur_sigma == (0.2, 1.5)  # the rest of the second stage's defaults
