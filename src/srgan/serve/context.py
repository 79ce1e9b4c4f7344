"""Everything one running server holds: the database, job store, cache, engine, workers,
keys, rate limiter and metrics, started and stopped together."""

from __future__ import annotations

import logging
import threading

from srgan.serve.ab import TrialStore
from srgan.serve.auth import Gatekeeper, KeyStore, RateLimiter
from srgan.serve.cache import ResultCache
from srgan.serve.database import Database
from srgan.serve.engine import Engine
from srgan.serve.metrics import Metrics, StoreSnapshot
from srgan.serve.settings import ServeSettings
from srgan.serve.store import JobStore, Recovery
from srgan.serve.workers import Sweeper, WorkerPool

log = logging.getLogger(__name__)


class ServerContext:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.db = Database(settings.database_path)
        self.metrics = Metrics()
        self.store = JobStore(self.db, settings.data_dir, settings.result_ttl_s)
        self.cache = ResultCache(
            self.db,
            settings.data_dir / "cache",
            settings.cache_max_bytes,
            on_lookup=self.metrics.cache_lookup,
        )
        self.metrics.read_store_with(self._snapshot)
        self.keys = KeyStore(self.db)
        self.ab = TrialStore(self.db)
        self.gatekeeper = Gatekeeper(
            self.keys,
            RateLimiter(settings.rate_limit),
            RateLimiter(settings.auth_failure_limit),
            settings.keys_required,
        )
        self.engine = Engine(settings)
        self.pool = WorkerPool(
            self.store,
            self.engine,
            self.cache,
            self.metrics,
            settings.workers,
            settings.job_timeout_s,
        )
        self.sweeper = Sweeper(
            self.store,
            min(60.0, max(1.0, settings.result_ttl_s / 4)),
            also=lambda: self.ab.prune(settings.result_ttl_s),
        )
        self.recovery: Recovery | None = None

    def start(self) -> None:
        self.recovery = self.store.recover(self.settings.max_attempts)
        if self.recovery.requeued or self.recovery.failed:
            log.warning(
                "restart: %d interrupted jobs queued again, %d failed (interrupted %d times)",
                self.recovery.requeued,
                self.recovery.failed,
                self.settings.max_attempts,
            )
        self.store.expire()
        self.ab.prune(self.settings.result_ttl_s)
        self.cache.evict()  # the cap may have been lowered since the last run
        self.pool.start()
        self.sweeper.start()
        threading.Thread(target=self._warm_up, name="srgan-warm-up", daemon=True).start()

    def stop(self) -> None:
        self.pool.stop()
        self.sweeper.stop()
        self.metrics.close()

    def _snapshot(self) -> StoreSnapshot:
        counts = self.store.counts()
        return StoreSnapshot(
            counts, counts["queued"], self.cache.total_bytes(), self.cache.entries()
        )

    def _warm_up(self) -> None:
        """Open the default model before the first request needs it."""
        try:
            self.engine.warm_up(self.settings.default_model)
        except Exception:  # the first request will report the problem
            log.exception("could not open model %s", self.settings.default_model)
