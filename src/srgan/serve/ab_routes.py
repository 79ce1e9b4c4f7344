"""Routes of the blind A/B test: `POST /v1/ab` (an image: two anonymised results of it),
`GET /v1/ab/{id}` (its state), `GET /v1/ab/{id}/a|b` (the two images),
`POST /v1/ab/{id}/vote`, `GET /v1/ab/stats` (win rates), and the page at `/compare`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from srgan.serve.ab import AlreadyVoted, Trial, choose_pair
from srgan.serve.auth import Caller
from srgan.serve.context import ServerContext
from srgan.serve.schemas import ErrorBody, Refusal, UpscaleParams
from srgan.serve.store import JobRecord
from srgan.serve.submit import create_job, refused
from srgan.serve.uploads import read_upload

Side = Literal["a", "b"]
TrialState = Literal["queued", "running", "ready", "failed"]


class TrialInfo(BaseModel):
    """A trial as the page sees it: no model is named before the vote."""

    id: str
    state: TrialState
    progress: float = Field(description="0 to 1, both results together")
    error: str | None = None
    images: dict[str, str] | None = Field(None, description="side -> image URL, once ready")
    choice: Literal["a", "b", "same"] | None = None
    models: dict[str, str] | None = Field(None, description="side -> model, after the vote")
    created_at: float


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: Literal["a", "b", "same"] = Field(description="the better side, or same")


class PairStats(BaseModel):
    models: list[str] = Field(description="the two models, by name")
    votes: int
    wins: dict[str, int]
    same: int
    win_rate: float | None = Field(description="of the first model, ties left out")
    interval_95: list[float] | None = Field(description="Wilson score interval of win_rate")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API key missing, unknown or revoked"},
    404: {"model": ErrorBody, "description": "No such trial"},
    409: {"model": ErrorBody, "description": "Not ready, or voted already"},
    429: {"model": ErrorBody, "description": "Rate limit: see Retry-After"},
}


def caller_of(request: Request) -> Caller:
    """The caller `ApiGate` admitted."""
    return request.state.caller


CallerDep = Annotated[Caller, Depends(caller_of)]
ImageFile = Annotated[UploadFile, File(description="PNG, JPEG, WebP, TIFF or BMP")]


def trial_models(context: ServerContext) -> tuple[str, ...]:
    settings = context.settings
    return settings.ab_models or settings.models


def add_ab_routes(app: FastAPI, context: ServerContext, page: str) -> None:
    settings = context.settings

    def owned(trial_id: uuid.UUID, caller: Caller) -> Trial:
        trial = context.ab.get(str(trial_id))
        if trial is None or trial.key_id != caller.key_id:
            raise HTTPException(404, "no such trial (unknown, or made with another key)")
        return trial

    @app.post(
        "/v1/ab", tags=["a/b test"], status_code=202, response_model=TrialInfo, responses=_ERRORS
    )
    async def start_trial(
        image: ImageFile,
        caller: CallerDep,
    ) -> TrialInfo | JSONResponse:
        """Upscale an image with two models chosen by the server, shown as A and B in a
        random order; poll `GET /v1/ab/{id}`, then vote."""
        models = trial_models(context)
        if len(set(models)) < 2:
            return refused(Refusal(409, "A/B tests need two models; this server runs one"))
        pair = choose_pair(models, await anyio.to_thread.run_sync(context.ab.trial_counts))
        scale = max(context.engine.scale_of(model) for model in pair)
        params = [
            UpscaleParams.model_validate(
                {
                    "model": model,
                    "outscale": None if context.engine.scale_of(model) == scale else scale,
                    "format": "png",
                }
            )
            for model in pair
        ]
        upload = await anyio.to_thread.run_sync(
            read_upload, image.file, params[0], settings, context.engine, False
        )
        if isinstance(upload, Refusal):
            return refused(upload)
        jobs: list[JobRecord] = []
        for param in params:
            record = await anyio.to_thread.run_sync(create_job, context, upload, param, caller)
            if isinstance(record, Refusal):
                for job in jobs:  # both results or none
                    context.store.delete(job.id)
                return refused(record)
            jobs.append(record)
        context.pool.notify()
        trial = await anyio.to_thread.run_sync(
            context.ab.create, caller.key_id, pair, (jobs[0].id, jobs[1].id)
        )
        return _info(context, trial)

    @app.get("/v1/ab/stats", tags=["a/b test"], responses=_ERRORS)
    def trial_stats(caller: CallerDep) -> list[PairStats]:
        """Every pair of models with votes: wins, ties, the first model's win rate and
        its 95% Wilson interval."""
        return [PairStats.model_validate(t.as_dict()) for t in context.ab.tallies()]

    @app.get("/v1/ab/{trial_id}", tags=["a/b test"], responses=_ERRORS)
    def trial_status(trial_id: uuid.UUID, caller: CallerDep) -> TrialInfo:
        """State and progress of both results; the image URLs once both are ready."""
        return _info(context, owned(trial_id, caller))

    @app.get(
        "/v1/ab/{trial_id}/{side}",
        tags=["a/b test"],
        response_class=FileResponse,
        responses={**_ERRORS, 200: {"content": {"image/png": {}}}},
    )
    def trial_image(trial_id: uuid.UUID, side: Side, caller: CallerDep) -> FileResponse:
        """The result shown as A or B (a PNG named after the trial, not the model)."""
        trial = owned(trial_id, caller)
        record = context.store.get(trial.job_of(side))
        if record is None:
            raise HTTPException(404, "the trial's images have expired")
        if record.state != "done" or record.media_type is None:
            raise HTTPException(409, f"the image is not ready ({record.state})")
        path = context.store.result_path(record.id, record.media_type)
        if not path.is_file():
            raise HTTPException(404, "the trial's images have expired")
        return FileResponse(
            path,
            media_type=record.media_type,
            filename=f"trial-{trial.id}-{side}.png",
            content_disposition_type="inline",
            headers={"Cache-Control": "private, no-store"},
        )

    @app.post("/v1/ab/{trial_id}/vote", tags=["a/b test"], responses=_ERRORS)
    def vote(trial_id: uuid.UUID, body: VoteBody, caller: CallerDep) -> TrialInfo:
        """Record which side looks better (or "same"); the answer names the models."""
        trial = owned(trial_id, caller)
        if _info(context, trial).state != "ready":
            raise HTTPException(409, "vote once both images are ready")
        try:
            voted = context.ab.vote(trial.id, body.choice)
        except AlreadyVoted:
            raise HTTPException(409, "this trial has a vote already") from None
        return _info(context, voted)

    @app.get("/compare", include_in_schema=False)
    def compare_page() -> FileResponse:
        return FileResponse(page, media_type="text/html")


def _info(context: ServerContext, trial: Trial) -> TrialInfo:
    jobs = [context.store.get(trial.job_a), context.store.get(trial.job_b)]
    state: TrialState
    error = None
    if trial.choice is not None:
        state, progress = "ready", 1.0
    elif any(job is None for job in jobs):
        state, progress, error = "failed", 0.0, "the trial's images have expired"
    else:
        records = [job for job in jobs if job is not None]
        progress = sum(job.progress for job in records) / 2
        failed = [job for job in records if job.state == "failed"]
        if failed:
            state, error = "failed", failed[0].error
        elif all(job.state == "done" for job in records):
            state = "ready"
        elif any(job.state in ("running", "done") for job in records):
            state = "running"
        else:
            state = "queued"
    ready = state == "ready" and all(job is not None for job in jobs)
    return TrialInfo(
        id=trial.id,
        state=state,
        progress=progress,
        error=error,
        images={side: f"/v1/ab/{trial.id}/{side}" for side in ("a", "b")} if ready else None,
        choice=trial.choice,  # type: ignore[arg-type]
        models={"a": trial.model_a, "b": trial.model_b} if trial.choice else None,
        created_at=trial.created_at,
    )
