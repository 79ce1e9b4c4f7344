"""The web API: FastAPI app, durable SQLite job queue, API keys, rate limits, result
cache, metrics and the browser page. Needs the `serve` extra (fastapi, uvicorn,
python-multipart); `srgan serve` is the command, docs/SERVING.md the guide."""
