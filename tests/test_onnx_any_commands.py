"""`--model FILE.onnx` of an architecture srgan does not have, on every command that runs
models: upscale (tiled), batch-process, eval, video and the server. The ONNX files come
from a separate process (`tests/onnx_oddball.py`); this process never sees their code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.onnx_oddball import make_oddball_models

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def oddball(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """(folder of ONNX files, the test image as PNG, the network's output on it in 0-255)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (44, 52, 3), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("oddball-cli")
    expected = make_oddball_models(folder, pixels.transpose(2, 0, 1)[None] / 255.0)
    image = folder / "input.png"
    PILImage.fromarray(pixels).save(image)
    reference = np.clip(expected[0].transpose(1, 2, 0) * 255, 0, 255)
    return folder, image, reference


def read(path: Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB"), dtype=np.float64)


def test_upscale_tiles_any_onnx_model_and_reads_its_conventions(cli, oddball, tmp_path):
    folder, image, reference = oddball
    tiled = tmp_path / "tiled.png"
    cli("upscale", image, tiled, "-m", folder / "nchw.onnx", "--onnx-range", "1", "--tile", "16")
    assert np.abs(read(tiled) - reference).max() <= 1.0
    # NHWC, 0-255 and BGR come from the file's shape and metadata, no flags needed
    plain = tmp_path / "nhwc.png"
    cli("upscale", image, plain, "-m", folder / "nhwc_bgr.onnx", "--tile", "0")
    assert np.abs(read(plain) - reference).max() <= 1.0
    # a fixed 24x24 input: tiles of 24 - 2 x 4 = 16 whatever --tile says
    fixed = tmp_path / "fixed.png"
    cli("upscale", image, fixed, "-m", folder / "fixed24.onnx", "--onnx-range", "1",
        "--tile-pad", "4", "-v")  # fmt: skip
    inside = np.abs(read(fixed) - reference)[:-8, :-8]  # the image's last edge tiles are
    assert inside.max() <= 1.0  # padded with repeated pixels where the whole had zeros
    assert np.abs(read(fixed) - reference).mean() < 0.5


def test_batch_process_and_wrong_flags(cli, oddball, tmp_path):
    folder, image, reference = oddball
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.png", "b.png"):
        (inputs / name).write_bytes(image.read_bytes())
    cli("batch-process", inputs, tmp_path / "out", "-m", folder / "fp16.onnx", "--onnx-range", "1")
    for name in ("a.png", "b.png"):
        assert np.abs(read(tmp_path / "out" / name) - reference).max() <= 2.0
    for flags, message in (
        (("--onnx-layout", "nwhc"), "--onnx-layout"),
        (("--onnx-range", "100"), "--onnx-range"),
        (("--half",), "precision it was saved in"),
        (("--scale", "4"), "upscales x2"),
        (("--backend", "ncnn"), "ONNX Runtime"),
    ):
        result = cli("upscale", image, tmp_path / "x.png", "-m", folder / "nchw.onnx", *flags,
                     check=False)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, (flags, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1
    assert not (tmp_path / "x.png").exists()


def test_a_hostile_onnx_file_is_refused_by_the_command(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])
    graph = helper.make_graph([helper.make_node("Run", ["x"], ["y"], domain="evil")], "g",
                              [image], [out])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "custom.onnx"))
    PILImage.new("RGB", (16, 16)).save(tmp_path / "in.png")
    result = cli("upscale", tmp_path / "in.png", tmp_path / "out.png", "-m",
                 tmp_path / "custom.onnx", check=False)  # fmt: skip
    assert result.returncode == 2 and "custom domain" in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_eval_scores_an_onnx_file_whatever_its_conventions(cli, oddball, photos):
    folder, _, _ = oddball
    scores = {}
    for name in ("nchw", "nhwc_bgr", "bicubic"):
        model = folder / f"{name}.onnx" if name != "bicubic" else "bicubic"
        extra = ("--onnx-range", "1") if name == "nchw" else ()
        result = cli("eval", "-m", model, "-d", photos, "--scale", "2", "--json", *extra)
        scores[name] = json.loads(result.stdout)["mean"]["psnr"]
    # one network in two conventions: the same scores; not bicubic's
    assert scores["nchw"] == pytest.approx(scores["nhwc_bgr"], abs=0.02)
    assert abs(scores["nchw"] - scores["bicubic"]) > 0.1
    assert 15 < scores["nchw"] < 60


