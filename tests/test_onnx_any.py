"""ONNX models of an architecture srgan does not know, from files alone: conventions read
from the graph or measured, tiles padded for fixed sizes, and hostile graphs refused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from srgan.errors import BadInputError
from srgan.inference.onnx_generic import GenericOnnxRunner
from srgan.inference.tiling import tiled_upscale
from srgan.zoo.onnx_generic import open_generic_onnx
from tests.onnx_oddball import make_oddball_models


@pytest.fixture(scope="module")
def oddball(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """(folder of ONNX files, the 8-bit test image, PyTorch's output on it)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (44, 52, 3), dtype=np.uint8)
    image = pixels.transpose(2, 0, 1)[None].astype(np.float32) / 255
    folder = tmp_path_factory.mktemp("oddball")
    return folder, pixels, make_oddball_models(folder, image)


def levels(output: np.ndarray, expected: np.ndarray) -> float:
    reference = np.clip(expected[0].transpose(1, 2, 0) * 255, 0, 255)
    return float(np.abs(output.astype(np.float64) - reference).max())


@pytest.mark.parametrize("name", ["nchw", "nhwc_bgr", "fp16"])
def test_conventions_are_read_and_the_model_tiles(oddball, name, caplog):
    folder, pixels, expected = oddball
    with caplog.at_level(logging.WARNING):
        model = open_generic_onnx(
            folder / f"{name}.onnx", value_range=1.0 if name != "nhwc_bgr" else None
        )
    c = model.conventions
    assert c.scale == 2 and c.channels == 3 and c.fixed_size is None
    assert model.size_multiple == 2  # the network pixel-unshuffles by 2
    assert (c.layout, c.channel_order, c.value_range) == {
        "nchw": ("NCHW", "RGB", 1.0),
        "nhwc_bgr": ("NHWC", "BGR", 255.0),  # from the metadata
        "fp16": ("NCHW", "RGB", 1.0),
    }[name]
    assert c.element_type == ("float16" if name == "fp16" else "float32")
    assert not caplog.records
    runner = GenericOnnxRunner(model, threads=2)
    whole = tiled_upscale(pixels, runner, 2, 0, 0)
    # tiles start at multiples of 2, as the network's pixel unshuffle needs; the last ones
    # (52 = 3 x 14 + 10 wide) are padded to the multiple by the runner
    tiled = tiled_upscale(pixels, runner, 2, 14, 8)
    assert tiled.shape == (88, 104, 3)
    limit = 2.0 if name == "fp16" else 1.0
    assert levels(whole, expected) <= limit
    assert levels(tiled, expected) <= limit


def test_a_fixed_input_size_is_tiled_to_it(oddball):
    folder, pixels, expected = oddball
    model = open_generic_onnx(folder / "fixed24.onnx", value_range=1.0)
    assert model.conventions.fixed_size == (24, 24) and model.conventions.scale == 2
    runner = GenericOnnxRunner(model, threads=2)
    output = tiled_upscale(pixels, runner, 2, 8, 8)  # 8 + 2 * 8 = 24
    # Inside, as the whole network; at the image's right and bottom edges the tiles are
    # padded to 24 with repeated pixels where the whole image had the convolutions' zeros.
    assert levels(output[:-6, :-6], expected[..., :-6, :-6]) <= 1.0
    reference = np.clip(expected[0].transpose(1, 2, 0) * 255, 0, 255)
    assert np.abs(output - reference).mean() < 0.5
    with pytest.raises(ValueError, match="larger than the model's fixed"):
        runner(np.zeros((1, 3, 30, 30), np.float32))


def test_an_unsure_range_is_said_and_flags_win(oddball, caplog):
    folder, _, _ = oddball
    with caplog.at_level(logging.WARNING):
        guessed = open_generic_onnx(folder / "nchw.onnx")
    assert guessed.conventions.value_range == 1.0
    assert any("--onnx-range" in r.getMessage() for r in caplog.records)
    given = open_generic_onnx(folder / "nhwc_bgr.onnx", layout="NHWC", channel_order="RGB")
    assert given.conventions.channel_order == "RGB"  # the flag overrides the metadata


def _graph_file(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime reads
    onnx.save(model, str(path))
    return path


def test_hostile_and_unusable_graphs_are_refused(tmp_path):
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])
    custom = _graph_file(
        tmp_path / "custom.onnx", [helper.make_node("Evil", ["x"], ["y"], domain="my.ops")],
        [image], [out],
    )  # fmt: skip
    loop_body = helper.make_graph([], "body", [], [])
    looping = _graph_file(
        tmp_path / "loop.onnx",
        [helper.make_node("Loop", ["", ""], ["y"], body=loop_body)],
        [image], [out],
    )  # fmt: skip
    shape = helper.make_tensor("s", TensorProto.INT64, [4], [1, 3, 100000, 100000])
    bomb = _graph_file(
        tmp_path / "bomb.onnx",
        [helper.make_node("Expand", ["x", "s"], ["y"])],
        [image], [out], [shape],
    )  # fmt: skip
    scales = helper.make_tensor("k", TensorProto.FLOAT, [4], [1, 1, 1000, 1000])
    resize = _graph_file(
        tmp_path / "resize.onnx",
        [helper.make_node("Resize", ["x", "", "k"], ["y"], mode="nearest")],
        [image], [out], [scales],
    )  # fmt: skip
    two = _graph_file(
        tmp_path / "two.onnx", [helper.make_node("Add", ["x", "z"], ["y"])],
        [image, helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, None, None])], [out],
    )  # fmt: skip
    flat = _graph_file(
        tmp_path / "flat.onnx", [helper.make_node("Identity", ["v"], ["y"])],
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 3])], [out],
    )  # fmt: skip
    unclear = _graph_file(
        tmp_path / "unclear.onnx", [helper.make_node("Identity", ["u"], ["y"])],
        [helper.make_tensor_value_info("u", TensorProto.FLOAT, [1, None, None, None])], [out],
    )  # fmt: skip
    shrink = _graph_file(
        tmp_path / "same.onnx",
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)],
        [image], [out],
    )  # fmt: skip
    expected = {
        custom: "custom domain",
        looping: "operator Loop",
        bomb: "Expand to a shape",
        resize: "Resize by",
        two: "2 inputs",
        flat: "2 dimensions",
        unclear: "--onnx-layout",
        shrink: "channels into 1",
    }
    for path, message in expected.items():
        with pytest.raises(BadInputError, match=message):
            open_generic_onnx(path, value_range=1.0)
