"""Opening files the user names, without hanging and with one-line reasons.

Every path srgan reads on a user's behalf (an image, a video, a file found in a folder)
goes through `open_regular` or `check_regular`. Both refuse anything that is not a
regular file (a named pipe, a socket, a character or block device, a folder), following
symlinks, before any blocking open: a FIFO given as an image would otherwise block the
process forever, and ``/dev/zero`` behind a symlink would never end. Symlink loops,
missing files and permission problems become `BadInputError`s too.

`shown` makes a path (or any text) safe to echo on a terminal: control characters, and
bytes that are not valid UTF-8, are escaped.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from srgan.errors import BadInputError

__all__ = ["check_regular", "open_regular", "read_regular", "shown"]

try:
    import fcntl
except ImportError:  # Windows: no FIFOs to guard against there
    fcntl = None  # type: ignore[assignment]

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KINDS = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
)
_REASONS = {
    errno.ENOENT: "no such file",
    errno.ELOOP: "symlink loop (too many levels of symbolic links)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENXIO: "is a socket or a device without a reader",
}


def shown(text: object) -> str:
    """`text` (a path or a message) with control characters and undecodable bytes escaped,
    so that a file name cannot move the cursor, clear the screen or break a line."""
    out = []
    for char in str(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(repr(char)[1:-1] if char in "\t\n\r" else f"\\x{code:02x}")
        elif code in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


# Characters that reorder or hide text on a terminal (bidirectional overrides, zero width).
_INVISIBLE = frozenset(
    (0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF, *range(0x202A, 0x202F))
) | frozenset(range(0x2066, 0x206A))


def _refuse(path: Path, reason: str, what: str | None = None) -> BadInputError:
    return BadInputError(f"{shown(path)}: {reason}" + (f", expected {what}" if what else ""))


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def _check_mode(path: Path, mode: int, what: str) -> None:
    for test, reason in _KINDS:
        if test(mode):
            raise _refuse(path, reason, what)
    if not stat.S_ISREG(mode):
        raise _refuse(path, "is not a regular file", what)


def check_regular(path: str | os.PathLike[str], what: str = "a file") -> os.stat_result:
    """The `os.stat` of `path` (symlinks followed) if it is a regular file, else a
    one-line `BadInputError` naming what it is instead. Opens nothing."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise _refuse(path, "broken symlink (its target does not exist)") from None
        raise _refuse(path, _reason(exc)) from None
    _check_mode(path, info.st_mode, what)
    return info


def open_regular(path: str | os.PathLike[str], what: str = "a file") -> BinaryIO:
    """Open a regular file for reading, refusing every other kind of file first.

    The file is checked by `stat`, then opened with O_NONBLOCK (so that a FIFO swapped in
    meanwhile cannot block) and checked again on the open descriptor."""
    path = Path(path)
    check_regular(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refuse(path, _reason(exc)) from None
    try:
        _check_mode(path, os.fstat(fd).st_mode, what)
        if fcntl is not None and _NONBLOCK:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], what: str = "a file") -> bytes:
    """The whole content of a regular file (see `open_regular`)."""
    path = Path(path)
    with open_regular(path, what) as stream:
        try:
            return stream.read()
        except OSError as exc:
            raise _refuse(path, f"cannot read it ({_reason(exc)})") from None
