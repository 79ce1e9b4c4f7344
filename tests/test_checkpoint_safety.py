"""Training checkpoints are hostile input: a crafted `state.pt` never runs code, and
every state srgan writes loads with `torch.load(weights_only=True)`."""

from __future__ import annotations

import contextlib
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.errors import BadInputError
from srgan.training import checkpoints
from srgan.training.config import load_config
from srgan.training.trainer import Trainer


class Marker:
    """Unpickling this object creates `path` (what a real attack would replace by
    anything at all)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def zip_pickle(path: Path, marker: Path) -> None:
    torch.save({"step": 1, "rng": Marker(marker)}, path)


def raw_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"step": 1, "rng": Marker(marker)}))


def hostile_run(root: Path, write, marker: Path) -> Path:
    """A run folder whose latest checkpoint's state.pt is `write`'s crafted pickle."""
    step = root / "checkpoints" / "step_0000001"
    step.mkdir(parents=True)
    write(step / "state.pt", marker)
    (root / "checkpoints" / "latest").symlink_to("step_0000001")
    (root / "training.log").write_text("{}\n")
    return root


@pytest.mark.parametrize("write", [zip_pickle, raw_pickle])
def test_the_crafted_state_is_live(tmp_path, write):
    """The payload the tests below refuse does run when loaded the unsafe way."""
    marker = tmp_path / "ran"
    write(tmp_path / "state.pt", marker)
    with contextlib.suppress(RuntimeError):  # a raw pickle fails after running its code
        torch.load(tmp_path / "state.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("write", [zip_pickle, raw_pickle])
def test_read_state_refuses_code(tmp_path, write):
    marker = tmp_path / "ran"
    write(tmp_path / "state.pt", marker)
    with pytest.raises(BadInputError, match="refused: it holds"):
        checkpoints.read_state(tmp_path / "state.pt")
    assert not marker.exists()


TINY_TRAIN = ["--batch-size", "2", "--set", "data.hr_size=32", "--set", "model.num_blocks=1",
              "--set", "model.num_features=8", "--set", "data.workers=0", "--set",
              "tensorboard=false", "--pretrain-steps", "2", "--train-steps", "0"]  # fmt: skip


@pytest.mark.parametrize("write", [zip_pickle, raw_pickle])
def test_commands_refuse_a_hostile_run_folder(cli, photos, tmp_path, write):
    marker = tmp_path / "ran"
    run = hostile_run(tmp_path / "run", write, marker)
    frames = tmp_path / "clips" / "clip"
    frames.mkdir(parents=True)
    for index in range(3):  # a three-frame clip for train-vsr
        (frames / f"{index:03d}.png").write_bytes((photos / "0.png").read_bytes())
    commands = [
        ["train", "--resume", "--train-hr", photos, "-o", run, *TINY_TRAIN],
        [
            "train-vsr",
            "--resume",
            "--train",
            tmp_path / "clips",
            "-o",
            run,
            "--no-autotune",
            "--set",
            "data.frames=2",
            "--set",
            "data.crop=24",
            "--steps",
            "2",
        ],
        ["upscale", photos / "0.png", tmp_path / "out.png", "--model", run],
    ]
    reasons = [
        "refused: it holds",
        "refused: it holds",
        "without a trained generator",
    ]
    for command, reason in zip(commands, reasons, strict=True):
        result = cli(*command, check=False)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and reason in result.stderr, result.stderr
        assert not marker.exists(), command
    assert not (tmp_path / "out.png").exists()


def test_a_generator_file_that_is_a_pickle_is_refused(cli, photos, tmp_path):
    marker = tmp_path / "ran"
    run = tmp_path / "run" / "checkpoints" / "step_0000001"
    run.mkdir(parents=True)
    raw_pickle(run / "generator.safetensors", marker)
    zip_pickle(tmp_path / "evil.pth", marker)
    for model in (run, tmp_path / "evil.pth"):
        result = cli(
            "upscale", photos / "0.png", tmp_path / "out.png", "--model", model, check=False
        )
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert not marker.exists()


def test_latest_pointing_outside_the_run_is_ignored(tmp_path):
    folder = tmp_path / "checkpoints"
    outside = tmp_path / "elsewhere" / "step_0000001"
    outside.mkdir(parents=True)
    torch.save({"step": 1}, outside / "state.pt")
    folder.mkdir()
    (folder / "latest").symlink_to(outside)
    assert checkpoints.resolve(folder) is None
    (folder / "latest").unlink()
    (folder / "latest").write_text("../elsewhere/step_0000001")
    assert checkpoints.resolve(folder) is None


def test_saved_states_are_plain_and_load_restricted(photos, tmp_path):
    config = load_config(
        None,
        [
            f"data.train_hr={photos}",
            f"output_dir={tmp_path / 'run'}",
            "data.hr_size=32",
            "data.batch_size=2",
            "data.workers=0",
            "data.samples_per_image=2",
            "model.num_features=8",
            "model.num_blocks=1",
            "model.discriminator_features=4",
            "pretrain.steps=2",
            "gan.steps=1",
            'gan.content_loss="mse"',
            "ema_decay=0.5",
            "tensorboard=false",
            "channels_last=false",
        ],
    )
    Trainer(config).run()
    latest = checkpoints.resolve(tmp_path / "run" / "checkpoints")
    assert latest is not None
    state = torch.load(latest / "state.pt", weights_only=True)
    assert state["format"] == checkpoints.STATE_FORMAT and state["step"] == 3
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor)


def test_rng_states_round_trip_exactly():
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    random.gauss(0, 1)  # a cached gaussian is part of the state
    np.random.standard_normal()
    saved = checkpoints.plain(checkpoints.rng_state())
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    checkpoints.restore_rng_state(saved)
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected


def test_plain_refuses_objects_at_save_time():
    with pytest.raises(TypeError, match=r"state\.x: a \w*Path is not plain data"):
        checkpoints.plain({"x": Path("a")})
    assert checkpoints.plain({"a": np.float64(1.5), "b": (np.int64(2),)}) == {"a": 1.5, "b": (2,)}


def test_format_1_states_with_numpy_arrays_still_resume(tmp_path):
    """srgan 0.1 stored np.random.get_state() as it is (a numpy array inside)."""
    np.random.seed(7)
    legacy = {
        "step": 4,
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": [],
        },
    }
    expected = np.random.random()
    torch.save(legacy, tmp_path / "state.pt")
    state = checkpoints.read_state(tmp_path / "state.pt")
    np.random.seed(0)
    checkpoints.restore_rng_state(state["rng"])
    assert np.random.random() == expected


def test_numpy_object_arrays_of_payloads_are_refused_in_the_format_1_path(tmp_path):
    """The format 1 path allows numpy arrays; their objects still go through the
    restricted unpickler."""
    marker = tmp_path / "ran"
    payload = np.array([Marker(marker)], dtype=object)
    torch.save({"step": 1, "rng": {"numpy": payload}}, tmp_path / "state.pt")
    with pytest.raises(BadInputError, match="refused"):
        checkpoints.read_state(tmp_path / "state.pt")
    assert not marker.exists()


def test_a_state_that_does_not_fit_is_one_line(tmp_path, photos):
    step = tmp_path / "run" / "checkpoints" / "step_0000002"
    step.mkdir(parents=True)
    torch.save({"step": 2, "position": {"step": 2}}, step / "state.pt")
    (tmp_path / "run" / "checkpoints" / "latest").symlink_to(step.name)
    config = load_config(
        None,
        [
            f"data.train_hr={photos}",
            f"output_dir={tmp_path / 'run'}",
            "data.hr_size=32",
            "data.batch_size=2",
            "data.workers=0",
            "model.num_features=8",
            "model.num_blocks=1",
            'gan.content_loss="mse"',
            "tensorboard=false",
        ],
    )
    with pytest.raises(BadInputError, match="cannot resume from this checkpoint"):
        Trainer(config).run(resume=True)


def test_no_unsafe_loading_anywhere_in_the_package():
    package = Path(__file__).parents[1] / "src" / "srgan"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("weights_only=False", "pickle.load", "yaml.load(", "yaml.unsafe_load"):
            assert forbidden not in text, f"{path}: {forbidden}"
    assert (package / "training" / "checkpoints.py").is_file()  # the walk saw the package


def test_checkpoint_weights_with_a_lying_header_are_refused(tmp_path):
    from tests import hostile_models

    torch.save({"step": 1}, tmp_path / "state.pt")
    hostile_models.past_the_end(tmp_path / "generator.safetensors")
    with pytest.raises(BadInputError, match="but the file holds 16 bytes"):
        checkpoints.load_checkpoint(tmp_path, {"generator": torch.nn.Conv2d(3, 3, 3)})
