"""`--model FILE.onnx`: srgan's own files run; crafted ones are refused before ONNX Runtime
sees them (external data naming other files, unbounded growth, loops, foreign files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srgan.imaging import Image, ImageMeta, read_image, write_image
from srgan.zoo.onnx_model import DESCRIPTOR_KEY, PRECISION_KEY

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DESCRIPTOR = {"name": "tiny", "architecture": "hand-made", "scale": 2, "in_channels": 3}


def tiny_model(nodes, initializers=(), metadata=True, inputs=None) -> onnx.ModelProto:
    """[1, 3, h, w] -> [1, 3, 2h, 2w] (nearest upsampling by default), srgan's metadata."""
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        for key, value in ((DESCRIPTOR_KEY, json.dumps(DESCRIPTOR)), (PRECISION_KEY, "fp32")):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    return model


def upsample(scales=(1.0, 1.0, 2.0, 2.0)):
    return (
        [helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest")],
        [numpy_helper.from_array(np.array(scales, np.float32), "scales")],
    )


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "in.png"
    write_image(path, Image(np.full((8, 6, 3), 120, np.uint8), ImageMeta()))
    return path


def run(cli, tmp_path, picture, model):
    path = tmp_path / "model.onnx"
    if isinstance(model, bytes):
        path.write_bytes(model)
    else:
        onnx.save(model, str(path))
    return cli("upscale", picture, tmp_path / "out.png", "-m", path, check=False)


def test_a_file_srgan_wrote_runs(cli, tmp_path, picture):
    result = run(cli, tmp_path, picture, tiny_model(*upsample()))
    assert result.returncode == 0, result.stderr
    assert np.all(read_image(tmp_path / "out.png").pixels == 120)
    assert read_image(tmp_path / "out.png").pixels.shape == (16, 12, 3)


def test_a_file_without_srgan_metadata_runs_as_any_onnx_model(cli, tmp_path, picture):
    result = run(cli, tmp_path, picture, tiny_model(*upsample(), metadata=False))
    assert result.returncode == 0, result.stderr
    assert read_image(tmp_path / "out.png").pixels.shape == (16, 12, 3)


def hostile_models():
    nodes, _ = upsample()
    external = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    external.ClearField("float_data")
    external.ClearField("raw_data")
    external.data_location = TensorProto.EXTERNAL
    entry = external.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    shape = numpy_helper.from_array(np.array([1, 3, 60000, 60000], np.int64), "shape")
    loop_body = helper.make_graph([], "body", [], [])
    damaged = tiny_model(*upsample(), metadata=False)
    for key, value in ((DESCRIPTOR_KEY, '{"scale": "x"'), (PRECISION_KEY, "fp32")):
        item = damaged.metadata_props.add()
        item.key, item.value = key, value
    return {
        "external data": (tiny_model(nodes, [external]), "tensor data outside the file"),
        "huge constant": (
            tiny_model([helper.make_node("ConstantOfShape", ["shape"], ["output"])], [shape]),
            "operator ConstantOfShape",
        ),
        "resize by 1000": (tiny_model(*upsample((1, 1, 1000, 1000))), "Resize by"),
        "resize to sizes": (
            tiny_model(
                [helper.make_node("Resize", ["input", "", "", "sizes"], ["output"])],
                [numpy_helper.from_array(np.array([1, 3, 9, 9], np.int64), "sizes")],
            ),
            "Resize without constant scales",
        ),
        "loop": (
            tiny_model([helper.make_node("Loop", ["", ""], ["output"], body=loop_body)]),
            "operator Loop",
        ),
        "custom domain": (
            tiny_model([helper.make_node("Evil", ["input"], ["output"], domain="x.y")]),
            "operator x.y.Evil",
        ),
        "damaged metadata": (damaged, "metadata is damaged"),
        "two inputs": (
            tiny_model(
                *upsample(),
                inputs=[
                    helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, "h", "w"])
                    for n in ("input", "other")
                ],
            ),
            "one input and one output",
        ),
        "not onnx": (b"\x00\xff" * 64 + b"garbage", "not a readable ONNX file"),
    }


@pytest.mark.parametrize("case", list(hostile_models()))
def test_crafted_onnx_files_are_refused_in_one_line(cli, tmp_path, picture, case):
    model, message = hostile_models()[case]
    result = run(cli, tmp_path, picture, model)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out.png").exists()


def test_onnx_files_do_not_run_on_other_backends(cli, tmp_path, picture):
    onnx.save(tiny_model(*upsample()), str(tmp_path / "m.onnx"))
    for backend, message in (("torch", "runs on onnxruntime"), ("ncnn", "has no ncnn files")):
        result = cli(
            "upscale", picture, tmp_path / "o.png", "-m", tmp_path / "m.onnx",
            "--backend", backend, check=False,
        )  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
