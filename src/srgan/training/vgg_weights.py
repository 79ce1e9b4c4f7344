"""Load ImageNet VGG19 weights from a file the user provides (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from srgan.archs.vgg import VGG19Features, vgg19_widths
from srgan.errors import BadInputError

VGG19_FILE = "vgg19-dcbb9e9d.pth"
ENVIRONMENT = "SRGAN_VGG19"


def missing_weights_message(looked: Path | None) -> str:
    where = f" ({looked} does not exist)" if looked else ""
    return (
        f"the VGG content loss needs ImageNet VGG19 weights{where}: get torchvision's "
        f"{VGG19_FILE} and pass it with --vgg-weights FILE, the config key vgg_weights, or "
        f'the {ENVIRONMENT} environment variable; or train with content_loss = "mse"'
    )


def resolve_vgg_path(given: str | os.PathLike[str] | None) -> Path:
    """The user's file: the argument, else $SRGAN_VGG19; BadInputError when absent."""
    chosen = given or os.environ.get(ENVIRONMENT)
    if not chosen:
        raise BadInputError(missing_weights_message(None))
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise BadInputError(missing_weights_message(path))
    return path


def load_vgg19_features(
    path: str | os.PathLike[str] | None, last_layer: str = "relu5_4"
) -> VGG19Features:
    """A frozen, eval-mode VGG19 feature extractor from a torchvision-layout file."""
    resolved = resolve_vgg_path(path)
    try:
        state = torch.load(resolved, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        widths = vgg19_widths(state)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BadInputError(f"{resolved}: not torchvision VGG19 weights ({exc})") from exc
    model = VGG19Features(last_layer, widths)
    wanted = {
        k: v for k, v in state.items() if k in model.state_dict() and k.startswith("features.")
    }
    missing = [k for k in model.state_dict() if k.startswith("features.") and k not in wanted]
    if missing:
        raise BadInputError(f"{resolved}: VGG19 weights lack {', '.join(missing[:3])}")
    model.load_state_dict(wanted, strict=False)
    return model.eval().requires_grad_(False)
