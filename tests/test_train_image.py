"""`srgan train`: the SRGAN recipe with every image architecture, from scratch and
fine-tuned from the named models, and what a run gives to `srgan upscale/eval`."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from srgan.errors import BadInputError
from srgan.imaging import read_image
from srgan.training.recipes.srgan_config import load_image_config
from srgan.zoo.registry import load_model
from tests.training_support import engine, losses, records, tiny_image

pytestmark = pytest.mark.usefixtures("one_thread")
PRETRAINED = ("model.num_features=null", "model.num_blocks=null")  # the weights decide

TINY_CLI = ["--batch-size", "2", "--set", "data.crop=32", "--set", "model.num_blocks=1",
            "--set", "model.num_features=8", "--set", "data.workers=0",
            "--set", "channels_last=false", "--set", "tensorboard=false"]  # fmt: skip


def test_stages_checkpoints_and_the_run_with_upscale_and_eval(photos, tmp_path, cli):
    config = tiny_image(photos, tmp_path / "run", "log_interval=2")
    last = engine(config).run()
    steps = losses(tmp_path / "run")
    assert [(r["step"], r["phase"]) for r in steps] == [
        (2, "pretrain"), (4, "pretrain"), (6, "gan"), (7, "gan")]  # fmt: skip
    assert [r["lr"] for r in steps] == pytest.approx([1e-4, 1e-4, 1e-4, 1e-5])  # the paper
    assert (last / "generator.safetensors").is_file() and (
        last / "discriminator.safetensors"
    ).is_file()
    assert (tmp_path / "run" / "checkpoints" / "latest").resolve() == last.resolve()
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["step"] == 7 and status["total_steps"] == 7
    cli("upscale", photos / "0.png", tmp_path / "up.png", "-m", last / "generator.safetensors")
    assert read_image(tmp_path / "up.png").pixels.shape == (256, 256, 3)
    scores = json.loads(cli("eval", "-m", tmp_path / "run", "--dataset", photos, "--json").stdout)
    assert len(scores["images"]) == 3  # the run folder stands for its latest checkpoint
    folder = cli("eval", "-m", photos, "--dataset", photos, check=False)
    assert folder.returncode == 2 and "without a trained generator" in folder.stderr
    # and what srgan compare and srgan convert take
    cli("compare", photos / "0.png", "-m", tmp_path / "run", "-m", "bicubic",
        "-o", tmp_path / "sheet.png")  # fmt: skip
    assert read_image(tmp_path / "sheet.png").pixels.shape[0] >= 256
    cli("convert", tmp_path / "run", tmp_path / "exported.safetensors")
    exported = load_file(str(tmp_path / "exported.safetensors"))
    trained = load_file(str(last / "generator.safetensors"))
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)


def test_interruption_after_a_step_saves_that_step(photos, tmp_path):
    def stop(record):
        if record.get("step") == 2 and "lr" in record:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine(tiny_image(photos, tmp_path / "cut"), on_log=stop).run()
    assert (tmp_path / "cut" / "checkpoints" / "latest").resolve().name == "step_0000002"
    engine(tiny_image(photos, tmp_path / "cut")).run(resume=True)
    assert losses(tmp_path / "cut")[-1]["step"] == 7
    events = [r["event"] for r in records(tmp_path / "cut") if "event" in r]
    assert events == ["emergency_checkpoint", "regular_checkpoint"]


def test_vgg_phase_refuses_without_weights(photos, tmp_path, monkeypatch):
    monkeypatch.delenv("SRGAN_VGG19", raising=False)
    with pytest.raises(BadInputError, match=r"vgg19-dcbb9e9d\.pth"):
        engine(tiny_image(photos, tmp_path / "v", "loss.perceptual.weight=1"))


ARCHS = {
    "srresnet": [],
    "rrdbnet": ["model.growth_channels=4"],
    "srvgg": ["model.num_blocks=2"],
}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_trains_from_scratch_and_its_run_loads_anywhere(arch, photos, tmp_path):
    config = tiny_image(photos, tmp_path / arch, f"model.arch={arch}", *ARCHS[arch], steps=(2, 1))
    last = engine(config).run()
    loaded = load_model(str(tmp_path / arch))
    assert loaded.descriptor.architecture == {
        "srresnet": "SRResNet", "rrdbnet": "RRDBNet", "srvgg": "SRVGGNetCompact"}[arch]  # fmt: skip
    state = load_file(str(last / "generator.safetensors"))
    assert all(torch.equal(state[k], v) for k, v in loaded.module.state_dict().items())


def test_fine_tuning_anime_video_with_frozen_layers_and_a_lower_rate(photos, tmp_path, cli):
    run = tmp_path / "tuned"
    config = tiny_image(
        photos, run, *PRETRAINED, "model.arch=srvgg", 'model.init="anime-video"',
        'model.freeze=["body.0"]',
        'optim.lr_factors={"body.2": 0.01}', "optim.lr=1e-3", steps=(3, 0),
    )  # fmt: skip
    trainer = engine(config)
    last = trainer.run()
    assert config.symmetric is False  # pretrained models work on [0, 1]
    groups = trainer.stepper.slots["generator"].optimizer.param_groups
    assert sorted(group["lr"] for group in groups) == pytest.approx([1e-5, 1e-3])
    pretrained = load_model("anime-video").module.state_dict()
    tuned = load_file(str(last / "generator.safetensors"))
    assert torch.equal(tuned["body.0.weight"], pretrained["body.0.weight"])  # frozen
    body2 = (tuned["body.2.weight"] - pretrained["body.2.weight"]).abs().max()
    body4 = (tuned["body.4.weight"] - pretrained["body.4.weight"]).abs().max()
    assert 0 < body2 < body4  # a hundredth of the rate moves it much less
    # it starts where anime-video is: the first loss is the pretrained model's
    up = cli("eval", "-m", run, "-m", "anime-video", "--dataset", photos, "--json").stdout
    tuned_scores, original_scores = json.loads(up)
    assert tuned_scores["mean"]["psnr"] != original_scores["mean"]["psnr"]


@pytest.mark.parametrize(("name", "blocks"), [("anime", 6), ("natural", 23)])
def test_fine_tuning_the_named_rrdbnets(name, blocks, photos, tmp_path):
    arch = ("model.arch=rrdbnet", f'model.init="{name}"', "data.batch_size=1", "data.crop=16")
    config = tiny_image(photos, tmp_path / name, *PRETRAINED, *arch, steps=(1, 0))
    last = engine(config).run()
    tuned = load_model(str(last))
    assert tuned.descriptor.architecture == "RRDBNet"
    assert sum(1 for k in tuned.module.state_dict() if k.endswith("rdb1.conv1.weight")) == blocks
    pretrained = load_model(name).module.state_dict()
    changed = [k for k, v in tuned.module.state_dict().items() if not torch.equal(v, pretrained[k])]
    assert changed  # one step moved the pretrained weights


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([*PRETRAINED, "model.arch=rrdbnet", 'model.init="anime-video"'],
         "set model.arch = 'srvgg'"),
        (["model.num_features=null", "model.arch=srvgg", 'model.init="anime-video"',
          "model.num_blocks=4"], "model.num_blocks = 4 does not match"),
        ([*PRETRAINED, "model.arch=srvgg", 'model.init="anime-video"', "data.scale=2",
          "data.crop=16"], "set data.scale to 4"),
        (["model.arch=srvgg", 'model.init="bicubic"'], "has no weights"),
        (["model.arch=srvgg", 'model.freeze=["trunk"]'], "names no parameter"),
        (["model.arch=srvgg", 'optim.lr_factors={"head": 0.1}'], "names no parameter"),
    ],
)  # fmt: skip
def test_model_settings_that_do_not_fit_are_one_line_errors(photos, tmp_path, overrides, message):
    with pytest.raises(BadInputError) as caught:
        engine(tiny_image(photos, tmp_path / "bad", *overrides, steps=(1, 0))).run()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_train_command(cli, photos, tmp_path):
    cli("train", "--example-config", tmp_path / "example.toml")
    example = load_image_config(tmp_path / "example.toml")
    assert example.loss.perceptual.preset == "srgan" and example.data.crop == 96
    quick = ["--train-steps", "5", "--arch", "srvgg", "--init", "anime-video"]
    shown = json.loads(
        cli("train", "-c", tmp_path / "example.toml", *quick, "--print-config").stdout
    )
    assert shown["gan"]["steps"] == 5 and shown["model"]["init"] == "anime-video"
    bad = cli("train", "-c", tmp_path / "example.toml", "--set", "optim.lr=0", check=False)
    assert bad.returncode == 2 and "optim.lr" in bad.stderr
    old = cli("train", "--set", "data.train_hr=photos", check=False)
    assert old.returncode == 2 and "data.train_hr was renamed: use data.train" in old.stderr
    args = ["train", "--train-hr", photos, "-o", tmp_path / "run", "--pretrain-steps", "2",
            "--train-steps", "1", "--set", "loss.perceptual.weight=0",
            "--set", "loss.pixel.weight=1", *TINY_CLI]  # fmt: skip
    result = cli(*args)
    assert "step 3 [gan" in result.stderr and "generator.safetensors" in result.stderr
    refused = cli(*args, check=False)  # not a terminal: no question, a one-line error
    assert refused.returncode == 2 and "--fresh" in refused.stderr
    again = cli(*args, "--fresh")
    assert "moved the old run to" in again.stderr
    (old_run,) = tmp_path.glob("run.old-*")
    assert (old_run / "training.log").is_file()


def test_validation_on_given_lr_images_matches_bicubic_made_ones(photos, tmp_path):
    from srgan.imaging import read_image, write_image
    from srgan.imaging.transform import resize_image

    lr_folder = tmp_path / "lr"
    for path in sorted(photos.iterdir()):
        write_image(lr_folder / path.name, resize_image(read_image(path), scale=1 / 4))
    val = (f"data.val={photos}", "val_interval=2", "val_images=1")
    engine(tiny_image(photos, tmp_path / "made", *val, steps=(2, 0))).run()
    engine(tiny_image(photos, tmp_path / "given", *val, f"data.val_lr={lr_folder}",
                      steps=(2, 0))).run()  # fmt: skip
    made, given = (
        [r for r in records(tmp_path / run) if "val_psnr" in r] for run in ("made", "given")
    )
    assert len(made) == len(given) == 1
    assert given[0]["val_psnr"] == pytest.approx(made[0]["val_psnr"], abs=1e-9)
    assert given[0]["val_bicubic_psnr"] == pytest.approx(made[0]["val_bicubic_psnr"], abs=1e-9)
    with pytest.raises(BadInputError, match="not 1/4"):
        engine(tiny_image(photos, tmp_path / "wrong", *val, f"data.val_lr={photos}",
                          steps=(2, 0))).run()  # fmt: skip


def test_realesrgan_degradations_and_the_unet_discriminator(photos, tmp_path):
    """Real-ESRGAN's recipe: LR made from each batch by the two-stage degradation (seeded
    by the batch, so a resumed run sees the same pairs), USM-sharpened targets, pixel L1
    plus the U-Net discriminator in the GAN phase."""
    realesrgan = ("data.degradation=realesrgan", "loss.pixel.kind=l1",
                  "loss.adversarial.discriminator=unet", "loss.adversarial.weight=0.1",
                  "data.realesrgan.first.kernel_sizes=[3,7]",
                  "data.realesrgan.second.kernel_sizes=[3,7]")  # fmt: skip
    straight = tiny_image(photos, tmp_path / "straight", *realesrgan, steps=(2, 2))
    engine(straight).run()
    expected = losses(tmp_path / "straight")
    assert [r["phase"] for r in expected] == ["pretrain"] * 2 + ["gan"] * 2
    assert all(r["discriminator"] > 0 for r in expected[2:])
    split = tiny_image(photos, tmp_path / "split", *realesrgan, steps=(2, 2))
    engine(split).run(stop_at_step=3)
    engine(split).run(resume=True)
    assert losses(tmp_path / "split") == expected
    bicubic = tiny_image(photos, tmp_path / "bicubic", "loss.pixel.kind=l1", steps=(2, 0))
    engine(bicubic).run()
    assert losses(tmp_path / "bicubic")[0]["pixel"] != expected[0]["pixel"]  # other pairs
    with pytest.raises(BadInputError, match="train_lr"):
        tiny_image(photos, tmp_path / "x", "data.degradation=realesrgan", f"data.train_lr={photos}")
