"""The HTTP API (FastAPI): routes only; the work is done by `ServerContext`'s parts.

Routes that hold an upload return their errors (`Refusal` -> JSON) instead of raising
HTTPException: see `Refusal` for why.
"""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal, TypeAlias

import anyio
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from srgan import __version__
from srgan.defaults import DEFAULT_TILE_PAD
from srgan.errors import BadInputError, ImageTooLargeError
from srgan.serve.ab_routes import add_ab_routes
from srgan.serve.auth import Caller
from srgan.serve.context import ServerContext
from srgan.serve.engine import Cancelled, CancelToken
from srgan.serve.middleware import ApiGate, ObserveRequests, RequestLimits, RequestTimeout
from srgan.serve.schemas import (
    MEDIA_TYPES,
    ErrorBody,
    Health,
    JobInfo,
    ModelInfo,
    OutputFormat,
    Refusal,
    UpscaleParams,
)
from srgan.serve.settings import ServeSettings
from srgan.serve.store import JobRecord
from srgan.serve.submit import create_job, refused
from srgan.serve.uploads import Upload, read_upload

log = logging.getLogger(__name__)

STATIC = resources.files("srgan.serve") / "static"
MAX_HEAD_BYTES = 64 * 1024  # request line and headers
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not a usable image or bad options"},
    401: {"model": ErrorBody, "description": "API key missing, unknown or revoked"},
    413: {"model": ErrorBody, "description": "Body, image or result too large"},
    415: {"model": ErrorBody, "description": "Not an image"},
    422: {"model": ErrorBody, "description": "Bad options: the first problem, in one line"},
    429: {"model": ErrorBody, "description": "Rate limit: see Retry-After"},
}
ImageFile: TypeAlias = Annotated[UploadFile, File(description="PNG, JPEG, WebP, TIFF or BMP")]
_IMAGE_CONTENT = {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}}


