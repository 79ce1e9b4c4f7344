"""What clients send and receive: validated request options and response bodies."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from srgan.defaults import DEFAULT_TILE_PAD

OutputFormat = Literal["png", "jpeg", "webp"]
JobState = Literal["queued", "running", "done", "failed"]

MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS: dict[str, str] = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class UpscaleParams(BaseModel):
    """How to upscale one image; the flags of `srgan upscale`, as form fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    outscale: float | None = Field(None, gt=0, le=16)
    tile: int | None = Field(None, ge=0)  # None or 0: the server's largest tile
    tile_pad: int = Field(DEFAULT_TILE_PAD, ge=0, le=128)
    alpha_mode: Literal["model", "bicubic"] = "model"
    format: OutputFormat = "png"
    quality: int = Field(95, ge=1, le=100)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def cache_key(self, image_sha256: str, engine: str) -> str:
        """Same image bytes + same options + same engine = same result."""
        fields = {"image": image_sha256, "engine": engine, **self.model_dump()}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class InputInfo(BaseModel):
    width: int
    height: int


class JobInfo(BaseModel):
    """A job as `GET /v1/jobs/{id}` shows it. Times are Unix seconds."""

    id: str
    state: JobState
    progress: float = Field(description="0 to 1")
    error: str | None = None
    attempts: int
    params: UpscaleParams
    input: InputInfo
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = Field(None, description="when the job and its result go")
    result_url: str | None = None


class ModelInfo(BaseModel):
    name: str
    architecture: str
    scale: int | str
    parameters: int
    description: str
    default: bool


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    keys_required: bool
    workers: int
    queue_depth: int


class ErrorBody(BaseModel):
    detail: str


@dataclass(frozen=True)
class Refusal:
    """An error answer as a value: what the routes return instead of raising, where the
    frames that would raise hold an upload. An exception's traceback keeps those frames
    (and so the body, up to `max_body_bytes`) alive until the cyclic garbage collector
    runs, which may be many requests later."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
