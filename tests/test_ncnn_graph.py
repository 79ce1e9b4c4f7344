"""The ncnn graph interpreter against the real ncnn runtime, layer by layer, and hostile
``.param``/``.bin`` files (each built here) refused with one line, quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.errors import BadInputError
from srgan.zoo.ncnn_format import parse_param, read_ncnn
from srgan.zoo.ncnn_graph import NcnnGraph, probe_graph
from srgan.zoo.ncnn_loader import load_ncnn_file
from tests.ncnn_files import NcnnFile, run_ncnn

TOLERANCE = 1e-4


def _own_copy(f: NcnnFile, source: str, name: str) -> None:
    """The input through a layer that writes a new blob: ncnn runs the in-place layers
    (ReLU, UnaryOp, ...) on the caller's buffer otherwise, which crashes it."""
    f.layer("Split", "input_split", [source], ["s0", "s1"])
    f.layer("Eltwise", "input_copy", ["s0", "s1"], [name], "0=1 -23301=2,0.5,0.5")


def _layer_zoo() -> tuple[NcnnFile, list[str]]:
    """One branch per layer form, all reading the 3x16x16 input; returns the file and the
    blobs to compare."""
    f = NcnnFile(seed=1)
    copies = [f"d{i}" for i in range(64)]
    f.layer("Input", "in", [], ["data"], "0=16 1=16 2=3")
    _own_copy(f, "data", "x")
    f.layer("Split", "split", ["x"], copies)
    d = iter(copies)
    out: list[str] = []

    def conv(kind: str, name: str, src: str, params: str, weights: int, bias: int = 0) -> str:
        f.layer(kind, name, [src], [name], params)
        f.tagged(weights)
        if bias:
            f.raw(bias)
        out.append(name)
        return name

    conv(
        "Convolution",
        "conv_dilated",
        next(d),
        "0=4 1=3 2=2 3=2 4=2 5=1 6=108 9=2 -23310=1,1.000000e-01",
        108,
        4,
    )
    conv("Convolution", "conv_same", next(d), "0=4 1=3 11=1 13=2 4=-233 5=1 6=36", 36, 4)
    conv(
        "Convolution",
        "conv_asym",
        next(d),
        "0=2 1=3 4=1 15=2 14=0 16=1 18=5.000000e-01 6=54 9=3 -23310=2,-2.0e-01,3.0e-01",
        54,
    )
    conv("ConvolutionDepthWise", "conv_dw", next(d), "0=6 1=3 4=1 5=1 6=54 7=3 9=4", 54, 6)
    conv("Deconvolution", "deconv", next(d), "0=2 1=4 3=2 4=1 5=1 6=96 18=1 9=1", 96, 2)
    conv("DeconvolutionDepthWise", "deconv_dw", next(d), "0=3 1=3 3=2 7=3 5=1 6=27", 27, 3)
    conv("Convolution", "conv12", next(d), "0=12 1=1 5=1 6=36", 36, 12)
    for name, params in [
        ("pool_max", "0=0 1=3 2=2 3=1"),
        ("pool_avg_full", "0=1 1=3 2=2 5=0 6=0"),
        ("pool_avg_incl", "0=1 1=3 2=2 3=1 5=1 6=1"),
        ("pool_avg_same", "0=1 1=2 2=2 5=2"),
        ("pool_adaptive", "0=1 7=1 8=5 18=3"),
        ("gmax", "0=0 4=1"),
        ("gavg", "0=1 4=1"),
    ]:
        f.layer("Pooling", name, [next(d)], [name], params)
        out.append(name)
    f.layer("Split", "gavg_split", ["gavg"], ["gavg_a", "gavg_b", "gavg_c"])
    f.layer("InnerProduct", "fc", ["gmax"], ["fc"], "0=16 1=1 2=48 9=5")
    f.tagged(48)
    f.raw(16)
    out.append("fc")
    f.layer("InnerProduct", "fc_flat", [next(d)], ["fc_flat"], "0=4 2=3072")
    f.tagged(3072, scale=0.03)
    out.append("fc_flat")
    f.layer(
        "Crop", "crop_slice", [next(d)], ["crop_slice"], "-23309=2,1,2 -23310=2,-1,-3 -23311=2,1,2"
    )
    f.layer("Crop", "crop_fixed", [next(d)], ["crop_fixed"], "0=1 1=2 3=5 4=6 5=-233")
    f.layer("Split", "ref_split", ["crop_slice"], ["crop_slice_a", "crop_slice_b"])
    f.layer("Crop", "crop_ref", [next(d), "crop_slice_a"], ["crop_ref"], "0=2 1=1")
    out += ["crop_slice_b", "crop_fixed", "crop_ref"]
    f.layer("Concat", "cat_c", [next(d), next(d)], ["cat_c"], "0=0")
    f.layer("Concat", "cat_w", [next(d), next(d)], ["cat_w"], "0=-1")
    f.layer(
        "Eltwise",
        "sum_coeffs",
        [next(d), next(d)],
        ["sum_coeffs"],
        "0=1 -23301=2,5.000000e-01,-2.000000e+00",
    )
    f.layer("Eltwise", "prod", [next(d), next(d)], ["prod"], "0=0")
    f.layer("Eltwise", "emax", [next(d), next(d), next(d)], ["emax"], "0=2")
    out += ["cat_c", "cat_w", "sum_coeffs", "prod", "emax"]
    f.layer("BinaryOp", "mul_channel", [next(d), "gavg_a"], ["mul_channel"], "0=2")
    f.layer("BinaryOp", "add_width", [next(d), "fc"], ["add_width"], "0=0")
    f.layer("BinaryOp", "div_scalar", [next(d)], ["div_scalar"], "0=3 1=1 2=5.000000e-01")
    f.layer("BinaryOp", "rsub_scalar", [next(d)], ["rsub_scalar"], "0=7 1=1 2=1.500000e+00")
    f.layer("BinaryOp", "rpow_scalar", [next(d)], ["rpow_scalar"], "0=9 1=1 2=2.000000e+00")
    out += ["mul_channel", "add_width", "div_scalar", "rsub_scalar", "rpow_scalar"]
    for op in (0, 2, 4, 7, 16, 18, 20):
        f.layer("UnaryOp", f"unary{op}", [next(d)], [f"unary{op}"], f"0={op}")
        out.append(f"unary{op}")
    f.layer("Scale", "scale_w", [next(d)], ["scale_w"], "0=3 1=1")
    f.raw(6)
    f.layer("Scale", "scale_blob", [next(d), "gavg_b"], ["scale_blob"], "0=-233")
    f.layer("BatchNorm", "bn", [next(d)], ["bn"], "0=3 1=1.000000e-05")
    f.raw(3, offset=1.0)
    f.raw(3)
    f.raw(3, offset=2.0, scale=0.1)
    f.raw(3)
    out += ["scale_w", "scale_blob", "bn"]
    f.layer("PReLU", "prelu", [next(d)], ["prelu"], "0=3")
    f.raw(3)
    out.append("prelu")
    activations = [
        ("ReLU", "0=1.000000e-01"), ("Sigmoid", ""), ("Clip", "0=-2.0e-01 1=4.0e-01"),
        ("HardSigmoid", ""), ("HardSwish", "0=1.6e-01 1=5.0e-01"), ("ELU", "0=3.0e-01"),
        ("Swish", ""), ("Mish", ""), ("TanH", ""), ("AbsVal", ""), ("Dropout", "0=5.0e-01"),
    ]  # fmt: skip
    for kind, params in activations:  # each on its own copy of the input
        f.layer(kind, kind.lower(), [next(d)], [kind.lower()], params)
        out.append(kind.lower())
    return f, out


