"""Hostile and malformed inputs against the CLI: build a corpus, run srgan on each file,
count the outcomes.

The corpus is built in a temporary folder (nothing is kept): valid images of every
layout (8/16-bit, gray, alpha, palette, CMYK, EXIF orientations), each format truncated
and with flipped bytes, decompression bombs, odd headers (zero sides, bad depths, IFD
loops, 5 samples per pixel, float TIFFs), wrong extensions, empty files, named pipes,
devices behind symlinks, symlink loops, odd names (control characters, bytes that are not
UTF-8, 255 bytes), and videos (valid, truncated, corrupt, audio only, a FIFO).

Each case runs `srgan upscale FILE OUT` (and for videos `srgan video FILE OUT`) in a fresh
process with a timeout and ``SRGAN_MAX_MEMORY`` set; then the whole image corpus runs
once as a folder through `srgan batch-process ... --report`. Every run is classified:

- ``ok``: exit 0 and an output that decodes; ``ok, bad output``: exit 0 but it does not;
- ``refused (exit 2, one line)``, ``failed (exit 1, one line)``;
- ``multi-line error``, ``traceback``, ``other exit code``, ``timeout (hang)``;

and flagged when it left a partial output (a temporary file, or an output despite a
failure) or its peak RSS (wait4) passed ``--rss-limit``.

    python benchmarks/fuzz_files.py [--jobs 2] [--timeout 60] [--seed 0] [--list]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' builders

from tests.hostile_files import (
    gif_canvas,
    jpeg_header_says,
    png_chunk,
    tiff_strips_on_one_block,
    zero_png,
)

from srgan.imaging.io import Image, ImageMeta, read_image, write_image
from srgan.inference.devices import cpu_model_name

# Small enough that the bombs which would fit a big machine's memory (and then run for
# hours, in bounded memory, as a legitimate gigapixel job) are refused here.
MEMORY_LIMIT = "256M"
SRGAN = [sys.executable, "-m", "srgan"]
IMAGE_MODEL = "anime-video"  # ONNX Runtime on the CPU: no PyTorch import, quick starts


@dataclass
class Case:
    name: str
    path: Path
    kind: str = "image"  # "image" or "video"
    args: list[str] = field(default_factory=list)  # extra CLI arguments
    output_ext: str = ".png"


@dataclass
class Run:
    case: str
    outcome: str
    partial: bool
    rss_mb: float
    seconds: float
    detail: str


# ----------------------------------------------------------------------------- corpus


def _pixels(shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _save_pil(path: Path, array: np.ndarray, mode: str | None = None, **options) -> Path:
    image = PILImage.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, **options)
    return path


def valid_images(folder: Path) -> list[Path]:
    out = []
    for channels in (1, 2, 3, 4):
        shape = (20, 14) if channels == 1 else (20, 14, channels)
        for dtype, tag in ((np.uint8, "8"), (np.uint16, "16")):
            pixels = _pixels(shape, dtype, channels)
            out.append(folder / f"png{tag}_{channels}ch.png")
            write_image(out[-1], Image(pixels.reshape(20, 14, channels), ImageMeta()))
            out.append(folder / f"tif{tag}_{channels}ch.tif")
            tifffile.imwrite(
                out[-1],
                pixels,
                photometric="minisblack" if channels < 3 else "rgb",
                extrasamples=("unassalpha",) if channels in (2, 4) else None,
            )
    rgb = _pixels((20, 14, 3))
    out.append(_save_pil(folder / "jpeg_rgb.jpg", rgb, quality=90))
    out.append(_save_pil(folder / "jpeg_gray.jpg", rgb, "L"))
    out.append(_save_pil(folder / "jpeg_cmyk.jpg", rgb, "CMYK"))
    out.append(_save_pil(folder / "webp_rgb.webp", rgb, lossless=True))
    out.append(_save_pil(folder / "webp_rgba.webp", _pixels((20, 14, 4)), quality=80))
    out.append(_save_pil(folder / "bmp_rgb.bmp", rgb))
    out.append(_save_pil(folder / "palette.png", rgb, "P"))
    palette = PILImage.fromarray(rgb).convert("P")
    palette.info["transparency"] = 0
    palette.save(folder / "palette_trns.png", transparency=0)
    out.append(folder / "palette_trns.png")
    out.append(_save_pil(folder / "bilevel.png", rgb, "1"))
    out.append(_save_pil(folder / "interlaced.png", rgb, None, optimize=False))
    frames = [PILImage.fromarray(_pixels((20, 14, 3), seed=s)) for s in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    out.append(folder / "animated.gif")
    tifffile.imwrite(folder / "multipage.tif", np.stack([rgb, rgb]), photometric="rgb")
    out.append(folder / "multipage.tif")
    tifffile.imwrite(folder / "tiled.tif", _pixels((40, 40, 3)), photometric="rgb", tile=(16, 16))
    out.append(folder / "tiled.tif")
    tifffile.imwrite(folder / "float.tif", np.random.default_rng(0).random((20, 14), np.float32))
    out.append(folder / "float.tif")
    tifffile.imwrite(folder / "big_endian.tif", _pixels((20, 14), np.uint16), byteorder=">")
    out.append(folder / "big_endian.tif")
    tifffile.imwrite(folder / "deflate16.tif", _pixels((20, 14, 3), np.uint16), compression="zlib")
    out.append(folder / "deflate16.tif")
    for orientation in (3, 6, 8):
        for ext in ("jpg", "png", "tif", "webp"):
            image = PILImage.fromarray(rgb)
            exif = image.getexif()
            exif[0x0112] = orientation
            path = folder / f"orient{orientation}.{ext}"
            image.save(path, exif=exif if ext == "tif" else exif.tobytes())
            out.append(path)
    return out


def truncated_and_corrupt(folder: Path, sources: list[Path], rng: random.Random) -> list[Path]:
    out = []
    for source in sources:
        data = source.read_bytes()
        for fraction in (0.1, 0.5, 0.9):
            path = folder / f"trunc{int(fraction * 100)}_{source.name}"
            path.write_bytes(data[: max(1, int(len(data) * fraction))])
            out.append(path)
        for variant in range(3):
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            path = folder / f"flip{variant}_{source.name}"
            path.write_bytes(bytes(flipped))
            out.append(path)
    return out


def bombs_and_odd_headers(folder: Path) -> list[Path]:
    out = [
        gif_canvas(folder / "bomb_canvas.gif"),
        jpeg_header_says(folder / "bomb_header.jpg"),
        jpeg_header_says(folder / "bomb_65535.jpg", 65535, 65535),
        zero_png(folder / "bomb_zero16k.png", 16384, 16384),
        zero_png(folder / "bomb_zero8k_rgb.png", 8192, 8192, colour_type=2),
        tiff_strips_on_one_block(folder / "bomb_strips.tif"),
    ]
    signature = b"\x89PNG\r\n\x1a\n"

    def png(name: str, width: int, height: int, depth: int, colour: int, body: bytes) -> None:
        ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
        chunks = png_chunk(b"IHDR", ihdr) + body + png_chunk(b"IEND", b"")
        (folder / name).write_bytes(signature + chunks)
        out.append(folder / name)

    idat = png_chunk(b"IDAT", zlib.compress(bytes(4 * 5)))
    png("zero_width.png", 0, 4, 8, 0, idat)
    png("bad_depth.png", 4, 4, 7, 0, idat)
    png("bad_colour.png", 4, 4, 8, 5, idat)
    png("huge_no_idat.png", 2**31 - 1, 2**31 - 1, 8, 2, b"")
    png("bad_crc.png", 4, 4, 8, 0, idat[:-1] + b"\x00")
    bmp = bytearray(_bmp_header(30000, 30000))
    (folder / "bomb_header.bmp").write_bytes(bytes(bmp))
    out.append(folder / "bomb_header.bmp")
    out.append(_tiff_ifd_loop(folder / "ifd_loop.tif"))
    tifffile.imwrite(
        folder / "five_samples.tif", _pixels((8, 8, 5)), photometric="minisblack", planarconfig=1
    )
    out.append(folder / "five_samples.tif")
    tifffile.imwrite(folder / "int32.tif", _pixels((8, 8), np.uint32))
    out.append(folder / "int32.tif")
    return out


def _bmp_header(width: int, height: int) -> bytes:
    row = (width * 3 + 3) // 4 * 4
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, row * height, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + row * height, 0, 0, 54) + info + bytes(64)


def _tiff_ifd_loop(path: Path) -> Path:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((4, 4), np.uint8))
    data = bytearray(buffer.getvalue())
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    struct.pack_into("<I", data, first + 2 + 12 * count, first)  # next IFD: itself
    path.write_bytes(bytes(data))
    return path


def wrong_kinds(folder: Path, png_source: Path) -> list[Path]:
    out = []
    (folder / "png_named.jpg").write_bytes(png_source.read_bytes())
    (folder / "text.png").write_text("hello, not an image\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "zip.png").write_bytes(b"PK\x03\x04" + bytes(40))
    (folder / "folder.png").mkdir()
    out += [folder / n for n in ("png_named.jpg", "text.png", "empty.png", "zip.png")]
    out.append(folder / "folder.png")
    os.mkfifo(folder / "fifo.png")
    out.append(folder / "fifo.png")
    for name, target in (
        ("zero.png", "/dev/zero"),
        ("null.png", "/dev/null"),
        ("urandom.png", "/dev/urandom"),
        ("dangling.png", "nowhere.png"),
        ("loop.png", "loop.png"),
    ):
        (folder / name).symlink_to(target)
        out.append(folder / name)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "socket.png"))
    sock.close()
    out.append(folder / "socket.png")
    return out


def odd_names(folder: Path, png_source: Path) -> list[Path]:
    data = png_source.read_bytes()
    names = [
        "ctrl\x1b[31mred\x07.png",
        "new\nline.png",
        "tab\tname.png",
        "rtl\u202egnp.png",
        "space name.png",
        "n" * 251 + ".png",
        "-dash.png",
    ]
    out = []
    for name in names:
        (folder / name).write_bytes(data)
        out.append(folder / name)
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # not UTF-8
    with open(raw, "wb") as stream:
        stream.write(data)
    out.append(Path(os.fsdecode(raw)))
    return out


def videos(folder: Path) -> list[Case]:
    from tests.videos import make_video

    good = make_video(folder / "good.mp4", frames=4, size=(32, 24), audio=None)
    data = good.read_bytes()
    cases = [Case("video valid", good, "video")]
    for fraction in (0.2, 0.5, 0.9):
        path = folder / f"trunc{int(fraction * 100)}.mp4"
        path.write_bytes(data[: int(len(data) * fraction)])
        cases.append(Case(f"video truncated {fraction:.0%}", path, "video"))
    rng = random.Random(1)
    for variant in range(3):
        flipped = bytearray(data)
        for _ in range(20):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        path = folder / f"flip{variant}.mp4"
        path.write_bytes(bytes(flipped))
        cases.append(Case(f"video flipped bytes {variant}", path, "video"))
    (folder / "empty.mp4").write_bytes(b"")
    cases.append(Case("video empty file", folder / "empty.mp4", "video"))
    (folder / "image.mp4").write_bytes((folder.parent / "images" / "png8_3ch.png").read_bytes())
    cases.append(Case("video: a PNG named .mp4", folder / "image.mp4", "video"))
    audio_only = make_video(folder / "audio_source.mp4", frames=4, size=(32, 24), audio="aac")
    cases.append(Case("video with audio", audio_only, "video"))
    os.mkfifo(folder / "fifo.mp4")
    cases.append(Case("video FIFO", folder / "fifo.mp4", "video"))
    (folder / "zero.mp4").symlink_to("/dev/zero")
    cases.append(Case("video /dev/zero", folder / "zero.mp4", "video"))
    return cases


def build_corpus(root: Path, seed: int) -> tuple[list[Case], Path]:
    images = root / "images"
    images.mkdir()
    rng = random.Random(seed)
    valid = valid_images(images)
    paths = list(valid)
    samples = [p for p in valid if p.name in _TRUNCATE]
    paths += truncated_and_corrupt(images, samples, rng)
    paths += bombs_and_odd_headers(images)
    paths += wrong_kinds(images, images / "png8_3ch.png")
    paths += odd_names(images, images / "png8_3ch.png")
    cases = [Case(os.fsencode(p.name).decode(errors="replace"), p) for p in paths]
    for name, ext in (("png8_3ch.png", ".webp"), ("png16_4ch.png", ".jpg")):
        cases.append(Case(f"{name} -> {ext}", images / name, output_ext=ext))
    cases.append(
        Case("wide -> webp (too wide)", zero_png(root / "wide.png", 4200, 2), output_ext=".webp")
    )
    video_folder = root / "videos"
    video_folder.mkdir()
    cases += videos(video_folder)
    return cases, images


_TRUNCATE = {
    "png8_3ch.png",
    "png16_4ch.png",
    "tif8_3ch.tif",
    "tif16_2ch.tif",
    "jpeg_rgb.jpg",
    "webp_rgba.webp",
    "bmp_rgb.bmp",
    "animated.gif",
    "deflate16.tif",
}


# ------------------------------------------------------------------------------- runs

_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_one(case: Case, out_root: Path, timeout: float, rss_limit_mb: float) -> Run:
    out_dir = out_root / f"{abs(hash(case.name)) % 10**8}_{case.kind}"
    out_dir.mkdir()
    if case.kind == "video":
        target = out_dir / "out.mp4"
        args = ["video", str(case.path), str(target), "-m", "bicubic", "--outscale", "2"]
    else:
        target = out_dir / f"out{case.output_ext}"
        args = ["upscale", str(case.path), str(target), "-m", IMAGE_MODEL, *case.args]
    rss_file = out_dir / ".rss"
    command = [sys.executable, "-c", _WRAPPER, str(rss_file), *SRGAN, *args]
    return _classify(case.name, command, target, out_dir, rss_file, timeout, rss_limit_mb, case)


def _classify(
    name: str,
    command: list[str],
    target: Path | None,
    out_dir: Path,
    rss_file: Path,
    timeout: float,
    rss_limit_mb: float,
    case: Case | None,
) -> Run:
    env = {**os.environ, "SRGAN_MAX_MEMORY": MEMORY_LIMIT}
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        _, stderr_bytes = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        _, stderr_bytes = process.communicate()
        timed_out = True
    seconds = time.perf_counter() - started
    stderr = stderr_bytes.decode(errors="replace")
    rss = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
    rss_file.unlink(missing_ok=True)
    lines = [line for line in stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if not line.startswith("srgan: warning")]
    code = process.returncode
    if timed_out:
        outcome = "timeout (hang)"
    elif "Traceback" in stderr:
        outcome = "traceback"
    elif code not in (0, 1, 2):
        outcome = f"other exit code ({code})"
    elif code == 0:
        outcome = "ok" if target is None or _valid(target, case) else "ok, bad output"
    elif len(error_lines) != 1 and case is not None:
        outcome = "multi-line error"
    else:
        outcome = "refused (exit 2, one line)" if code == 2 else "failed (exit 1, one line)"
    # A process killed at the timeout cannot remove its hidden temporary file; any other
    # run must leave either its complete output or nothing.
    leftovers = [p for p in out_dir.rglob("*") if p.name.endswith(".part")]
    failed_with_output = code != 0 and target is not None and target.exists()
    partial = failed_with_output or (bool(leftovers) and not timed_out)
    detail = error_lines[-1][:160] if error_lines else ""
    if rss > rss_limit_mb:
        detail = f"[RSS {rss:.0f} MB] {detail}"
    return Run(name, outcome, partial, rss, seconds, detail)


def _valid(target: Path, case: Case | None) -> bool:
    if not target.exists():
        return False
    try:
        if case is not None and case.kind == "video":
            import av

            with av.open(str(target)) as container:
                return sum(1 for _ in container.decode(video=0)) > 0
        read_image(target, None)
        return True
    except Exception:
        return False


def run_batch(images: Path, out_root: Path, timeout: float, rss_limit_mb: float) -> Run:
    out_dir = out_root / "batch"
    out_dir.mkdir()
    report = out_root / "batch_report.json"
    rss_file = out_root / ".batch_rss"
    args = ["batch-process", str(images), str(out_dir), "-m", IMAGE_MODEL, "--report", str(report)]
    command = [sys.executable, "-c", _WRAPPER, str(rss_file), *SRGAN, *args]
    run = _classify("batch-process of the image corpus", command, None, out_dir, rss_file,
                    timeout * 10, rss_limit_mb, None)  # fmt: skip
    if run.outcome == "ok" or run.outcome.startswith("failed"):
        counts = json.loads(report.read_text())["counts"] if report.exists() else None
        run.detail = f"report {counts}" if counts else "NO REPORT WRITTEN"
        if counts is None:
            run.outcome = "failed, no report"
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--rss-limit", type=float, default=1400.0, help="MB; flagged above")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="print every run, not only faults")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-") as folder:
        root = Path(folder)
        cases, images = build_corpus(root, args.seed)
        out_root = root / "out"
        out_root.mkdir()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            runs: list[Run] = list(
                pool.map(lambda c: run_one(c, out_root, args.timeout, args.rss_limit), cases)
            )
        runs.append(run_batch(images, out_root, args.timeout, args.rss_limit))
        seconds = time.perf_counter() - started
    _print(runs, args.list, args.rss_limit)
    print(f"\n{len(runs)} runs in {seconds:.0f} s; CPU {cpu_model_name()}, load average {load:.1f}")


def _print(runs: list[Run], everything: bool, rss_limit: float) -> None:
    counts = Counter(run.outcome for run in runs)
    print("| outcome | runs |")
    print("|---|---:|")
    for outcome, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"| {outcome} | {count} |")
    partial = sum(run.partial for run in runs)
    heavy = sum(run.rss_mb > rss_limit for run in runs)
    print(f"| partial output left behind | {partial} |")
    print(f"| peak RSS over {rss_limit:.0f} MB | {heavy} |")
    bad = {"ok", "refused (exit 2, one line)", "failed (exit 1, one line)"}
    shown: Callable[[Run], bool] = (
        (lambda r: True) if everything else (lambda r: r.outcome not in bad or r.partial)
    )
    listed = [run for run in runs if shown(run) or run.rss_mb > rss_limit]
    if listed:
        print()
    for run in listed:
        flag = " [partial output]" if run.partial else ""
        name = run.case.encode("unicode_escape", "backslashreplace").decode()[:60]
        print(f"{run.outcome:28} {run.rss_mb:6.0f} MB {run.seconds:5.1f} s  {name}: "
              f"{run.detail}{flag}")  # fmt: skip


if __name__ == "__main__":
    main()
