"""Training checkpoints are hostile input: a crafted `state.pt` never runs code, and
every state the engine writes loads with `torch.load(weights_only=True)`."""

from __future__ import annotations

import contextlib
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.errors import BadInputError
from srgan.training.engine import checkpoints
from srgan.training.engine.rng import restore_rng_state, rng_state
from tests.training_support import TINY_IMAGE, TINY_VIDEO, engine, tiny_image


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
def test_load_state_refuses_code(tmp_path, write):
    marker = tmp_path / "ran"
    write(tmp_path / "state.pt", marker)
    with pytest.raises(BadInputError, match="refused: it holds") as caught:
        checkpoints.load_state(tmp_path)
    assert "\n" not in str(caught.value) and not marker.exists()


def _sets(values: list[str]) -> list[str]:
    return [item for value in values for item in ("--set", value)]


@pytest.mark.parametrize("write", [zip_pickle, raw_pickle])
def test_commands_refuse_a_hostile_run_folder(cli, photos, clips, tmp_path, write):
    marker = tmp_path / "ran"
    run = hostile_run(tmp_path / "run", write, marker)
    commands = [
        ["train", "--resume", "--train", photos, "-o", run, "--pretrain-steps", "2",
         "--train-steps", "0", *_sets(TINY_IMAGE)],
        ["train-vsr", "--resume", "--train", clips / "train", "-o", run, "--steps", "2",
         *_sets(TINY_VIDEO)],
        ["upscale", photos / "0.png", tmp_path / "out.png", "--model", run],
    ]  # fmt: skip
    reasons = ["refused: it holds", "refused: it holds", "without a trained generator"]
    for command, reason in zip(commands, reasons, strict=True):
        result = cli(*command, check=False)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and reason in result.stderr, result.stderr
        assert not marker.exists(), command
    assert not (tmp_path / "out.png").exists()


def test_generator_files_that_are_pickles_or_lie_are_refused(cli, photos, tmp_path):
    from tests import hostile_models

    marker = tmp_path / "ran"
    step = tmp_path / "run" / "checkpoints" / "step_0000001"
    step.mkdir(parents=True)
    raw_pickle(step / "generator.safetensors", marker)
    zip_pickle(tmp_path / "evil.pth", marker)
    lying = tmp_path / "lying" / "checkpoints" / "step_0000001"
    lying.mkdir(parents=True)
    hostile_models.past_the_end(lying / "generator.safetensors")
    for model in (step, tmp_path / "evil.pth", lying):
        result = cli(
            "upscale", photos / "0.png", tmp_path / "out.png", "--model", model, check=False
        )
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "the file holds 16 bytes" in result.stderr
    assert not marker.exists() and not (tmp_path / "out.png").exists()


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


def test_a_fifo_in_place_of_the_state_is_not_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "state.pt")  # opening it to read would block
    with pytest.raises(BadInputError, match="not a training checkpoint"):
        checkpoints.load_state(tmp_path)


def test_saved_states_are_plain_and_load_restricted(photos, tmp_path):
    config = tiny_image(photos, tmp_path / "run", "ema_decay=0.5", steps=(2, 1))
    last = engine(config).run()
    state = torch.load(last / "state.pt", weights_only=True)
    assert state["step"] == 3 and state["recipe_kind"] == "image"
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    assert state["stepper"]["ema"] is not None


def test_rng_states_round_trip_exactly():
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    random.gauss(0, 1)  # a cached gaussian is part of the state
    np.random.standard_normal()
    saved = checkpoints.plain(rng_state())
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng_state(saved)
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected


def test_plain_refuses_objects_at_save_time(tmp_path):
    with pytest.raises(TypeError, match=r"state\.x: a \w*Path is not plain data"):
        checkpoints.plain({"x": Path("a")})
    # numpy scalars subclass float but pickle as numpy objects: converted, so they load
    converted = checkpoints.plain({"a": np.float64(1.5), "b": (np.int64(2),)})
    assert converted == {"a": 1.5, "b": (2,)} and type(converted["a"]) is float
    with pytest.raises(TypeError):
        checkpoints.save_checkpoint(tmp_path, 1, {}, {"x": Path("a")})
    assert not list(tmp_path.iterdir())  # nothing half-written
    saved = checkpoints.save_checkpoint(tmp_path, 1, {}, {"lr": np.float32(0.5)})
    assert checkpoints.load_state(saved)["lr"] == 0.5


def test_states_of_the_earlier_trainers_are_named_and_their_payloads_refused(tmp_path):
    """srgan 0.1 stored np.random.get_state() as it is (a numpy array inside): such a
    state is named, not resumed; numpy object arrays of payloads still run nothing."""
    torch.save({"step": 4, "rng": {"numpy": np.random.get_state()}}, tmp_path / "state.pt")
    with pytest.raises(BadInputError, match="before srgan's training engine"):
        checkpoints.load_state(tmp_path)
    marker = tmp_path / "ran"
    payload = np.array([Marker(marker)], dtype=object)
    torch.save({"step": 1, "rng": {"numpy": payload}}, tmp_path / "state.pt")
    with pytest.raises(BadInputError, match="refused: it holds objects"):
        checkpoints.load_state(tmp_path)
    assert not marker.exists()


def test_a_state_that_does_not_fit_is_one_line(cli, photos, tmp_path):
    run = tmp_path / "run"
    step = run / "checkpoints" / "step_0000002"
    step.mkdir(parents=True)
    torch.save({"step": 2, "position": {"step": 2}}, step / "state.pt")
    (run / "checkpoints" / "latest").symlink_to(step.name)
    result = cli("train", "--resume", "--train", photos, "-o", run, "--pretrain-steps", "3",
                 "--train-steps", "0", *_sets(TINY_IMAGE), check=False)  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "does not fit this configuration" in result.stderr


def test_no_unsafe_loading_anywhere_in_the_package():
    package = Path(__file__).parents[1] / "src" / "srgan"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("weights_only=False", "pickle.load", "yaml.load(", "yaml.unsafe_load"):
            assert forbidden not in text, f"{path}: {forbidden}"
    assert (package / "training" / "engine" / "checkpoints.py").is_file()  # the walk saw it
