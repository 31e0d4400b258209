"""The per-process runtime: settings, state store and warm models, built on first use.

functions-framework gives the ASGI app no lifespan hook, so the runtime is created lazily by
the first request of each process (and of each event loop, for tests).
"""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from typing import Any

import httpx

from shared.challenger import Challengers
from shared.data_access import DataAccess, data_root_uri
from shared.degraded import DegradedModels
from shared.events import EventBus, open_event_bus
from shared.events.feed import open_feed
from shared.events.live import open_live
from shared.executors import Executors
from shared.ingest import Ingest
from shared.learn_process import HeavyLearns, ProcessLearner
from shared.lifecycle import Lifecycle
from shared.monitoring.monitor import Monitor
from shared.monitoring.sse import StreamHub
from shared.online import OnlineModels
from shared.outbound import outbound_policy
from shared.registry import Registry, open_registry
from shared.serving import Serving
from shared.settings import Settings, get_settings
from shared.spec_proof import SpecProver
from shared.state import StateStore, open_state_store
from shared.state.predictions import open_kept_predictions
from shared.state.series import open_series_state
from shared.state.tenant_keys import open_key_records
from shared.tenant_auth import TenantAuth
from shared.tenant_keys import TenantKeys
from shared.training.jobs import Jobs


@dataclass
class Runtime:
    settings: Settings
    store: StateStore
    models: OnlineModels
    registry: Registry
    events: EventBus
    lifecycle: Lifecycle
    jobs: Jobs
    ingest: Ingest
    loop: asyncio.AbstractEventLoop
    monitor: Monitor
    tenant_keys: TenantKeys  # issued and revoked by the admin whatever TENANT_AUTH says
    tenant_auth: TenantAuth  # the edge's check, applied when TENANT_AUTH=keys
    data: DataAccess  # every file a tenant names resolves here (its own folder only)
    degraded: DegradedModels  # models whose predictions are not finite (shared/degraded.py)
    executors: Executors  # the process's bounded pools, shut down with the runtime
    serving: Serving  # the data plane: every route predicts, learns and forecasts through it
    streams: StreamHub  # the SSE streams of this instance and the live events they carry


_runtime: Runtime | None = None


def current_runtime() -> Runtime:
    """The runtime of this process and event loop (created synchronously, no I/O)."""
    global _runtime
    loop = asyncio.get_running_loop()
    if _runtime is None or _runtime.loop is not loop:
        settings = get_settings()
        if _runtime is not None:  # a new event loop (tests): the old one's pools go
            _runtime.executors.shutdown()
        executors = Executors.from_settings(settings)
        store = open_state_store(
            settings.state_url,
            settings.state_timeout_seconds,
            settings.state_breaker_cooldown_seconds,
            min_replicas=settings.state_min_replicas,
            replica_timeout_ms=settings.state_replica_timeout_ms,
        )
        registry = open_registry(settings.model_registry_uri, executor=executors.io)
        events = open_event_bus(
            settings.nats_url,
            settings.state_url,
            events_dir=settings.events_dir,
            executor=executors.io,
            replicas=settings.events_replicas,
        )
        live = open_live(
            settings.nats_url, settings.events_dir, settings.stream_live_log_bytes, executors.io
        )
        streams = StreamHub(
            open_feed(
                settings.nats_url,
                settings.events_dir,
                poll_seconds=settings.stream_poll_seconds,
                window=settings.stream_resume_window_seconds,
                max_scan=settings.stream_resume_max_events,
                executor=executors.io,
            ),
            live,
            max_clients=settings.stream_max_clients,
            max_clients_per_tenant=settings.stream_max_clients_per_tenant,
            heartbeat_seconds=settings.stream_heartbeat_seconds,
            queue_events=settings.stream_queue_events,
            send_timeout_seconds=settings.stream_send_timeout_seconds,
            max_seconds=settings.stream_max_seconds,
        )
        monitor = Monitor(
            store,
            events,
            audit_max_rows=settings.audit_max_rows,
            cpu=executors.monitor,
            workers=executors,
            live=live,
            live_prediction_every=settings.stream_prediction_every,
            live_metrics_seconds=settings.stream_metrics_seconds,
            live_metrics_max_models=settings.stream_metrics_max_models,
        )
        degraded = DegradedModels(store, events)
        models = OnlineModels(
            store,
            cache_size=settings.model_cache_size,
            snapshot_every=settings.snapshot_every,
            idempotency_ttl=settings.idempotency_ttl_seconds,
            cpu=executors.cpu,
            observer=monitor,
            report_degraded=degraded.report,
            learner=ProcessLearner(executors, settings.learn_process_min_samples),
            heavy=HeavyLearns(
                settings.learn_process_min_samples, settings.max_heavy_learns_per_tenant
            ),
        )

        async def promote(tenant: str, model: str, blob: bytes, meta: dict[str, Any]) -> int:
            # bound late: the lifecycle is built with the challengers it starts and stops
            return await lifecycle.promote(tenant, model, blob, meta)

        challengers = Challengers(
            models,
            promote,
            monitor.comparison,
            state=store,
            promote_margin=settings.challenger_promote_margin,
            window=settings.challenger_window,
        )
        lifecycle = Lifecycle(
            models,
            registry,
            events,
            state=store,
            challengers=challengers,
            degraded=degraded,
            lock_ttl_seconds=settings.lifecycle_lock_ttl_seconds,
            lock_wait_seconds=settings.lifecycle_lock_wait_seconds,
            prover=SpecProver(executors.cpu, executors.proofs),
        )
        kept = open_kept_predictions(
            store, settings.label_ttl_seconds, settings.label_max_kept_per_model
        )
        serving = Serving(models, challengers, lifecycle, monitor, kept)
        data = DataAccess(data_root_uri(settings))
        jobs = Jobs(store, lifecycle, events, settings, data, executors)
        ingest = Ingest(
            open_series_state(store),
            serving,
            lifecycle,
            events,
            settings.n_lags,
            httpx.AsyncClient(follow_redirects=False),
            data,
            outbound_policy(settings),
            executors.io,
        )
        tenant_keys = TenantKeys(open_key_records(store), settings.tenant_keys_max)
        tenant_auth = TenantAuth(
            tenant_keys, settings.tenant_key_cache_seconds, settings.tenant_key_cache_size
        )
        _runtime = Runtime(
            settings,
            store,
            models,
            registry,
            events,
            lifecycle,
            jobs,
            ingest,
            loop,
            monitor,
            serving=serving,
            tenant_keys=tenant_keys,
            tenant_auth=tenant_auth,
            data=data,
            degraded=degraded,
            executors=executors,
            streams=streams,
        )
        # River, scikit-learn and pandas leave a large heap of long-lived objects; freezing
        # it keeps the cyclic GC from re-scanning it on every collection (measured: ~30% of
        # predict throughput under load).
        gc.collect()
        gc.freeze()
    return _runtime


async def reset_runtime() -> None:
    """Drop the runtime (tests switch settings between apps)."""
    global _runtime
    if _runtime is not None:
        await _runtime.jobs.drain()
        await _runtime.models.drain()
        await _runtime.monitor.close()
        await _runtime.streams.close()
        await _runtime.events.close()
        await _runtime.ingest.http.aclose()
        await _runtime.store.close()
        _runtime.executors.shutdown()
    _runtime = None
