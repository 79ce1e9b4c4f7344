"""Progress text shared by the trainers and their commands (no heavy imports)."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """`75` -> `1:15`, `3725` -> `1:02:05`."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
