"""The benchmark protocol of the super-resolution papers, one step at a time:

HR image -> modcrop to a multiple of the scale (optionally a centre crop, alpha dropped)
-> MATLAB-bicubic LR, quantized to the HR's bit depth as a saved LR file would be
-> the model, untiled, on the device it lives on -> quantized SR output
-> PSNR/SSIM on the Y channel with `scale` pixels removed at each border.
"""

from __future__ import annotations

from srgan.errors import BadInputError
from srgan.evaluation.scores import SSIM_WINDOW, ImageScore, score
from srgan.imaging.io import Image
from srgan.imaging.transform import crop_to_multiple, resize_image
from srgan.inference.upscaler import AnyModel, UpscaleOptions, upscale_image
from srgan.zoo.descriptor import LoadedModel


def reference(image: Image, scale: int, crop: int = 0, name: str = "image") -> Image:
    """An HR image as the protocol uses it: modcropped to `scale` (centre `crop` pixels at
    most when crop > 0), without alpha."""
    if crop:
        side_h, side_w = min(image.height, crop), min(image.width, crop)
        top, left = (image.height - side_h) // 2, (image.width - side_w) // 2
        image = Image(image.pixels[top : top + side_h, left : left + side_w], image.meta)
    hr = crop_to_multiple(image, scale)
    if min(hr.height, hr.width) < scale * SSIM_WINDOW:
        raise BadInputError(f"{name}: too small to evaluate at x{scale}")
    return Image(hr.pixels[..., :-1], hr.meta) if hr.has_alpha else hr


def low_resolution(hr: Image, scale: int) -> Image:
    return resize_image(hr, scale=1 / scale)


def device_of(model: AnyModel) -> str:
    """Where a model runs: a PyTorch model's device; ONNX Runtime and ncnn on the CPU."""
    return str(model.device) if isinstance(model, LoadedModel) else "cpu"


def untiled(model: AnyModel) -> UpscaleOptions:
    """Whole images, like the papers, on the device the model already lives on."""
    return UpscaleOptions(tile=0, device=device_of(model))


def upscale(model: AnyModel, lr: Image) -> Image:
    return upscale_image(model, lr, untiled(model))


def score_output(name: str, sr: Image, hr: Image, scale: int) -> ImageScore:
    return score(name, sr, hr, crop_border=scale)


def check_scales(models: list[AnyModel], scale: int) -> None:
    for model in models:
        if model.scale != scale:
            raise BadInputError(f"model {model.name} upscales x{model.scale:g}, not x{scale}")
