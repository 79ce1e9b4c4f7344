"""Training configuration: files in three formats, overrides, errors that name the key."""

from __future__ import annotations

import json

import pytest

from srgan.errors import BadInputError
from srgan.training.config import TrainConfig, load_config


def test_defaults_follow_the_paper():
    config = TrainConfig()
    assert (config.data.hr_size, config.data.scale, config.data.batch_size) == (96, 4, 16)
    assert config.pretrain.lr == 1e-4 and config.pretrain.loss == "mse"
    assert config.gan.lr == 1e-4 and config.gan.schedule.decay == "steps"
    assert (config.gan.schedule.milestones, config.gan.schedule.gamma) == ([0.5], 0.1)
    assert config.gan.content_loss == "vgg" and config.gan.vgg_layer == "relu5_4"
    assert config.gan.adversarial_weight == 1e-3 and config.adam_beta1 == 0.9
    assert config.hr_range == "symmetric"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.toml", '[gan]\nsteps = 7\ncontent_loss = "mse"\n'),
        ("c.yaml", "gan:\n  steps: 7\n  content_loss: mse\n"),
        ("c.json", json.dumps({"gan": {"steps": 7, "content_loss": "mse"}})),
    ],
)
def test_three_file_formats(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    config = load_config(tmp_path / name)
    assert config.gan.steps == 7 and config.gan.content_loss == "mse"


def test_overrides_win_and_are_validated(tmp_path):
    (tmp_path / "c.toml").write_text("[gan]\nsteps = 7\n")
    config = load_config(tmp_path / "c.toml", ["gan.steps=9", "data.train_hr=photos/hr"])
    assert config.gan.steps == 9 and str(config.data.train_hr) == "photos/hr"
    with pytest.raises(BadInputError, match=r"pretrain\.lr"):
        load_config(None, ["pretrain.lr=0"])
    with pytest.raises(BadInputError, match="key=value"):
        load_config(None, ["gan.steps"])


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[gan]\nlearning_rate = 1\n", "gan.learning_rate"),
        ("[gan]\nlr = -1\n", "gan.lr"),
        ("[data]\nscale = 5\n", "data.scale"),
        ("[data]\nhr_size = 90\n", "data"),
        ("typo = 1\n", "typo"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, key):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(BadInputError) as caught:
        load_config(tmp_path / "bad.toml")
    assert f"bad.toml: {key}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_files(tmp_path):
    (tmp_path / "broken.toml").write_text("[gan\n")
    with pytest.raises(BadInputError, match=r"broken\.toml"):
        load_config(tmp_path / "broken.toml")
    with pytest.raises(BadInputError, match="no such config"):
        load_config(tmp_path / "absent.toml")
    (tmp_path / "c.ini").write_text("")
    with pytest.raises(BadInputError, match="toml"):
        load_config(tmp_path / "c.ini")
