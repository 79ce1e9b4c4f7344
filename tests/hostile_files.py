"""Builders of hostile and malformed image files, small on disk, and a runner that measures
a command's peak memory. Used by tests/test_hostile_files.py and by the fuzz corpus of
benchmarks/fuzz_files.py.

Every builder writes its file itself from the format's specification (no sample files):
tiny files whose headers announce huge canvases (decompression bombs), TIFFs whose strips
all point at one block, and the like.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

SRGAN = [sys.executable, "-m", "srgan"]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def zero_png(path: Path, width: int, height: int, colour_type: int = 0, depth: int = 8) -> Path:
    """A valid PNG of all-zero pixels: every row is filter 0 and zeros, so a 16384x16384
    gray image is about 260 KB. The zlib stream is made row band by row band."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = bytes(1 + width * channels * depth // 8)
    compressor = zlib.compressobj(9)
    band = row * max(1, (1 << 22) // len(row))
    rows_per_band = len(band) // len(row)
    data = bytearray()
    for start in range(0, height, rows_per_band):
        count = min(rows_per_band, height - start)
        data += compressor.compress(band[: count * len(row)])
    data += compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    content = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", bytes(data))
    path.write_bytes(content + png_chunk(b"IEND", b""))
    return path


def gif_canvas(path: Path, width: int = 16384, height: int = 16384) -> Path:
    """A GIF of a few dozen bytes whose logical screen and only image are width x height,
    with one LZW code of data (the decoder fills the rest of the canvas)."""
    screen = struct.pack("<6sHHBBB", b"GIF89a", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"  # 2-colour global table
    descriptor = struct.pack("<BHHHHB", 0x2C, 0, 0, width, height, 0)
    image_data = b"\x02\x02\x44\x01\x00"  # LZW minimum code size 2, one tiny sub-block
    path.write_bytes(screen + palette + descriptor + image_data + b"\x3b")
    return path


def jpeg_header_says(path: Path, width: int = 16000, height: int = 16000) -> Path:
    """A tiny real JPEG whose SOF0 header is rewritten to announce width x height."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(buffer, "JPEG", quality=50)
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def tiff_strips_on_one_block(
    path: Path, width: int = 16384, height: int = 16384, rows_per_strip: int = 16
) -> Path:
    """A 16-bit RGB TIFF a few kB long whose strip offsets all point at one zlib block of
    `rows_per_strip` rows: it decodes to width x height x 3 x 2 bytes."""
    strips = -(-height // rows_per_strip)
    block = zlib.compress(bytes(rows_per_strip * width * 6), 9)
    header_size = 8
    # Layout: header, IFD, then the arrays and the block.
    count = 11
    ifd_size = 2 + count * 12 + 4
    arrays_at = header_size + ifd_size
    bits_at = arrays_at
    offsets_at = bits_at + 6
    counts_at = offsets_at + 4 * strips
    block_at = counts_at + 4 * strips

    def entry(tag: int, kind: int, number: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, number, value)

    entries = [
        entry(256, 4, 1, width),
        entry(257, 4, 1, height),
        entry(258, 3, 3, bits_at),
        entry(259, 3, 1, 8),  # deflate
        entry(262, 3, 1, 2),  # RGB
        entry(273, 4, strips, offsets_at),
        entry(277, 3, 1, 3),
        entry(278, 4, 1, rows_per_strip),
        entry(279, 4, strips, counts_at),
        entry(284, 3, 1, 1),
        entry(339, 3, 1, 1),
    ]
    assert len(entries) == count
    ifd = struct.pack("<H", count) + b"".join(entries) + struct.pack("<I", 0)
    body = struct.pack("<HHH", 16, 16, 16)
    body += struct.pack(f"<{strips}I", *([block_at] * strips))
    body += struct.pack(f"<{strips}I", *([len(block)] * strips))
    path.write_bytes(b"II*\x00" + struct.pack("<I", header_size) + ifd + body + block)
    return path


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    seconds: float
    timed_out: bool


def run_measured(
    command: list[str],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run a command in its own process group; on timeout the whole group is killed."""
    started = time.perf_counter()
    with open(os.devnull, "rb") as stdin:
        process = subprocess.Popen(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return Measured(
        process.returncode,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
        float("nan"),
        time.perf_counter() - started,
        timed_out,
    )


# Runs the command as its child and reports the child's own peak RSS (wait4's rusage).
_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(f"\\nPEAK_RSS_KIB={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_srgan(
    args: list[object],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measured:
    """`srgan ARGS` in a fresh process (so that a hang is a timeout, not a stuck test) with
    its own peak RSS measured."""
    command = [sys.executable, "-c", _WRAPPER, *SRGAN, *(str(a) for a in args)]
    result = run_measured(command, timeout, env, cwd)
    head, marker, tail = result.stderr.rpartition("\nPEAK_RSS_KIB=")
    if marker:
        result.peak_rss_mb = int(tail.split()[0]) / 1024
        result.stderr = head.rstrip("\n") + "\n" if head.strip() else ""
    return result