def create_app(settings: ServeSettings) -> ObserveRequests:
    """The ASGI application: FastAPI wrapped in request metrics, security headers and
    the head and body limits."""
    context = ServerContext(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(context.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(context.stop)

    app = FastAPI(
        title="srgan",
        version=__version__,
        summary="Image super-resolution: upscale now, or as a durable job",
        lifespan=lifespan,
        form_limits={"max_files": 1, "max_fields": 16, "max_part_size": 1024},
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context
    # A little longer than a synchronous upscale's own limit, which answers first.
    app.add_middleware(RequestTimeout, timeout_s=settings.request_timeout_s + 5)
    app.add_middleware(ApiGate, gatekeeper=context.gatekeeper)  # inside CORS: 401s get CORS
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key"],
            expose_headers=["Retry-After", "Location", "X-Srgan-Cache"],
        )
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    _add_routes(app, context)
    add_ab_routes(app, context, str(STATIC / "compare.html"))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    limited = RequestLimits(app, MAX_HEAD_BYTES, settings.max_body_bytes)
    return ObserveRequests(limited, context.metrics)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a one-line `detail` like every other error (FastAPI's is a list)."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}{more}"}, 422)


async def _internal_error(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "internal server error"}, 500)


def _add_routes(app: FastAPI, context: ServerContext) -> None:
    settings = context.settings
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
    sync_slots = anyio.Semaphore(settings.sync_concurrency)
    sync_waiting = 0

    def authenticate(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        _header: Annotated[str | None, Depends(api_key_header)],
    ) -> Caller:
        """The caller `ApiGate` admitted (the two security schemes are for /docs)."""
        return request.state.caller

    def upscale_params(
        model: Annotated[str | None, Form(description="see GET /v1/models")] = None,
        outscale: Annotated[float | None, Form(gt=0, le=16)] = None,
        tile: Annotated[int | None, Form(ge=0, description="0: the server's largest")] = None,
        tile_pad: Annotated[int, Form(ge=0, le=128)] = DEFAULT_TILE_PAD,
        alpha_mode: Annotated[Literal["model", "bicubic"], Form()] = "model",
        format: Annotated[OutputFormat, Form()] = "png",
        quality: Annotated[int, Form(ge=1, le=100)] = 95,
    ) -> UpscaleParams:
        chosen = model or settings.default_model
        if chosen not in settings.models:
            raise HTTPException(
                422, f"model {chosen!r} is not served here (models: {', '.join(settings.models)})"
            )
        if tile is not None and tile > settings.max_tile:
            raise HTTPException(
                422, f"tile {tile}: this server's tiles are at most {settings.max_tile}"
            )
        if tile is not None and 0 < tile < 16:
            raise HTTPException(422, "tile must be 0 (the server's choice) or at least 16")
        try:
            return UpscaleParams(
                model=chosen,
                outscale=outscale,
                tile=tile or None,
                tile_pad=tile_pad,
                alpha_mode=alpha_mode,
                format=format,
                quality=quality,
            )
        except ValidationError as exc:
            raise HTTPException(422, str(exc.errors()[0]["msg"])) from None

    async def checked_upload(
        image: UploadFile, params: UpscaleParams, synchronous: bool
    ) -> Upload | Refusal:
        # In a thread: reading, hashing and reading the header of up to max_body_bytes.
        return await anyio.to_thread.run_sync(
            read_upload, image.file, params, settings, context.engine, synchronous
        )

    def owned_job(job_id: uuid.UUID, caller: Caller) -> JobRecord:
        """The caller's job. A job belongs to the key that made it; one made without a
        key (while keys were off) belongs to no key: once keys are required, nobody can
        read or delete it (it runs, and expires `result_ttl_s` after it finished)."""
        record = context.store.get(str(job_id))
        if record is None or record.key_id != caller.key_id:
            raise HTTPException(404, "no such job (unknown, deleted or expired)")
        return record

    @app.post(
        "/v1/upscale",
        tags=["upscale"],
        response_class=Response,
        responses={
            200: _IMAGE_CONTENT,
            **_ERRORS,
            503: {"model": ErrorBody, "description": "Busy: see Retry-After"},
            504: {"model": ErrorBody, "description": "Took longer than the request timeout"},
        },
    )
    async def upscale_now(
        image: ImageFile,
        params: Annotated[UpscaleParams, Depends(upscale_params)],
        caller: Annotated[Caller, Depends(authenticate)],
    ) -> Response:
        """Upscale a small image and answer with the result (larger ones: 413, use jobs)."""
        nonlocal sync_waiting
        upload = await checked_upload(image, params, synchronous=True)
        if isinstance(upload, Refusal):
            return refused(upload)
        key = params.cache_key(upload.sha256, context.engine.name)
        cached = await anyio.to_thread.run_sync(_cached_bytes, context, key)
        if cached is not None:
            return _image_response(cached, params.media_type, "hit")
        if sync_waiting >= settings.sync_backlog + settings.sync_concurrency:
            return refused(Refusal(503, "busy: too many upscales waiting", {"Retry-After": "2"}))
        token = CancelToken(settings.request_timeout_s)
        sync_waiting += 1
        try:
            with anyio.move_on_after(settings.request_timeout_s):
                async with sync_slots:
                    encoded = await anyio.to_thread.run_sync(
                        _compute, context, upload.data, params, token, key
                    )
                    if isinstance(encoded, Refusal):
                        return refused(encoded)
                    return _image_response(encoded, params.media_type, "miss")
            return refused(
                Refusal(503, "busy: no upscale slot came free in time", {"Retry-After": "5"})
            )
        finally:
            sync_waiting -= 1

    @app.post(
        "/v1/jobs",
        tags=["jobs"],
        status_code=202,
        response_model=JobInfo,
        responses={**_ERRORS, 503: {"model": ErrorBody, "description": "Queue full"}},
    )
    async def submit_job(
        response: Response,
        image: ImageFile,
        params: Annotated[UpscaleParams, Depends(upscale_params)],
        caller: Annotated[Caller, Depends(authenticate)],
    ) -> JobInfo | JSONResponse:
        """Queue an upscale; answers at once with the job (poll GET /v1/jobs/{id})."""
        upload = await checked_upload(image, params, synchronous=False)
        if isinstance(upload, Refusal):
            return refused(upload)
        record = await anyio.to_thread.run_sync(create_job, context, upload, params, caller)
        if isinstance(record, Refusal):
            return refused(record)
        context.pool.notify()
        location = f"/v1/jobs/{record.id}"
        response.headers["Location"] = location
        return record.info(f"{location}/result")

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], responses=_ERRORS)
    def job_status(job_id: uuid.UUID, caller: Annotated[Caller, Depends(authenticate)]) -> JobInfo:
        """State, progress (0 to 1) and error of a job."""
        record = owned_job(job_id, caller)
        return record.info(f"/v1/jobs/{record.id}/result")

    @app.get(
        "/v1/jobs/{job_id}/result",
        tags=["jobs"],
        response_class=FileResponse,
        responses={
            200: _IMAGE_CONTENT,
            409: {"model": ErrorBody, "description": "Not finished, or failed"},
            **_ERRORS,
        },
    )
    def job_result(
        job_id: uuid.UUID, caller: Annotated[Caller, Depends(authenticate)]
    ) -> FileResponse:
        """The upscaled image of a finished job."""
        record = owned_job(job_id, caller)
        if record.state == "failed":
            raise HTTPException(409, f"the job failed: {record.error}")
        if record.state != "done" or record.media_type is None:
            raise HTTPException(
                409, f"the job is {record.state} ({record.progress:.0%}); poll GET /v1/jobs/{{id}}"
            )
        path = context.store.result_path(record.id, record.media_type)
        if not path.is_file():
            raise HTTPException(404, "the result has expired")
        return FileResponse(
            path,
            media_type=record.media_type,
            filename=f"srgan-{record.id}{path.suffix}",
            content_disposition_type="inline",
        )

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], status_code=204, responses=_ERRORS)
    def delete_job(job_id: uuid.UUID, caller: Annotated[Caller, Depends(authenticate)]) -> Response:
        """Cancel a queued or running job, or delete a finished one and its result."""
        record = owned_job(job_id, caller)
        context.store.delete(record.id)
        context.pool.cancel(record.id)
        return Response(status_code=204)

    @app.get("/v1/models", tags=["models"], responses=_ERRORS)
    def list_models(caller: Annotated[Caller, Depends(authenticate)]) -> list[ModelInfo]:
        """The models this server runs; `default` marks the one used when none is named."""
        return context.engine.catalog()

    @app.get("/healthz", tags=["service"])
    def health() -> Health:
        """Liveness and readiness: the database answers."""
        return Health(
            status="ok",
            version=__version__,
            keys_required=settings.keys_required,
            workers=settings.workers,
            queue_depth=context.store.queue_depth(),
        )

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics(request: Request) -> Response:
        """Prometheus text format (or OpenMetrics, if the scraper asks for it): requests,
        latency, jobs by state, queue depth, busy workers, cache."""
        body, content_type = context.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")


def _cached_bytes(context: ServerContext, key: str) -> bytes | None:
    cached = context.cache.get(key)
    if cached is None:
        return None
    try:
        return cached.path.read_bytes()
    except FileNotFoundError:  # evicted meanwhile
        return None


def _compute(
    context: ServerContext, data: bytes, params: UpscaleParams, token: CancelToken, key: str
) -> bytes | Refusal:
    try:
        encoded = context.engine.upscale(data, params, token)
    except Cancelled as stop:
        return Refusal(504, f"upscale stopped: {stop.reason}")
    except ImageTooLargeError as exc:
        return Refusal(413, str(exc))
    except BadInputError as exc:
        return Refusal(400, str(exc))
    try:
        context.cache.put(key, encoded, params.media_type)
    except OSError as exc:  # a full disk must not fail an upscale that worked
        log.warning("could not cache a result: %s", exc)
    return encoded


def _image_response(data: bytes, media_type: str, cache: str) -> Response:
    return Response(data, media_type=media_type, headers={"X-Srgan-Cache": cache})
