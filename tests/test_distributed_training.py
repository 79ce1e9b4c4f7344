"""Both training commands under torchrun: two CPU processes with DDP over gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from srgan.training.engine.checkpoints import load_state
from tests.training_support import TINY_IMAGE, TINY_VIDEO


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _sets(values: list[str]) -> list[str]:
    return [item for value in values for item in ("--set", value)]


COMMANDS = {
    "image": lambda photos, clips: ["train", "--train", str(photos), "--pretrain-steps", "3",
                                    "--train-steps", "2", *_sets(TINY_IMAGE)],
    "video": lambda photos, clips: ["train-vsr", "--train", str(clips / "train"), "--steps", "5",
                                    *_sets(TINY_VIDEO)],
}  # fmt: skip


@pytest.mark.parametrize("recipe", ["image", "video"])
def test_two_processes_train_one_model_and_only_rank_0_writes(recipe, photos, clips, tmp_path):
    run = tmp_path / "run"
    result = torchrun("-m", "srgan", *COMMANDS[recipe](photos, clips), "-o", str(run))
    records = [json.loads(line) for line in (run / "training.log").read_text().splitlines()]
    steps = [r["step"] for r in records if "lr_phase" in r]
    assert steps == [1, 2, 3, 4, 5]  # one line per step: rank 1 logs nothing
    assert result.stderr.count("step 5 [") == 1
    state = load_state((run / "checkpoints" / "latest").resolve())
    assert state["world_size"] == 2 and state["position"]["step"] == 5
    assert not list(run.glob("**/*.part"))


SCRIPT = """
import os, torch
from tests.training_support import engine, tiny_image, tiny_video
from pathlib import Path
recipe, inputs, run = {recipe!r}, Path({inputs!r}), Path({run!r})
if recipe == "image":
    config = tiny_image(inputs, run, steps=(3, 2))
else:
    config = tiny_video(inputs, run, steps=4)
trainer = engine(config)
trainer.run()
nets = trainer.stepper.nets
torch.save(
    {{
        "networks": {{n: dict(nets.plain(n).named_parameters()) for n in nets.names()}},
        "weights": trainer.recipe.state_dict(),
        "batch": trainer.position.batch,
    }},
    {out!r} + os.environ["RANK"] + ".pt",
)
"""


@pytest.mark.parametrize("recipe", ["image", "video"])
def test_gradients_are_averaged_so_both_processes_hold_the_same_weights(
    recipe, photos, clips, tmp_path, monkeypatch
):
    import torch

    inputs = photos if recipe == "image" else clips
    script = tmp_path / "train_and_dump.py"
    out = str(tmp_path / "rank")
    code = SCRIPT.format(recipe=recipe, inputs=str(inputs), run=str(tmp_path / "run"), out=out)
    script.write_text(textwrap.dedent(code))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # for tests.*
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    torchrun(str(script))
    ranks = [torch.load(f"{out}{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["networks"].keys() == ranks[1]["networks"].keys()
    for network, first in ranks[0]["networks"].items():
        second = ranks[1]["networks"][network]
        for name in first:
            assert torch.allclose(first[name], second[name], atol=1e-6), (network, name)
    # Different data on each rank: without DDP's averaging the weights would differ; the
    # logged losses are averaged too, so the video recipe's loss weights agree.
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["batch"] == ranks[1]["batch"]
