"""Training configuration: one schema for both commands, files in three formats,
overrides, errors that name the key, and renamed keys that name their new names."""

from __future__ import annotations

import json

import pytest

from srgan.errors import BadInputError
from srgan.training.config import RENAMED, RunConfig
from srgan.training.recipes.srgan_config import (
    EXAMPLE_CONFIG,
    ImageTrainConfig,
    load_image_config,
)
from srgan.training.recipes.video_config import (
    EXAMPLE_VIDEO_CONFIG,
    VideoTrainConfig,
    load_video_config,
)

LOADERS = {"image": load_image_config, "video": load_video_config}


def test_image_defaults_follow_the_paper():
    config = ImageTrainConfig()
    assert (config.data.crop, config.data.scale, config.data.batch_size) == (96, 4, 16)
    assert config.optim.lr == 1e-4 and config.pretrain.loss == "mse"
    assert config.pretrain.lr is None and config.pretrain.schedule is None  # the shared ones
    assert config.gan.schedule is not None and config.gan.schedule.decay == "steps"
    assert (config.gan.schedule.milestones, config.gan.schedule.gamma) == ([0.5], 0.1)
    loss = config.loss  # the GAN phase: VGG54 content + 1e-3 x adversarial, no pixel term
    assert loss.perceptual.preset == "srgan" and loss.perceptual.weight == 1
    assert loss.pixel.weight == 0 and loss.adversarial.discriminator == "srgan"
    assert loss.adversarial.weight == 1e-3 and config.optim.beta1 == 0.9
    assert config.symmetric  # SRResNet from scratch: HR targets in [-1, 1]
    assert config.model.arch == "srresnet" and config.autotune.enabled is False


def test_both_commands_share_the_sections_and_their_keys():
    image, video = ImageTrainConfig(), VideoTrainConfig()
    for section in ("data", "model", "optim", "schedule", "clip", "checkpoint", "autotune"):
        image_keys = set(type(getattr(image, section)).model_fields)
        video_keys = set(type(getattr(video, section)).model_fields)
        assert image_keys <= video_keys, (section, image_keys - video_keys)
        assert isinstance(getattr(video, section), type(getattr(RunConfig(), section)))
    assert set(RunConfig.model_fields) <= set(ImageTrainConfig.model_fields)
    assert set(RunConfig.model_fields) <= set(VideoTrainConfig.model_fields)


def test_section_defaults_survive_setting_one_key_of_the_section():
    video = load_video_config(None, ["optim.weight_decay=0.01", "schedule.warmup_steps=5",
                                     "clip.window=10", "autotune.crops=[48]"])  # fmt: skip
    assert video.optim.lr == 2e-4 and video.optim.beta2 == 0.99
    assert video.schedule.decay == "cosine" and video.schedule.plateau_patience == 3
    assert video.clip.percentile == 95 and video.autotune.enabled
    image = load_image_config(None, ["gan.schedule.warmup_steps=5"])
    assert image.gan.schedule is not None and image.gan.schedule.milestones == [0.5]


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
@pytest.mark.parametrize("kind", ["image", "video"])
def test_every_renamed_key_names_its_new_name(tmp_path, kind, old, new):
    *sections, leaf = old.split(".")
    text = (f"[{'.'.join(sections)}]\n" if sections else "") + f"{leaf} = 1\n"
    (tmp_path / "old.toml").write_text(text)
    with pytest.raises(BadInputError) as caught:
        LOADERS[kind](tmp_path / "old.toml")
    assert str(caught.value) == f"{tmp_path / 'old.toml'}: {old} was renamed: use {new}"
    with pytest.raises(BadInputError) as caught:
        LOADERS[kind](None, [f"{old}=1"])
    assert str(caught.value) == f"{old} was renamed: use {new}"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.toml", '[gan]\nsteps = 7\n[loss.pixel]\nkind = "l1"\n'),
        ("c.yaml", "gan:\n  steps: 7\nloss:\n  pixel:\n    kind: l1\n"),
        ("c.json", json.dumps({"gan": {"steps": 7}, "loss": {"pixel": {"kind": "l1"}}})),
    ],
)
def test_three_file_formats(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    config = load_image_config(tmp_path / name)
    assert config.gan.steps == 7 and config.loss.pixel.kind == "l1"


def test_overrides_win_and_are_validated(tmp_path):
    (tmp_path / "c.toml").write_text("[gan]\nsteps = 7\n")
    config = load_image_config(tmp_path / "c.toml", ["gan.steps=9", "data.train=photos/hr"])
    assert config.gan.steps == 9 and str(config.data.train) == "photos/hr"
    with pytest.raises(BadInputError, match=r"pretrain\.lr"):
        load_image_config(None, ["pretrain.lr=0"])
    with pytest.raises(BadInputError, match="key=value"):
        load_image_config(None, ["gan.steps"])


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[gan]\nlearning_rate = 1\n", "gan.learning_rate"),
        ("[optim]\nlr = -1\n", "optim.lr"),
        ("[data]\nscale = 9\n", "data.scale"),
        ("[data]\ncrop = 90\n", "data"),
        ("[model]\narch = 'vsr'\n", "model.arch"),
        ("[model]\narch = 'srvgg'\ngrowth_channels = 8\n", "model"),
        ("[model]\narch = 'rrdbnet'\n[data]\nscale = 3\ncrop = 96\n", "data.scale 3"),
        ("hr_range = 'symmetric'\n[model]\narch = 'srvgg'\n", "hr_range"),
        ("typo = 1\n", "typo"),
        ("[model]\nnum_features = 100000\n", "model.num_features"),  # memory, not a typo
        ("[data]\nsamples_per_source = 1000000000\n", "data.samples_per_source"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, key):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(BadInputError) as caught:
        load_image_config(tmp_path / "bad.toml")
    assert key in str(caught.value) and str(caught.value).startswith(f"{tmp_path}/bad.toml:")
    assert "\n" not in str(caught.value)


def test_example_configs_are_valid_and_commented():
    from srgan.config_files import tomllib

    for text, model in (
        (EXAMPLE_CONFIG, ImageTrainConfig),
        (EXAMPLE_VIDEO_CONFIG, VideoTrainConfig),
    ):
        model.model_validate(tomllib.loads(text))
        assert text.count("#") > 40


def test_unreadable_files(tmp_path):
    (tmp_path / "broken.toml").write_text("[gan\n")
    with pytest.raises(BadInputError, match=r"broken\.toml"):
        load_image_config(tmp_path / "broken.toml")
    with pytest.raises(BadInputError, match="no such config"):
        load_image_config(tmp_path / "absent.toml")
    (tmp_path / "c.ini").write_text("")
    with pytest.raises(BadInputError, match="toml"):
        load_image_config(tmp_path / "c.ini")
