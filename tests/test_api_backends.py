"""The Python API picks backends as the CLI does; PyTorch models and GPUs keep PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import srgan
from srgan import api
from srgan.inference.backends import backend_of, select_backend, with_known_descriptor
from srgan.zoo.descriptor import LoadedModel
from srgan.zoo.sources import resolve_source

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:124, 200:228])


def test_load_model_uses_the_measured_choice_on_the_cpu():
    model = srgan.load_model("anime-video", "cpu")
    expected = select_backend(with_known_descriptor(resolve_source("anime-video"))).backend
    assert backend_of(model).name == expected
    assert isinstance(srgan.load_model("anime-video", "cpu", backend="torch"), LoadedModel)
    assert isinstance(srgan.load_model("anime-video", "cpu", precision="bf16"), LoadedModel)


def test_names_and_models_of_every_backend_give_the_same_picture(crop):
    reference = srgan.upscale(crop, srgan.load_model("anime-video", "cpu", backend="torch"))
    assert reference.shape == (96, 112, 3)
    for model in (
        "anime-video",
        srgan.load_model("anime-video", "cpu", backend="onnxruntime"),
        srgan.load_model("anime-video", "cpu", backend="ncnn") if _has_ncnn() else "anime-video",
    ):
        out = srgan.upscale(crop, model)
        assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1


def test_one_runner_per_model_is_reused_and_dropped_with_it(crop):
    model = srgan.load_model("anime-video", "cpu", backend="onnxruntime")
    srgan.upscale(crop, model)
    runner = api._runners[id(model)][1]
    srgan.upscale(crop, model, tile=16)
    assert api._runners[id(model)][1] is runner
    key = id(model)
    del model
    import gc

    gc.collect()
    assert key not in api._runners


def test_int8_through_the_api(crop):
    model = srgan.load_model("anime-video", "cpu", precision="int8")
    assert getattr(model, "precision", None) == "int8"
    out = srgan.upscale(crop, model)
    reference = srgan.upscale(crop, srgan.load_model("anime-video", "cpu", backend="onnxruntime"))
    difference = out.astype(float) - reference.astype(float)
    assert out.shape == reference.shape and np.sqrt(np.mean(difference**2)) < 8


def _has_ncnn() -> bool:
    import importlib.util

    return importlib.util.find_spec("ncnn") is not None
