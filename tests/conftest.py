"""Session-wide test settings."""

from __future__ import annotations

import os

import pytest


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
