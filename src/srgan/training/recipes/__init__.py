"""Training recipes: what is trained and how its loss is made. A recipe supplies its
networks, `train_step(batch)` (the losses of each network's update) and what to validate;
the engine (`training/engine`) does everything else.

- `srgan.SRGANRecipe` (`srgan train`): pixel pre-training, then generator/discriminator.
- `video.VideoRecipe` (`srgan train-vsr`): windows of frames, hybrid loss, adaptive weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srgan.training.engine.recipe import Recipe


def make_recipe(kind: str, config: dict[str, Any]) -> Recipe:
    """The recipe of a checkpoint's or probe's `kind` from a plain config dict."""
    if kind == "image":
        from srgan.training.recipes.srgan import SRGANRecipe
        from srgan.training.recipes.srgan_config import ImageTrainConfig

        return SRGANRecipe(ImageTrainConfig.model_validate(config))
    if kind == "video":
        from srgan.training.recipes.video import VideoRecipe
        from srgan.training.recipes.video_config import VideoTrainConfig

        return VideoRecipe(VideoTrainConfig.model_validate(config))
    raise ValueError(f"unknown recipe {kind!r}")
