"""Hostile and broken config files for `srgan train`, `train-vsr` and `serve`: each is
one line naming the file (and the dotted key where there is one), exit 2."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from srgan.config_files import read_config_file
from srgan.errors import BadInputError
from srgan.serve.settings import load_settings
from srgan.training.recipes.srgan_config import load_image_config as load_config
from srgan.training.recipes.video_config import load_video_config as load_vsr_config
from tests.hostile_models import CONFIG_CASES as CASES
from tests.hostile_models import DEEP, HUGE


def write(tmp_path: Path, name: str) -> tuple[Path, str]:
    filename, content, expected = CASES[name]
    path = tmp_path / filename
    path.write_bytes(content)
    return path, expected


LOADERS: dict[str, Callable[[Path], object]] = {
    "train": lambda path: load_config(path),
    "train-vsr": lambda path: load_vsr_config(path),
    "serve": lambda path: load_settings(path),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", CASES)
def test_broken_config_files_are_one_line_naming_file_and_key(name, loader, tmp_path):
    path, expected = write(tmp_path, name)
    with pytest.raises(BadInputError) as refused:
        LOADERS[loader](path)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert expected in message, message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("loader", "text", "key"),
    [
        ("train", "[pretrain]\nlr = inf\n", "pretrain.lr"),
        ("train", "[loss.adversarial]\nweight = inf\n", "loss.adversarial.weight"),
        ("train", "[pretrain.schedule]\nfloor = inf\n", "pretrain.schedule.floor"),
        ("train-vsr", "[optim]\nlr = nan\n", "optim.lr"),
        ("train-vsr", "[schedule]\nfloor = inf\n", "schedule.floor"),
        ("train", f"seed = {HUGE}\n", "seed"),
        ("serve", "job_timeout_s = inf\n", "job_timeout_s"),
        ("serve", "[rate_limit]\nper_second = nan\n", "rate_limit.per_second"),
    ],
)
def test_the_keys_of_each_schema_are_named(loader, text, key, tmp_path):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(BadInputError, match=rf"c\.toml: {key}: "):
        LOADERS[loader](tmp_path / "c.toml")


def test_strings_that_validate_to_non_finite_floats_are_refused_by_the_schemas(tmp_path):
    (tmp_path / "c.yaml").write_text('pretrain:\n  lr: "inf"\n')
    with pytest.raises(BadInputError, match=r"pretrain\.lr: Input should be a finite number"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "s.yaml").write_text('job_timeout_s: "1e400"\n')
    with pytest.raises(BadInputError, match="job_timeout_s: Input should be a finite number"):
        load_settings(tmp_path / "s.yaml")
    with pytest.raises(BadInputError, match="job_timeout_s: Input should be a finite number"):
        load_settings(None, job_timeout_s=float("inf"))  # a command-line flag


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("pretrain.lr=Infinity", "--set: pretrain.lr: inf is not a finite number"),
        ("loss.adversarial.weight=NaN", "--set: loss.adversarial.weight: nan is not a finite"),
        ("pretrain.schedule.floor=-Infinity", "--set: pretrain.schedule.floor: -inf is not"),
        ("pretrain.schedule.milestones=[0.5, 1e999]", "milestones[1]: inf is not a finite"),
        (f"seed={HUGE}", "--set: seed: an integer of 5000 digits is out of range"),
        ("seed=" + "[" * DEEP + "]" * DEEP, "--set seed: nested too deeply"),
        ('pretrain.lr="inf"', "pretrain.lr: Input should be a finite number"),
    ],
)
def test_overrides_follow_the_same_rules(override, expected):
    for loader in (load_config, load_vsr_config):
        with pytest.raises(BadInputError) as refused:
            loader(None, [override])
        if ("pretrain" not in override and "adversarial" not in override) or (
            loader is load_config
        ):
            assert expected in str(refused.value)


def test_plain_files_still_read(tmp_path):
    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbfseed = 3\n[gan]\nlr = 2e-5\n")  # BOM
    assert load_config(tmp_path / "c.toml").seed == 3
    (tmp_path / "c.yaml").write_text("")
    assert read_config_file(tmp_path / "c.yaml") == {}
    (tmp_path / "c.json").write_text('{"seed": -5, "gan": {"steps": 9223372036854775807}}')
    assert read_config_file(tmp_path / "c.json")["gan"]["steps"] == 2**63 - 1
    assert load_config(None, ["seed=7", "output_dir=runs/x"]).seed == 7


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="not a regular file"):
        read_config_file(fifo)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 1\n")
    path.chmod(0)
    with pytest.raises(BadInputError, match="cannot read it"):
        read_config_file(path)


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["train", "--print-config"], "yaml_syntax"),
        (["train", "--print-config"], "toml_utf16"),
        (["train", "--print-config"], "json_deep"),
        (["train", "--print-config"], "toml_huge_seed"),
        (["train-vsr", "--print-config"], "yaml_syntax"),
        (["train-vsr", "--print-config"], "yaml_deep"),
        (["train-vsr", "--print-config"], "json_infinity"),
        (["serve"], "toml_latin1"),
        (["serve"], "yaml_inf"),
    ],
)
def test_commands_exit_2_with_one_line(cli, tmp_path, command, name):
    path, expected = write(tmp_path, name)
    result = cli(*command, "-c", path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_set_infinity_on_the_command_line(cli):
    result = cli("train", "--print-config", "--set", "gan.lr=Infinity", check=False)
    assert result.returncode == 2 and "gan.lr: inf is not a finite number" in result.stderr
    result = cli("train", "--print-config", "--set", f"seed={HUGE}", check=False)
    assert result.returncode == 2 and "seed: an integer of 5000 digits" in result.stderr
