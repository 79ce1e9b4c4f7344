"""Defaults shared by the command line, the API and the layers below (no heavy imports)."""

DEFAULT_MODEL = "natural"
DEFAULT_TILE_PAD = 16
DEFAULT_MAX_PIXELS = 16384 * 16384
"""Largest input accepted by default (268 megapixels); 0 or None disables the check."""
DEFAULT_PNG_LEVEL = 3
"""zlib level for PNG output: 3 writes about 3x faster than 6 for files 5-10% larger."""
DEFAULT_VSR_WINDOW = 5
"""Frames per temporal window when a video super-resolution model runs on a video."""
DEFAULT_BICUBIC_SCALE = 4.0  # `bicubic` without --scale or --outscale upscales x4
DEFAULT_REUSE_THRESHOLD = 6.0
"""`srgan video`: a frame (or tile) whose picture changed by at most this many 8-bit levels
after a 3x3 blur reuses its upscaled output; measured in benchmarks/video_speed.py."""
