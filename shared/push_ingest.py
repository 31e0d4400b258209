"""Push ingestion (README: Push ingestion (CloudEvents)): each received CloudEvent becomes the
write its type names — an observation of a series (with its fan-out), a learned sample, or a
delayed label — for the event's tenant.

At-least-once delivery made exactly-once: the pair (`source`, `id`) becomes the write's
Idempotency-Key (architecture.md §3), so the state store's own dedupe, stored in the same
atomic step as the write, recognises a redelivery for IDEMPOTENCY_TTL_SECONDS and answers
the first result without applying anything. No second store of seen events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from shared.errors import ApiError, bad_request
from shared.ingest import Ingest
from shared.labels import Label
from shared.protocols.cloudevents_in import Received
from shared.ratelimit import rate_limited
from shared.schemas import PREDICTION_ID_PATTERN, Sample, Strict
from shared.serving import Serving
from shared.state.base import Idempotency
from shared.tenancy import TENANT_PATTERN, check_name

OBSERVATION = "io.onlineml.observation"
SAMPLE = "io.onlineml.sample"
LABEL = "io.onlineml.label"

DataT = TypeVar("DataT", bound=BaseModel)
Authenticate = Callable[[str, str | None], Awaitable[None]]  # (tenant, X-Tenant-Key sent)
RateLimit = Callable[[str], Awaitable[int]]  # tenant → 0 or the microseconds to wait


class ObservationData(Strict):
    series: str = Field(max_length=128)
    value: float = Field(allow_inf_nan=False)
    ts: str | None = Field(None, max_length=64)


class SampleData(Strict):
    model: str = Field(max_length=128)
    x: Any = None
    y: Any = None


class LabelData(Strict):
    model: str = Field(max_length=128)
    prediction_id: str = Field(pattern=PREDICTION_ID_PATTERN)
    y: Any = None


def idempotency_of_event(event: Received) -> Idempotency:
    """(source, id) as an Idempotency-Key; what the event asks (type and data) as its body:
    the same (source, id) with other data is a conflict (409), never applied."""
    key = hashlib.sha256(f"{event.source}\n{event.id}".encode()).hexdigest()
    asked = json.dumps([event.type, event.data], sort_keys=True, separators=(",", ":"))
    return Idempotency(f"ce:{key}", hashlib.sha256(asked.encode()).hexdigest())


def tenant_mismatch() -> ApiError:
    return ApiError(
        403, "tenant_mismatch", "the event's 'tenant' attribute is not the X-Tenant-ID sent"
    )


@dataclass
class TenantCheck:
    """The tenant of an event: X-Tenant-ID as the edge checked it (shape, key, rate limit),
    which a `tenant` attribute must then equal; without the header, the `tenant` attribute,
    checked here as the edge would have: its shape, its rate limit, and with TENANT_AUTH=keys
    its key (the X-Tenant-Key header, else the event's `tenantkey` attribute, as a broker
    pushes it); once per tenant per request: a key proven once covers the batch.

    A batch is not a way to guess keys: the rate limit comes first (so every key tried is
    counted against the tenant's budget), and after the first key refused, every further
    event of the request that needs a key is refused the same way without trying its key."""

    header_tenant: str | None
    tenant_key: str | None
    authenticate: Authenticate | None  # None unless TENANT_AUTH=keys
    rate_limit: RateLimit | None  # None when RATE_LIMIT_PER_MINUTE is 0
    per_minute: int
    _checked: set[str] = field(default_factory=set)
    _refused: ApiError | None = None  # the first key refused in this request

    async def tenant_of(self, event: Received) -> str:
        if self.header_tenant is not None:
            if event.tenant is not None and event.tenant != self.header_tenant:
                raise tenant_mismatch()
            return self.header_tenant
        tenant = event.tenant
        if tenant is None:
            raise bad_request("send X-Tenant-ID or the 'tenant' attribute", "missing_tenant")
        if not TENANT_PATTERN.fullmatch(tenant):
            raise bad_request(
                "the 'tenant' attribute must match ^[a-z0-9][a-z0-9-]{0,62}$", "invalid_tenant"
            )
        if tenant not in self._checked:
            if self.authenticate is not None and self._refused is not None:
                refused = self._refused
                raise ApiError(refused.status, refused.code, refused.message)
            if self.rate_limit is not None:
                wait = await self.rate_limit(tenant)
                if wait:
                    raise rate_limited(self.per_minute, wait)
            if self.authenticate is not None:
                sent = self.tenant_key if self.tenant_key is not None else event.tenant_key
                try:
                    await self.authenticate(tenant, sent)
                except ApiError as exc:
                    if sent is not None and exc.status in (401, 403):
                        self._refused = exc  # a key was tried and refused: no more tries
                    raise
            self._checked.add(tenant)
        return tenant


@dataclass
class PushIngest:
    ingest: Ingest
    serving: Serving

    async def apply(self, tenant: str, event: Received) -> dict[str, Any]:
        """The event's write; a redelivery answers the first result and changes nothing."""
        key = idempotency_of_event(event)
        if event.type == OBSERVATION:
            observation = _data(ObservationData, event)
            series = check_name(observation.series, "series")
            point = (observation.value, observation.ts)
            return await self.ingest.observe(tenant, series, [point], key)
        if event.type == SAMPLE:
            sample = _data(SampleData, event)
            model = check_name(sample.model)
            return await self.serving.learn(tenant, model, [Sample(x=sample.x, y=sample.y)], key)
        if event.type == LABEL:
            label = _data(LabelData, event)
            model = check_name(label.model)
            answer = await self.serving.label(
                tenant, model, [Label(label.prediction_id, label.y)], key
            )
            failed = answer["results"][0].get("error")
            if failed is not None:
                raise ApiError(answer["results"][0]["status"], failed["code"], failed["message"])
            return answer
        raise bad_request(
            f"unknown event type '{event.type}'; send {OBSERVATION}, {SAMPLE} or {LABEL}",
            "unknown_event_type",
        )


def _data(model: type[DataT], event: Received) -> DataT:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False)[:5]:
            where = ".".join(str(p) for p in err["loc"])
            parts.append(f"data{'.' + where if where else ''}: {err['msg']}")
        raise ApiError(422, "invalid_event_data", "; ".join(parts)) from None