def _layer_zoo_more() -> tuple[NcnnFile, list[str]]:
    """Resizing and reshaping layers, on a 3x8x10 input."""
    f = NcnnFile(seed=2)
    out: list[str] = []
    copies = [f"e{i}" for i in range(20)]
    f.layer("Input", "in", [], ["input2"], "0=10 1=8 2=3")
    _own_copy(f, "input2", "x")
    f.layer("Split", "split2", ["x"], copies)
    e = iter(copies)
    for name, params in [
        ("near2", "0=1 1=2.0 2=2.0"),
        ("bilinear_frac", "0=2 1=1.5 2=7.5e-01"),
        ("bicubic_size", "0=3 3=20 4=12"),
        ("bilinear_align", "0=2 1=2.0 2=2.0 6=1"),
        ("near_frac", "0=1 1=1.5 2=2.5"),
    ]:
        f.layer("Interp", name, [next(e)], [name], params)
        out.append(name)
    f.layer("Reorg", "half", [next(e)], ["half"], "0=2")
    f.layer("Interp", "interp_ref", [next(e), "half"], ["interp_ref"], "0=2 5=1")
    f.layer("Convolution", "c12", [next(e)], ["c12"], "0=12 1=1 6=36")
    f.tagged(36)
    f.layer("Split", "c12_split", ["c12"], ["c12a", "c12b"])
    f.layer("PixelShuffle", "shuffle0", ["c12a"], ["shuffle0"], "0=2")
    f.layer("PixelShuffle", "shuffle1", ["c12b"], ["shuffle1"], "0=2 1=1")
    f.layer("Reorg", "reorg0", [next(e)], ["reorg0"], "0=2")
    f.layer("Reorg", "reorg1", [next(e)], ["reorg1"], "0=2 1=1")
    f.layer("Padding", "pad_reflect", [next(e)], ["pad_reflect"], "0=1 1=2 2=3 3=0 4=2")
    f.layer("Padding", "pad_edge", [next(e)], ["pad_edge"], "0=2 1=0 2=1 3=3 4=1")
    f.layer("Padding", "pad_const", [next(e)], ["pad_const"], "0=1 1=1 2=2 3=2 5=7.0e-01")
    f.layer("Reshape", "reshape_chw", [next(e)], ["reshape_chw"], "0=8 1=10 2=3")
    f.layer("Reshape", "reshape_vec", [next(e)], ["reshape_vec"], "0=-1")
    f.layer("Permute", "permute3", [next(e)], ["permute3"], "0=3")
    f.layer("Permute", "permute4", [next(e)], ["permute4"], "0=4")
    f.layer("Flatten", "flatten", [next(e)], ["flatten"])
    out += ["interp_ref", "shuffle0", "shuffle1", "reorg0", "reorg1", "pad_reflect",
            "pad_edge", "pad_const", "reshape_chw", "reshape_vec", "permute3", "permute4",
            "flatten"]  # fmt: skip
    return f, out


