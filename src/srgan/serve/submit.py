"""Queueing an upload as a job, and answering a refusal: shared by the routes."""

from __future__ import annotations

import logging
import math

from fastapi.responses import JSONResponse

from srgan.serve.auth import Caller
from srgan.serve.context import ServerContext
from srgan.serve.schemas import Refusal, UpscaleParams
from srgan.serve.store import JobRecord, QueueFullError
from srgan.serve.uploads import Upload

log = logging.getLogger(__name__)


def refused(refusal: Refusal) -> JSONResponse:
    return JSONResponse({"detail": refusal.detail}, refusal.status, headers=refusal.headers)


def create_job(
    context: ServerContext, upload: Upload, params: UpscaleParams, caller: Caller
) -> JobRecord | Refusal:
    settings = context.settings
    try:
        return context.store.create(
            params,
            params.cache_key(upload.sha256, context.engine.name),
            caller.key_id,
            (upload.width, upload.height),
            upload.data,
            settings.queue_size,
        )
    except QueueFullError:
        return Refusal(
            503,
            f"the queue is full ({settings.queue_size} jobs); retry later",
            {"Retry-After": str(queue_wait_estimate(context))},
        )
    except OSError as exc:
        log.error("could not store a job's input: %s", exc)
        return Refusal(
            503, "the server could not store the job; retry later", {"Retry-After": "30"}
        )


def queue_wait_estimate(context: ServerContext) -> int:
    """Seconds until the queue probably has room: the mean job time so far."""
    mean = context.metrics.mean_job_seconds() or 10.0
    return max(1, min(300, math.ceil(mean / max(1, context.settings.workers))))
