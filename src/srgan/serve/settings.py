"""The server's configuration: defaults, then a config file, then command-line flags,
validated once here (pydantic); everything below receives a typed `ServeSettings`."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srgan.config_files import invalid_config, read_config_file
from srgan.defaults import DEFAULT_MODEL, DEFAULT_PNG_LEVEL
from srgan.zoo.ncnn_families import FAMILIES, find_variant
from srgan.zoo.pretrained import PRETRAINED

# natural, anime, anime-video, the Real-CUGAN / waifu2x / RealSR families, bicubic; any
# family variant (anime-cugan-x3-denoise3) may be listed too
NAMED_MODELS = (*PRETRAINED, *FAMILIES, "bicubic")
MB = 1024 * 1024
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class RateLimit(BaseModel):
    """A token bucket per API key (per client address when keys are off): `burst`
    requests at once, refilled at `per_second`. 0 turns the limit off."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    per_second: float = Field(default=5.0, ge=0)
    burst: int = Field(default=20, ge=1)


class ServeSettings(BaseModel):
    """Everything `srgan serve` can be told; see docs/SERVING.md for each key."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)  # 0: any free port (printed at start)
    data_dir: Path = Path("srgan-data")
    require_keys: bool | None = None  # None: required unless the host is loopback
    cors_origins: tuple[str, ...] = ()  # e.g. ("https://example.org",); none by default

    models: tuple[str, ...] = NAMED_MODELS  # the models clients may choose
    # more models by name: an .onnx file of any architecture (run with ONNX Runtime) or a
    # weights file (.pth, .safetensors, .param); list the names in `models` to serve them
    model_files: dict[str, Path] = Field(default_factory=dict)
    # the models the /compare page pits against each other (None: all of `models`)
    ab_models: tuple[str, ...] | None = None
    default_model: str = DEFAULT_MODEL
    device: str = "auto"
    backend: Literal["auto", "torch", "onnxruntime", "ncnn"] = "auto"
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    threads: int | None = Field(None, ge=1)  # CPU threads per computation; None: the cores

    workers: int = Field(1, ge=1, le=64)  # jobs computed at once
    queue_size: int = Field(100, ge=1)  # queued jobs beyond this get 503 + Retry-After
    sync_concurrency: int = Field(1, ge=1, le=64)  # POST /v1/upscale computed at once
    sync_backlog: int = Field(32, ge=0)  # waiting synchronous requests beyond this: 503
    job_timeout_s: float = Field(600.0, gt=0)
    request_timeout_s: float = Field(60.0, gt=0)  # a synchronous upscale, waiting included
    # A client the server waits on outside a request (a request head still coming, or an
    # unread body after the answer) is cut off after this long.
    header_timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(2, ge=1)  # a job running when the server died is retried once

    max_body_bytes: int = Field(50 * MB, ge=1024)
    max_pixels: int = Field(2048 * 2048, ge=1)  # input pixels; checked from the header
    sync_max_pixels: int = Field(512 * 512, ge=1)  # bigger inputs must use /v1/jobs
    max_output_pixels: int = Field(8192 * 8192, ge=1)
    max_tile: int = Field(512, ge=16)  # tiles are where jobs can be cancelled
    png_compression: int = Field(DEFAULT_PNG_LEVEL, ge=0, le=9)

    result_ttl_s: float = Field(24 * 3600.0, gt=0)  # finished jobs and results are deleted then
    cache_max_bytes: int = Field(1024 * MB, ge=0)  # 0: no result cache
    rate_limit: RateLimit = RateLimit()
    # Failed authentications (401) per client address: past the burst, 429 for a while.
    auth_failure_limit: RateLimit = RateLimit(per_second=0.1, burst=10)
    # X-Forwarded-For/-Proto are believed only from these proxy addresses (uvicorn's
    # default: loopback); the rate limits then see the real client. () ignores them.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    access_log: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ServeSettings:
        for name, path in self.model_files.items():
            if name in NAMED_MODELS or find_variant(name) or not _MODEL_NAME.fullmatch(name):
                raise ValueError(
                    f"model_files: {name!r} must be a new name (letters, digits, . _ -)"
                )
            if not path.is_file():
                raise ValueError(f"model_files: {name} = {str(path)!r} is not a file")
        known = (*NAMED_MODELS, *self.model_files)
        unknown = [name for name in self.models if name not in known and not find_variant(name)]
        if unknown:
            raise ValueError(
                f"models: unknown {unknown} (known: {', '.join(known)}, and family variants "
                "such as anime-cugan-x3-denoise3)"
            )
        if not self.models:
            raise ValueError("models: name at least one model")
        if self.ab_models is not None:
            outside = [name for name in self.ab_models if name not in self.models]
            if outside:
                raise ValueError(f"ab_models: {outside} are not in models")
            if len(set(self.ab_models)) < 2:
                raise ValueError("ab_models: name at least two models")
        if self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not in models")
        if self.sync_max_pixels > self.max_pixels:
            raise ValueError("sync_max_pixels must not exceed max_pixels")
        return self

    @property
    def keys_required(self) -> bool:
        return not is_loopback(self.host) if self.require_keys is None else self.require_keys

    @property
    def database_path(self) -> Path:
        return self.data_dir / "srgan.sqlite3"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(config: Path | None = None, **overrides: Any) -> ServeSettings:
    """Defaults, then the config file (TOML, YAML or JSON), then the given overrides
    (None values are ignored: a flag not given keeps the file's value)."""
    data = read_config_file(config) if config else {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return ServeSettings.model_validate(data)
    except ValidationError as exc:
        raise invalid_config(exc, config) from exc
