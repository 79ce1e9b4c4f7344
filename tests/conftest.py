"""Session-wide test settings and the in-process CLI fixture."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from srgan.cli.main import run


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Converted weights go to a temporary cache, never the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("srgan-cache")
    previous = os.environ.get("SRGAN_CACHE")
    os.environ["SRGAN_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("SRGAN_CACHE", None)
    else:
        os.environ["SRGAN_CACHE"] = previous


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd) -> Iterator[Callable[..., Result]]:
    """Run the CLI in this process (fast) exactly as the console script does."""

    def invoke(*args: object, check: bool = True) -> Result:
        capfd.readouterr()
        try:
            run([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capfd.readouterr()
        if check and code != 0:
            raise AssertionError(f"srgan {args} failed ({code}):\n{err}")
        return Result(code, out, err)

    yield invoke
    # The CLI configures the "srgan" logger for the terminal; give it back to pytest.
    logger = logging.getLogger("srgan")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Three 64x64 photo crops (astronaut, coffee, chelsea): a tiny training set."""
    import numpy as np
    from skimage import data

    from srgan.imaging import Image, ImageMeta, write_image

    folder = tmp_path_factory.mktemp("photos")
    for index, picture in enumerate((data.astronaut(), data.coffee(), data.chelsea())):
        crop = np.ascontiguousarray(picture[100:164, 100:164])
        write_image(folder / f"{index}.png", Image(crop, ImageMeta()))
    return folder


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Four training and two validation clips of 4 frames, 36x36 pixels (panning over
    scikit-image photos)."""
    import numpy as np
    from skimage import data

    from srgan.imaging import Image, ImageMeta, write_image
    from srgan.training.data.synthetic_clips import ClipSettings, make_clips

    root = tmp_path_factory.mktemp("vsr")
    for index, picture in enumerate((data.astronaut(), data.coffee(), data.chelsea())):
        crop = np.ascontiguousarray(picture[100:220, 100:220])
        write_image(root / "photos" / f"{index}.png", Image(crop, ImageMeta()))
    settings = ClipSettings(frames=4, size=36, clips_per_photo=2, shrink=1, val_fraction=0.34)
    make_clips(root / "photos", root / "clips", settings)
    return root / "clips"


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from threads, and lose a lot on a busy machine; one
    thread also makes runs in this process match runs in a child process bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
