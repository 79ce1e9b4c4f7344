"""`srgan train` under torchrun: two CPU processes with DDP over gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import torch

TINY = ["--batch-size", "2", "--set", "data.hr_size=32", "--set", "model.num_blocks=1",
        "--set", "model.num_features=8", "--set", "model.discriminator_features=4",
        "--set", "data.workers=0", "--set", "data.samples_per_image=2",
        "--set", "channels_last=false", "--set", "gan.content_loss=mse",
        "--set", "log_interval=1"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str, cwd=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_train_one_model_and_only_rank_0_writes(photos, tmp_path):
    run = tmp_path / "run"
    result = torchrun("-m", "srgan", "train", "--train-hr", str(photos), "-o", str(run),
                      "--pretrain-steps", "3", "--train-steps", "2", *TINY)  # fmt: skip
    records = [json.loads(line) for line in (run / "training.log").read_text().splitlines()]
    steps = [r["step"] for r in records if "stage" in r]
    assert steps == [1, 2, 3, 4, 5]  # one line per step: rank 1 logs nothing
    assert result.stderr.count("step 5 [gan]") == 1
    latest = (run / "checkpoints" / "latest").resolve()
    state = torch.load(latest / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and state["position"]["step"] == 5
    assert state["position"]["batch"] % 2 == 0  # each step used one batch per process
    assert not list(run.glob("**/*.part"))


def test_gradients_are_averaged_so_both_processes_hold_the_same_weights(photos, tmp_path):
    script = tmp_path / "train_and_dump.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, torch
            from srgan.training.config import load_config
            from srgan.training.trainer import Trainer
            config = load_config(None, [
                "data.train_hr={photos}", "output_dir={tmp_path / "run"}", "data.hr_size=32",
                "data.batch_size=2", "data.workers=0", "data.samples_per_image=2",
                "model.num_features=8", "model.num_blocks=1", "model.discriminator_features=4",
                "pretrain.steps=3", "gan.steps=2", 'gan.content_loss="mse"',
                "channels_last=false", "tensorboard=false",
            ])
            trainer = Trainer(config)
            trainer.run()
            rank = os.environ["RANK"]
            torch.save(
                {{
                    "generator": dict(trainer.generator.named_parameters()),
                    "discriminator": dict(trainer.discriminator.named_parameters()),
                    "batches_seen": trainer.position.batch,
                }},
                "{tmp_path}/rank" + rank + ".pt",
            )
            """
        )
    )
    torchrun(str(script))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for network in ("generator", "discriminator"):
        first, second = ranks[0][network], ranks[1][network]
        assert first.keys() == second.keys()
        for name in first:
            assert torch.allclose(first[name], second[name], atol=1e-6), (network, name)
    # Different data on each rank: without DDP's averaging the weights would differ.
    assert ranks[0]["batches_seen"] == ranks[1]["batches_seen"]