def test_video_runs_an_onnx_file(cli, oddball, tmp_path):
    pytest.importorskip("av")
    from tests.videos import make_video, summarise

    folder, _, _ = oddball
    clip = make_video(tmp_path / "in.mp4", frames=6, size=(48, 32), audio=None)
    cli("video", clip, tmp_path / "out.mp4", "-m", folder / "nchw.onnx", "--onnx-range", "1",
        "-q")  # fmt: skip
    summary = summarise(tmp_path / "out.mp4")
    assert (summary.width, summary.height, summary.frames) == (96, 64, 6)


def test_the_server_serves_an_onnx_file_by_name(oddball, tmp_path):
    from tests.serve_support import decode, start_server

    folder, image, reference = oddball
    settings = {
        "models": ["oddball", "bicubic"],
        "default_model": "oddball",
        "model_files": {"oddball": str(folder / "nhwc_bgr.onnx")},
    }
    server = start_server(tmp_path / "data", settings)
    try:
        client = server.client()
        models = {m["name"]: m for m in client.get("/v1/models").json()}
        assert models["oddball"]["scale"] == 2 and models["oddball"]["architecture"] == "onnx"
        files = {"image": ("input.png", image.read_bytes(), "image/png")}
        response = client.post("/v1/upscale", files=files, data={"model": "oddball"})
        assert response.status_code == 200, response.text
        assert np.abs(decode(response.content).astype(np.float64) - reference).max() <= 1.0
    finally:
        server.stop()


def test_srgan_video_network_as_onnx_runs_on_video(cli, tmp_path):
    """`srgan convert` writes the video network as ONNX of N frames; `--model` runs it (in
    PyTorch, from the file's weights: srgan's windows are not of N frames)."""
    pytest.importorskip("av")
    import torch
    from safetensors.torch import save_file

    from srgan.archs.vsr import BidirectionalRecurrentVSR
    from tests.videos import make_video, pictures, summarise

    torch.manual_seed(0)
    network = BidirectionalRecurrentVSR(num_features=8, num_blocks=1, scale=2).eval()
    save_file(network.state_dict(), str(tmp_path / "vsr.safetensors"))
    cli("convert", tmp_path / "vsr.safetensors", tmp_path / "vsr.onnx", "--frames", "3", "-q")
    clip = make_video(tmp_path / "in.mp4", frames=5, size=(32, 32), audio=None)
    # The automatic tile follows the memory free at the time, and a backend measured and
    # cached for these weights by another test must not decide: the ONNX file runs in PyTorch.
    # --crf 0: lossless h264, so that the two runs' frames are compared, not the encoder's
    # decisions (a one-level difference of its input can move a block by several levels).
    whole = ("--tile", "0", "--crf", "0")
    cli("video", clip, tmp_path / "out.mp4", "-m", tmp_path / "vsr.onnx", "--window", "3", "-q",
        *whole)  # fmt: skip
    summary = summarise(tmp_path / "out.mp4")
    assert (summary.width, summary.height, summary.frames) == (64, 64, 5)
    cli("video", clip, tmp_path / "ref.mp4", "-m", tmp_path / "vsr.safetensors", "--window",
        "3", "-q", "--backend", "torch", *whole)  # fmt: skip
    for ours, reference in zip(pictures(tmp_path / "out.mp4"), pictures(tmp_path / "ref.mp4"),
                               strict=True):  # fmt: skip
        # the two runs may round differently in the last float bits: one level at most
        # (the lossless encoder's YUV 4:2:0 conversion is the same for both)
        difference = np.abs(ours.astype(np.int16) - reference)
        assert difference.mean() < 0.2 and difference.max() <= 3


def test_compare_takes_an_onnx_file(cli, oddball, tmp_path):
    folder, image, _ = oddball
    result = cli("compare", image, "-m", folder / "nhwc_bgr.onnx", "-m", "bicubic", "-o",
                 tmp_path / "sheet.png", "--json")  # fmt: skip
    report = json.loads(result.stdout)
    assert PILImage.open(tmp_path / "sheet.png").size[0] > 0
    assert "nhwc_bgr" in json.dumps(report)


def test_the_python_api_upscales_with_an_onnx_file(oddball):
    import srgan
    from srgan.zoo.onnx_any_file import open_onnx_file

    folder, image, reference = oddball
    pixels = np.asarray(PILImage.open(image))
    by_path = srgan.upscale(pixels, str(folder / "nhwc_bgr.onnx"), tile=20)
    opened = open_onnx_file(folder / "nhwc_bgr.onnx")
    assert np.abs(by_path.astype(np.float64) - reference).max() <= 1.0
    assert np.array_equal(srgan.upscale(pixels, opened, tile=20), by_path)
