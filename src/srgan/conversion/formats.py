"""Weight formats, told from file extensions."""

from __future__ import annotations

from pathlib import Path

from srgan.errors import BadInputError

FORMATS: dict[str, tuple[str, ...]] = {
    "pytorch": (".pth", ".pt", ".ckpt"),
    "safetensors": (".safetensors",),
    "onnx": (".onnx",),
    "ncnn": (".param",),
}
EXTENSION = {"pytorch": ".pth", "safetensors": ".safetensors", "onnx": ".onnx", "ncnn": ".param"}
RUNTIME = {"pytorch": "torch", "safetensors": "torch", "onnx": "onnxruntime", "ncnn": "ncnn"}
_NAMES = {
    "pth": "pytorch",
    "pt": "pytorch",
    "ckpt": "pytorch",
    "pytorch": "pytorch",
    "torch": "pytorch",
    "safetensors": "safetensors",
    "onnx": "onnx",
    "ncnn": "ncnn",
    "param": "ncnn",
}
_TENSORFLOW = (".h5", ".hdf5", ".keras", ".pb", ".tflite")
TENSORFLOW_ROUTE = (
    "TensorFlow and Keras models go through ONNX: `python -m tf2onnx.convert "
    "--saved-model DIR (or --keras FILE.h5) --output model.onnx --opset 17`, then give "
    "srgan the .onnx file"
)
MODEL_SUFFIXES = tuple(s for suffixes in FORMATS.values() for s in suffixes)


def format_of(path: Path) -> str:
    """The format of a model file from its extension, or a one-line BadInputError."""
    suffix = path.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    if suffix in _TENSORFLOW or (path.is_dir() and (path / "saved_model.pb").is_file()):
        raise BadInputError(f"{path}: {TENSORFLOW_ROUTE}")
    if suffix == ".bin":
        raise BadInputError(f"{path}: name the ncnn model by its .param (the .bin sits beside it)")
    known = ", ".join(MODEL_SUFFIXES)
    raise BadInputError(f"{path}: unknown model format {suffix or '(no extension)'!r} ({known})")


def format_named(text: str) -> str:
    """`--to` values: pth, pt, ckpt, safetensors, onnx, ncnn (or param)."""
    name = _NAMES.get(text.lower().lstrip("."))
    if name is None:
        raise BadInputError(f"--to {text!r}: use pth, safetensors, onnx or ncnn")
    return name


def ncnn_weights(param: Path) -> Path:
    return param.with_suffix(".bin")


def files_of(path: Path, fmt: str) -> list[Path]:
    """Every file a model in `fmt` at `path` consists of."""
    return [path, ncnn_weights(path)] if fmt == "ncnn" else [path]
