"""int8: `srgan quantize` and `--precision int8` end to end (ONNX Runtime static QDQ)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.metrics import psnr
from srgan.zoo.cache import cache_dir
from tests.torchfree import cli_imports_torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")


@pytest.fixture
def picture(tmp_path):
    from skimage import data

    path = tmp_path / "in.png"
    write_image(path, Image(np.ascontiguousarray(data.coffee()[100:148, 200:256]), ImageMeta()))
    return path


def y_psnr(a, b) -> float:
    tensors = [
        torch.from_numpy(read_image(p).pixels).permute(2, 0, 1).float() / 255 for p in (a, b)
    ]
    return float(psnr(tensors[0], tensors[1], y_channel=True))


def test_quantize_writes_a_model_that_runs_close_to_fp32(cli, tmp_path, picture, photos):
    target = tmp_path / "av-int8.onnx"
    result = cli("quantize", "anime-video", "--calibration", photos, "-o", target)
    assert "int8 against fp32 on other crops" in result.stderr and " dB" in result.stderr
    props = {
        p.key: p.value for p in onnx.load(str(target), load_external_data=False).metadata_props
    }
    assert props["srgan.precision"] == "int8"
    ops = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    cli("-q", "upscale", picture, tmp_path / "int8.png", "-m", target)
    cli(
        "-q",
        "upscale",
        picture,
        tmp_path / "fp32.png",
        "-m",
        "anime-video",
        "--backend",
        "onnxruntime",
    )
    assert read_image(tmp_path / "int8.png").pixels.shape == (192, 224, 3)
    assert 30 < y_psnr(tmp_path / "int8.png", tmp_path / "fp32.png") < 80
    assert not cli_imports_torch(
        "-q", "upscale", str(picture), str(tmp_path / "o.png"), "-m", str(target)
    )


def test_precision_int8_quantizes_once_into_the_cache(cli, tmp_path, picture):
    cli("-q", "upscale", picture, tmp_path / "a.png", "-m", "anime-video", "--precision", "int8")
    models = (cache_dir() / "models").glob("anime-video-*-int8-*.onnx")
    cached = sorted(p for p in models if ".ort" not in p.name)  # not ORT's optimised graph
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    folder = tmp_path / "folder"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_bytes(picture.read_bytes())
    cli("-q", "batch-process", folder, tmp_path / "out", "-m", "anime-video", "--precision", "int8")
    assert cached[0].stat().st_mtime_ns == stamp
    first = read_image(tmp_path / "a.png").pixels
    for index in range(3):
        assert np.array_equal(read_image(tmp_path / "out" / f"{index}.png").pixels, first)
    source, target = str(picture), str(tmp_path / "b.png")
    assert not cli_imports_torch(
        "-q", "upscale", source, target, "-m", "anime-video", "--precision", "int8"
    )


def test_ncnn_int8_is_calibrated_once_and_close_to_fp32(cli, tmp_path, picture):
    pytest.importorskip("ncnn")
    args = ("-q", "upscale", str(picture))
    cli(*args, tmp_path / "n8.png", "-m", "anime-video", "--precision", "int8", "--backend", "ncnn")
    cli(*args, tmp_path / "fp32.png", "-m", "anime-video", "--backend", "ncnn")
    assert 35 < y_psnr(tmp_path / "n8.png", tmp_path / "fp32.png") < 80
    cached = sorted((cache_dir() / "models").glob("anime-video-*-ncnn-int8-*"))
    assert [p.suffix for p in cached if p.suffix in (".param", ".bin")] == [".bin", ".param"]
    param = next(p for p in cached if p.suffix == ".param").read_text()
    assert all(" 8=1" in line for line in param.splitlines() if line.startswith("Convolution"))
    target = str(tmp_path / "again.png")
    assert not cli_imports_torch(
        *args, target, "-m", "anime-video", "--precision", "int8", "--backend", "ncnn"
    )


def test_video_runs_in_int8(cli, tmp_path):
    from tests.videos import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=3, size=(32, 24), audio=None)
    cli("-q", "video", clip, tmp_path / "out.mp4", "--precision", "int8")
    import av

    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (128, 96)
        assert sum(1 for _ in container.decode(stream)) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--half", "--precision", "int8"], "choose one of --precision, --half and --bf16"),
        (["--half", "--bf16"], "choose one of"),
        (["--precision", "int4"], "--precision 'int4'"),
        (["--precision", "int8", "--backend", "torch"], "runs on onnxruntime"),
        (["--precision", "bf16", "--backend", "ncnn"], "ncnn runs fp32, fp16 and int8"),
        (["--precision", "int8", "-m", "bicubic"], "no backend runs bicubic"),
    ],
)
def test_bad_precision_requests_are_bad_input(cli, tmp_path, picture, args, message):
    model = [] if "-m" in args else ["-m", "anime-video"]
    result = cli("upscale", picture, tmp_path / "o.png", *model, *args, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "o.png").exists()


def test_quantize_refusals_leave_no_file(cli, tmp_path, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["anime-video", "-o", tmp_path / "m.txt"], "must be an .onnx file"),
        (["anime-video", "--calibration", empty, "-o", tmp_path / "m.onnx"], "no images found"),
        (
            ["anime-video", "--calibration", photos / "0.png", "-o", tmp_path / "m.onnx"],
            "not a folder",
        ),
        (["bicubic", "-o", tmp_path / "m.onnx"], "only image networks"),
        (["no-such-model", "-o", tmp_path / "m.onnx"], "unknown model"),
    ]
    for args, message in cases:
        result = cli("quantize", *args, check=False)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_quantize_a_weights_file_and_upscale_with_it(cli, tmp_path, picture, photos):
    from srgan.inference.backends import open_model

    weights = tmp_path / "mine.pth"
    torch.save(open_model("anime-video", backend="torch").module.state_dict(), weights)
    target = tmp_path / "mine-int8.onnx"
    cli("-q", "quantize", weights, "--calibration", photos, "-o", target)
    cli("-q", "upscale", picture, tmp_path / "int8.png", "-m", target)
    cli("-q", "upscale", picture, tmp_path / "fp32.png", "-m", weights, "--backend", "torch")
    assert 30 < y_psnr(tmp_path / "int8.png", tmp_path / "fp32.png") < 80


def test_a_measured_visible_int8_loss_is_flagged_in_models_and_at_run_time(
    cli, tmp_path, picture, monkeypatch
):
    from srgan.zoo import pretrained

    monkeypatch.setitem(pretrained.INT8_PSNR_VS_FP32, "anime-video", 33.5)
    listing = cli("models").stdout
    assert "33.5*" in listing and "visible loss" in listing
    result = cli("upscale", picture, tmp_path / "o.png", "-m", "anime-video",
                 "--precision", "int8")  # fmt: skip
    assert "loses visible quality (33.5 dB" in result.stderr
    monkeypatch.setitem(pretrained.INT8_PSNR_VS_FP32, "anime-video", 41.8)
    row = next(r for r in cli("models").stdout.splitlines() if r.startswith("anime-video"))
    assert "41.8 " in row and "*" not in row
    quiet = cli("upscale", picture, tmp_path / "p.png", "-m", "anime-video", "--precision", "int8")
    assert "loses visible quality" not in quiet.stderr
