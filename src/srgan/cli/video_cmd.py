"""`srgan video`: upscale a video, keeping its sound, subtitles and timing.

PyAV and the video pipeline are imported inside the command, so that `srgan --help` and
the other commands start without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from srgan.cli import console
from srgan.cli.common import (
    Backend,
    Bf16,
    Conservative,
    Denoise,
    Device,
    Half,
    OnnxLayout,
    OnnxOrder,
    OnnxRange,
    Precision,
    Tile,
    model_variant,
    onnx_hints,
    precision_from,
    warn_int8_quality,
)
from srgan.defaults import DEFAULT_REUSE_THRESHOLD, DEFAULT_VSR_WINDOW
from srgan.errors import BadInputError, SrganError
from srgan.inference.backends import open_model
from srgan.inference.batch import failure_message
from srgan.inference.upscaler import UpscaleOptions, make_runner, resolve_device

if TYPE_CHECKING:
    from srgan.inference.tiling import Forward
    from srgan.inference.upscaler import AnyModel
    from srgan.zoo.onnx_generic import OnnxHints

log = logging.getLogger("srgan.cli")

DEFAULT_VIDEO_MODEL = "anime-video"


def video(
    source: Annotated[Path, typer.Argument(metavar="IN", help="A video file.", readable=False)],
    target: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help="Output video: .mp4, .m4v, .mov, .mkv or .webm (a folder with --preview).",
            readable=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model name (see `srgan models`) or weights file."),
    ] = DEFAULT_VIDEO_MODEL,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale",
            "-s",
            help="Model scale: picks the file of Real-CUGAN / waifu2x (as upscale).",
        ),
    ] = None,
    denoise: Denoise = None,
    conservative: Conservative = False,
    outscale: Annotated[
        float | None,
        typer.Option("--outscale", help="Final scale, any factor: model, then MATLAB bicubic."),
    ] = None,
    tile: Tile = None,
    device: Device = "auto",
    backend: Backend = "auto",
    precision: Precision = "fp32",
    half: Half = False,
    bf16: Bf16 = False,
    onnx_layout: OnnxLayout = None,
    onnx_range: OnnxRange = None,
    onnx_order: OnnxOrder = None,
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help="h264, h265, vp9, av1 or prores; default: the input's where the output "
            "can hold it, else h264.",
        ),
    ] = None,
    crf: Annotated[
        int | None,
        typer.Option(
            "--crf", min=0, help="Constant quality, lower is better (h264 18, h265 20, vp9/av1 30)."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Speed/size trade-off: x264/x265 names (medium), vp9 cpu-used 0-8, "
            "av1 0-13, prores profile (hq).",
        ),
    ] = None,
    pix_fmt: Annotated[
        str | None,
        typer.Option("--pix-fmt", help="Pixel format, e.g. yuv420p; default: the input's."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start here: seconds or HH:MM:SS(.ms)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Stop here: seconds or HH:MM:SS(.ms)."),
    ] = None,
    fps: Annotated[
        str | None,
        typer.Option(
            "--fps",
            help="Constant output frame rate (e.g. 30 or 30000/1001): frames repeated "
            "or dropped, timing kept.",
        ),
    ] = None,
    preview: Annotated[
        int | None,
        typer.Option(
            "--preview",
            min=1,
            help="Write N evenly spaced upscaled frames as PNG into OUT (a folder) and stop.",
        ),
    ] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Leave the audio out.")] = False,
    window: Annotated[
        int,
        typer.Option(
            "--window",
            min=1,
            help="Video SR models only: frames per temporal window (overlapping windows; "
            "longer = more context, slower).",
        ),
    ] = DEFAULT_VSR_WINDOW,
    reuse_threshold: Annotated[
        float | None,
        typer.Option(
            "--reuse-threshold",
            help="Reuse the upscaled frame, or the tiles of it, whose picture changed by at "
            f"most this many 8-bit levels (after a 3x3 blur); default {DEFAULT_REUSE_THRESHOLD:g}, "
            "0 = exact repeats only. See docs/VIDEO.md.",
        ),
    ] = None,
    no_reuse: Annotated[
        bool, typer.Option("--no-reuse", help="Upscale every frame in full, reusing nothing.")
    ] = False,
) -> None:
    """Upscale a video frame by frame, streaming in bounded memory.

    A video super-resolution model (a BidirectionalRecurrentVSR checkpoint) runs on overlapping
    windows of --window frames instead, so each frame is upscaled with its neighbours.

    Audio and subtitles are copied packet for packet (re-encoded, with a warning, only where
    the output container cannot hold them); frame timestamps, rotation and colour tags are
    kept. The output is written to a temporary file and renamed when complete.

    Frames that repeat the one before (anime drawn on twos, still shots) are not upscaled
    again, and where only part of a frame changed only that part is: --reuse-threshold
    tunes what counts as unchanged, --no-reuse turns it off.
    """
    from srgan.inference import video as pipeline
    from srgan.inference.video_probe import TimeRange, parse_rate, parse_time

    time_range = TimeRange(
        parse_time(start) if start is not None else None,
        parse_time(end) if end is not None else None,
    )
    options = _upscale_options(tile, outscale, device, precision_from(precision, half, bf16))
    model = model_variant(model, scale, denoise, conservative)
    if no_reuse and reuse_threshold is not None:
        raise BadInputError("--no-reuse and --reuse-threshold contradict each other: give one")
    default = DEFAULT_REUSE_THRESHOLD if reuse_threshold is None else reuse_threshold
    reuse = None if no_reuse else default
    hints = onnx_hints(onnx_layout, onnx_range, onnx_order)
    try:
        if preview is not None:
            unused = {
                "--codec": codec,
                "--crf": crf,
                "--preset": preset,
                "--pix-fmt": pix_fmt,
                "--fps": fps,
                "--no-audio": no_audio or None,
                "--window": window if window != DEFAULT_VSR_WINDOW else None,
                "--reuse-threshold": reuse_threshold,
                "--no-reuse": no_reuse or None,
            }
            if given := [flag for flag, value in unused.items() if value is not None]:
                log.warning(f"--preview writes single PNG frames: {', '.join(given)} not used")
            preview_job = pipeline.plan_preview(source, target, preview, time_range)
            loaded, runner = _load(model, options, backend, hints, scale)
            with console.rate_progress(f"preview {source.name}", "frames/s") as progress:
                written = pipeline.preview_video(preview_job, loaded, options, progress, runner)
            console.note(f"video: {len(written)} preview frames in {target}")
            return
        video_options = pipeline.VideoOptions(
            codec=codec,
            crf=crf,
            preset=preset,
            pix_fmt=pix_fmt,
            time_range=time_range,
            fps=parse_rate(fps) if fps is not None else None,
            audio=not no_audio,
            window=window,
            reuse_threshold=reuse,
        )
        job = pipeline.plan_video(source, target, video_options)
        log.info(
            "%s: %dx%d %s, %s",
            source,
            job.probe.width,
            job.probe.height,
            job.probe.codec,
            job.probe.pix_fmt,
        )
        loaded, runner = _load(model, options, backend, hints, scale, pipeline.video_runner)
        with console.rate_progress(source.name) as progress:
            report = pipeline.upscale_video(job, loaded, options, progress, runner)
    except SrganError:
        raise
    except Exception as exc:  # disk full, an encoder's limit: name the file
        raise SrganError(failure_message(source, exc)) from exc
    for note in report.streams:
        log.info("%s", note)
    reused = ""
    if report.reuse is not None:
        log.info("frame reuse: %s", report.reuse.explain())
        reused = f"; {report.reuse.summary()}"
    console.note(
        f"video: {report.frames} frames, {report.width}x{report.height} {report.encoder}, "
        f"in {report.seconds:.1f} s ({report.fps:.2f} fps){reused} -> {target}"
    )


def _upscale_options(
    tile: int | None, outscale: float | None, device: str, precision: str
) -> UpscaleOptions:
    try:
        return UpscaleOptions(
            tile=tile,
            outscale=outscale,
            device=resolve_device(device),
            precision=precision,  # type: ignore[arg-type]
        )
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(str(exc)) from None


def _load(
    name: str,
    options: UpscaleOptions,
    backend: str,
    hints: OnnxHints,
    scale: float | None = None,
    runner: Callable[[AnyModel, UpscaleOptions], Forward] = make_runner,
) -> tuple[AnyModel, Forward]:
    loaded = open_model(name, scale, options.device, options.precision, backend, onnx=hints)
    log.info("model %s (%s), x%g", loaded.name, loaded.descriptor.architecture, loaded.scale)
    warn_int8_quality(loaded.name, options.precision)
    return loaded, runner(loaded, options)  # one runner for every frame
