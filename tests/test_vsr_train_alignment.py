"""The video trainer with alignment: the flow's own loss, its warm-up, and checkpoints
that record the alignment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from srgan.archs.vsr import vsr_hyperparameters
from srgan.imaging import Image, ImageMeta, write_image
from srgan.training.clips import ClipSettings, make_clips
from srgan.training.vsr_config import load_vsr_config
from srgan.training.vsr_trainer import VSRTrainer


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("vsr_align")
    for index, picture in enumerate((data.astronaut(), data.coffee())):
        crop = np.ascontiguousarray(picture[100:220, 100:220])
        write_image(root / "photos" / f"{index}.png", Image(crop, ImageMeta()))
    settings = ClipSettings(frames=4, size=48, clips_per_photo=2, shrink=1, val_fraction=0)
    make_clips(root / "photos", root / "clips", settings)
    return root / "clips" / "train"


def _train(clips, output, *extra: str) -> VSRTrainer:
    config = load_vsr_config(
        None,
        [
            f"data.train={clips}",
            f"output_dir={output}",
            "data.crop=36",
            "data.frames=3",
            "data.batch_size=2",
            "data.samples_per_clip=1",
            "model.num_features=6",
            "model.num_blocks=1",
            "model.flow_features=4",
            "steps=2",
            "log_interval=1",
            "schedule.warmup_steps=0",
            "optim.lr=1e-2",
            "autotune.enabled=false",
            "tensorboard=false",
            *extra,
        ],
    )
    trainer = VSRTrainer(config)
    trainer.run()
    return trainer


def _flow_weights(trainer: VSRTrainer) -> list[torch.Tensor]:
    assert trainer.model.align is not None
    return [p.detach().clone() for p in trainer.model.align.parameters()]


def test_the_learned_flow_trains_on_its_own_loss_and_is_recorded(clips, tmp_path):
    torch.manual_seed(0)
    _train(clips, tmp_path / "learned", "model.alignment=learned")
    log = [json.loads(line) for line in (tmp_path / "learned" / "training.log").open()]
    steps = [r for r in log if "l1" in r]
    assert all("flow_photometric" in r and "flow_smoothness" in r for r in steps)
    weights = load_file(str(tmp_path / "learned/checkpoints/latest/generator.safetensors"))
    spec = vsr_hyperparameters(weights)
    assert spec is not None and spec["alignment"] == "learned" and spec["flow_features"] == 4
    assert any(key.startswith("align.") for key in weights)


def test_during_the_warm_up_only_the_flow_loss_moves_the_flow(clips, tmp_path):
    fresh = load_vsr_config(None, ["model.num_features=6", "model.num_blocks=1"])
    assert fresh.model.alignment == "learned"
    silent = ("model.alignment=learned", "loss.flow=0", "loss.flow_warmup_steps=10")
    torch.manual_seed(0)
    untouched = _train(clips, tmp_path / "warm", *silent)
    torch.manual_seed(0)
    reference = VSRTrainer(load_vsr_config(None, _args(clips, tmp_path / "ref", *silent)))
    before = _flow_weights(reference)
    after = _flow_weights(untouched)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    torch.manual_seed(0)
    joint = _train(clips, tmp_path / "joint", "model.alignment=learned", "loss.flow_warmup_steps=0")
    assert not all(torch.equal(a, b) for a, b in zip(before, _flow_weights(joint), strict=True))


def _args(clips, output, *extra: str) -> list[str]:
    return [
        f"data.train={clips}",
        f"output_dir={output}",
        "model.num_features=6",
        "model.num_blocks=1",
        "model.flow_features=4",
        *extra,
    ]


def test_dis_alignment_trains_and_is_recorded(clips, tmp_path):
    _train(clips, tmp_path / "dis", "model.alignment=dis")
    weights = load_file(str(tmp_path / "dis/checkpoints/latest/generator.safetensors"))
    assert weights["opencv_flow"].tolist() == [1.0]
    spec = vsr_hyperparameters(weights)
    assert spec is not None and spec["alignment"] == "dis"