@pytest.mark.parametrize("zoo", ["features", "shapes"])
def test_every_layer_form_matches_the_ncnn_runtime(tmp_path: Path, zoo: str) -> None:
    f, names = _layer_zoo() if zoo == "features" else _layer_zoo_more()
    param, weights = f.save(tmp_path / zoo)
    rng = np.random.default_rng(7)
    shape = (3, 16, 16) if zoo == "features" else (3, 8, 10)
    x = rng.random(shape, dtype=np.float32) * 2 - 0.5
    graph = NcnnGraph(read_ncnn(param, weights), zoo)
    want = run_ncnn(param, weights, {graph.input_blob: x}, names)
    with torch.inference_mode():
        got = graph.run(torch.from_numpy(x)[None], names)
    bad = []
    for name in names:
        mine = got[name][0].numpy()
        if mine.shape != want[name].shape:
            bad.append(f"{name}: shape {mine.shape} != ncnn {want[name].shape}")
        elif not np.allclose(mine, want[name], atol=TOLERANCE, rtol=TOLERANCE):
            bad.append(f"{name}: max difference {np.abs(mine - want[name]).max():.3g}")
    assert not bad, "; ".join(bad)


# --------------------------------------------------------------------------- hostile files


def _write(tmp_path: Path, name: str, body: str, weights: bytes = b"") -> tuple[Path, Path]:
    """``body``: layer lines, optionally after a ``<layers> <blobs>`` header line."""
    lines = body.strip().splitlines()
    if len(lines[0].split()) == 2:
        header, layers = lines[0], lines[1:]
    else:
        blobs = {t for line in lines for t in line.split()[4:] if "=" not in t}
        header, layers = f"{len(lines)} {len(blobs)}", lines
    param = tmp_path / f"{name}.param"
    param.write_text("7767517\n" + header + "\n" + "\n".join(layers) + "\n")
    (tmp_path / f"{name}.bin").write_bytes(weights)
    return param, tmp_path / f"{name}.bin"


