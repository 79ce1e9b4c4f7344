"""srgan: image and video super-resolution.

import srgan
model = srgan.load_model("natural")          # or "anime", "anime-video", a .pth file
big = srgan.upscale("photo.jpg", model)       # an srgan.imaging.Image
srgan.imaging.write_image("photo_x4.png", big)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "load_model", "upscale"]

if TYPE_CHECKING:
    from srgan.api import load_model, upscale


def __getattr__(name: str):
    # Imported on first use so that `import srgan` (and `srgan --version`) stay light.
    if name in ("load_model", "upscale"):
        from srgan import api

        return getattr(api, name)
    raise AttributeError(f"module 'srgan' has no attribute {name!r}")