HOSTILE = {
    "self_split": ("Input in 0 1 data\nSplit sp 1 1 a a", r"'sp'.*its own output"),
    "cycle": (
        "Input in 0 1 data\nSplit s1 1 1 b a\nSplit s2 1 1 a b",
        r"'s1'.*reads blob 'b' before layer 's2'",
    ),
    "undefined_blob": ("Input in 0 1 data\nReLU r 1 1 nothing out", r"'r'.*no layer writes"),
    "written_twice": (
        "Input in 0 1 data\nReLU r1 1 1 data x\nReLU r2 1 1 data x",
        r"'x' is written by layer 'r1' and again by layer 'r2'",
    ),
    "unknown_type": ("Input in 0 1 data\nFancy f 1 1 data out", r"unsupported.*'Fancy'"),
    "unknown_param": ("Input in 0 1 data\nReLU r 1 1 data out 7=1", r"'r' \(ReLU\).*id\(s\) 7"),
    "string_param": ("Input in 0 1 data\nReLU r 1 1 data out 0=abc", r"'r'.*not a number"),
    "huge_header": ("99999999 1\nInput in 0 1 data", r"declares 99999999 layers"),
    "huge_blob_count": ("Input in 0 1 data\nConcat c 5000 1 data out", r"5000 blobs"),
    "huge_array": (
        "Input in 0 1 data\nEltwise e 1 1 data out -23301=1000000000,1.0",
        r"1000000000 values",
    ),
    "huge_kernel": (
        "Input in 0 1 data\nConvolution c 1 1 data out 0=3 1=100000 6=27",
        r"'c'.*parameter 1 = 100000 is outside",
    ),
    "huge_channels": (
        "Input in 0 1 data\nConvolution c 1 1 data out 0=100000000 1=3 6=27",
        r"parameter 0 = 100000000 is outside",
    ),
    "huge_weights": (
        "Input in 0 1 data\nConvolution c 1 1 data out 0=3 1=3 6=2000000000",
        r"shorter than the weights",
    ),
    "huge_interp": (
        "Input in 0 1 data\nInterp i 1 1 data out 0=1 1=1000000.0 2=1000000.0",
        r"'i'.*outside",
    ),
    "nan_param": ("Input in 0 1 data\nReLU r 1 1 data out 0=nan", r"'r'.*0='nan' is not a number"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_param_is_one_line_error(tmp_path: Path, case: str) -> None:
    body, message = HOSTILE[case]
    weights = b"\0" * 4 + b"\0" * 108 if "6=27" in body else b"\0" * 64
    param, weights = _write(tmp_path, case, body, weights if "Convolution" in body else b"")
    started = time.monotonic()
    with pytest.raises(BadInputError, match=message) as info:
        load_ncnn_file(param, weights)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 5


def test_bin_shorter_and_longer_than_declared(tmp_path: Path) -> None:
    body = "Input in 0 1 data\nConvolution c 1 1 data out 0=3 1=3 5=1 6=81"
    full = (b"\0" * 4) + np.ones(81, "<f4").tobytes() + np.ones(3, "<f4").tobytes()
    param, weights = _write(tmp_path, "conv", body, full[:-4])
    with pytest.raises(BadInputError, match=r"conv\.bin.*shorter than the weights"):
        read_ncnn(param, weights)
    weights.write_bytes(full + b"\0" * 5000)
    with pytest.raises(BadInputError, match=r"conv\.bin.*does not belong"):
        read_ncnn(param, weights)
    weights.write_bytes(full)
    assert read_ncnn(param, weights).layers[1].weights["bias"].tolist() == [1.0, 1.0, 1.0]


def test_implausible_graphs_are_refused_before_running(tmp_path: Path) -> None:
    # parses and runs, but upscales x4096: refused by the probe, without allocating it
    body = (
        "Input in 0 1 data\nInterp a 1 1 data b 0=1 1=64.0 2=64.0\n"
        "Interp c 1 1 b out 0=1 1=64.0 2=64.0"
    )
    param, weights = _write(tmp_path, "x4096", body)
    with pytest.raises(BadInputError, match=r"x4096.*not an upscale by 1 to 16"):
        probe_graph(NcnnGraph(read_ncnn(param, weights), param.name))
    # a shape error inside the graph: one line naming the layer
    body = "Input in 0 1 data\nInnerProduct fc 1 1 data out 0=2 2=10"
    param, weights = _write(tmp_path, "fc", body, b"\0" * 4 + b"\0" * 40)
    with pytest.raises(BadInputError, match=r"'fc' \(InnerProduct\): expects 5 values"):
        load_ncnn_file(param, weights)


def test_cycles_never_hang_the_cli(tmp_path: Path, photos) -> None:
    """Today's reader looped forever on these; the command must fail at once, exit 2."""
    for case in ("self_split", "cycle"):
        body, _ = HOSTILE[case]
        param, _weights = _write(tmp_path, case, body)
        target = tmp_path / f"{case}.png"
        done = subprocess.run(
            [sys.executable, "-m", "srgan", "upscale", str(photos / "0.png"), str(target),
             "-m", str(param), "-q"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "cycle" in done.stderr
        assert not target.exists()


def test_structure_only_parse_rejects_cycles_too(tmp_path: Path) -> None:
    param, _ = _write(tmp_path, "cycle", HOSTILE["cycle"][0])
    with pytest.raises(BadInputError, match="cycle"):
        parse_param(param)


def test_padded_squeeze_excitation_is_tiled_close_to_whole(tmp_path: Path) -> None:
    """A user's SE network with padded convolutions: windows are not exact parts of the
    whole image, so overlapping windows give close (not equal) statistics, still much
    closer than each tile's own."""
    from srgan.imaging.io import Image, ImageMeta
    from srgan.inference.upscaler import UpscaleOptions, upscale_pixels
    from srgan.zoo.global_stats import statistics_are_exact

    f = NcnnFile(seed=3)
    f.layer("Input", "in", [], ["data"])
    f.layer("Convolution", "c1", ["data"], ["f"], "0=8 1=3 4=1 5=1 6=216 9=1")
    f.tagged(216)
    f.raw(8)
    f.layer("Split", "sp", ["f"], ["f1", "f2"])
    f.layer("Pooling", "gap", ["f2"], ["g"], "0=1 4=1")
    f.layer("InnerProduct", "fc", ["g"], ["w"], "0=8 1=1 2=64 9=4")
    f.tagged(64, scale=2.0)
    f.raw(8)
    f.layer("BinaryOp", "mul", ["f1", "w"], ["h"], "0=2")
    f.layer("Convolution", "c2", ["h"], ["out"], "0=3 1=3 4=1 5=1 6=216")
    f.tagged(216)
    f.raw(3, offset=0.5)
    param, weights = f.save(tmp_path / "se")
    model = load_ncnn_file(param, weights)
    assert model.descriptor.global_statistics and not statistics_are_exact(model.module.graph)
    skimage_data = pytest.importorskip("skimage.data")
    image = Image(skimage_data.coffee()[::4, ::4][:, :140].copy(), ImageMeta(bit_depth=8))
    whole = upscale_pixels(model, image, UpscaleOptions(tile=0)).astype(int)
    tiled = upscale_pixels(model, image, UpscaleOptions(tile=32)).astype(int)
    graph = model.module.graph
    pools, graph.global_pools = graph.global_pools, ()
    try:
        naive = upscale_pixels(model, image, UpscaleOptions(tile=32)).astype(int)
    finally:
        graph.global_pools = pools
    assert np.abs(tiled - whole).max() <= 2
    assert np.abs(naive - whole).max() > 2 * max(1, np.abs(tiled - whole).max())
