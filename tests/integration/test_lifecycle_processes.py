"""Model lifecycle across real app processes: activation seen by every instance at once,
versions surviving a restart on memory://, and the registry on gs:// (fake-gcs-server).

Every prediction is compared with River in-process, float for float (`==`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from river import compose, datasets, linear_model, preprocessing

from tests.gcs_server import gcs_client
from tests.servers import AppProcess

pytestmark = pytest.mark.slow
H = {"X-Tenant-ID": "acme"}
SPEC = {
    "name": "m",
    "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression", "params": {"l2": 0.0}}],
}
SAMPLES: list[tuple[dict[str, Any], float]] = list(datasets.TrumpApproval())
PROBE = SAMPLES[-1][0]  # never learned
M = "/api/v1/models/m"
Factory = Callable[..., AppProcess]


def river(samples: list[tuple[dict[str, Any], float]]) -> compose.Pipeline:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)
    for x, y in samples:
        model.learn_one(x, y)
    return model


def expected(samples: list[tuple[dict[str, Any], float]]) -> float:
    return river(samples).predict_one(PROBE)


def http(app: AppProcess) -> httpx.Client:
    return httpx.Client(base_url=app.url, headers=H, timeout=10)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def create_and_learn(client: httpx.Client, samples: list[tuple[dict[str, Any], float]]) -> None:
    ok(client.post("/api/v1/models", json=SPEC), 201)
    learn(client, samples)


def learn(client: httpx.Client, samples: list[tuple[dict[str, Any], float]]) -> None:
    ok(client.post(f"{M}/learn", json={"samples": [{"x": x, "y": y} for x, y in samples]}))


def predict(client: httpx.Client, query: str = "") -> dict[str, Any]:
    return ok(client.post(f"{M}/predict{query}", json={"x": PROBE}))


# ----- two processes on one Valkey -------------------------------------------------------


@pytest.fixture
def pair(redis_url: str, app_factory: Factory) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    a, b = app_factory({"STATE_URL": redis_url}), app_factory({"STATE_URL": redis_url})
    with http(a) as client_a, http(b) as client_b:
        yield client_a, client_b


def test_activation_through_a_changes_b_predictions_at_once(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    create_and_learn(a, SAMPLES[:300])
    assert ok(a.post(f"{M}/versions"), 201)["version"] == 2
    learn(a, SAMPLES[300:400])
    assert predict(b)["prediction"] == expected(SAMPLES[:400])  # B holds the model warm

    ok(a.post(f"{M}/versions/2/activate"))
    after = predict(b)
    assert after["prediction"] == expected(SAMPLES[:300]) and after["model_version"] == 2

    # B learns from the activated state; A sees it; rollback through B reaches A
    learn(b, SAMPLES[400:410])
    assert predict(a)["prediction"] == expected(SAMPLES[:300] + SAMPLES[400:410])
    ok(b.post(f"{M}/versions/1/activate"))
    rolled = predict(a)
    assert rolled.pop("prediction_id")  # kept for a later label
    assert rolled == {"prediction": expected([]), "model_version": 1, "seq": 410}
    assert ok(a.get(f"{M}/versions"))["active"] == 1


def test_pinned_version_on_b_follows_delete_and_recreate_through_a(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    create_and_learn(a, SAMPLES[:300])
    ok(a.post(f"{M}/versions"), 201)
    assert predict(b, "?version=2")["prediction"] == expected(SAMPLES[:300])  # B caches it

    ok(a.delete(M), 204)
    gone = b.post(f"{M}/predict?version=2", json={"x": PROBE})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"

    # same name, another model: its versions start above the deleted one's (3, then 4), so
    # version 2 never names the new model and B's cached version 2 is never served
    create_and_learn(a, SAMPLES[500:550])
    assert ok(a.post(f"{M}/versions"), 201)["version"] == 4
    gone = b.post(f"{M}/predict?version=2", json={"x": PROBE})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "version_not_found"
    assert predict(b, "?version=4")["prediction"] == expected(SAMPLES[500:550])


# ----- restart on memory:// --------------------------------------------------------------


def test_memory_restart_resumes_from_newest_version_and_loses_later_learns(
    app_factory: Factory,
) -> None:
    first = app_factory({"STATE_URL": "memory://"})
    with http(first) as a:
        create_and_learn(a, SAMPLES[:300])
        ok(a.post(f"{M}/versions"), 201)
        at_snapshot = predict(a)
        learn(a, SAMPLES[300:350])  # after the newest version: memory:// loses these
        before_stop = predict(a)
        versions = ok(a.get(f"{M}/versions"))
    first.stop()
    assert at_snapshot["prediction"] == expected(SAMPLES[:300])
    assert before_stop["prediction"] == expected(SAMPLES[:350])

    with http(app_factory({"STATE_URL": "memory://"})) as b:
        resumed = predict(b)
        assert resumed["prediction"] == at_snapshot["prediction"]
        assert resumed["prediction"] != before_stop["prediction"]  # the 50 learns are gone
        assert resumed["model_version"] == 1
        assert ok(b.get(f"{M}/versions")) == versions
        assert predict(b, "?version=2")["prediction"] == at_snapshot["prediction"]
        # learning goes on from the snapshot state
        learn(b, SAMPLES[300:310])
        assert predict(b)["prediction"] == expected(SAMPLES[:310])


def test_memory_restart_keeps_the_activated_version(app_factory: Factory) -> None:
    first = app_factory({"STATE_URL": "memory://"})
    with http(first) as a:
        create_and_learn(a, SAMPLES[:200])
        ok(a.post(f"{M}/versions"), 201)
        learn(a, SAMPLES[200:300])
        ok(a.post(f"{M}/versions"), 201)
        ok(a.post(f"{M}/versions/2/activate"))
        ok(a.put(f"{M}/aliases/champion", json={"version": 3}))
    first.stop()

    with http(app_factory({"STATE_URL": "memory://"})) as b:
        live = predict(b)
        assert live["prediction"] == expected(SAMPLES[:200]) and live["model_version"] == 2
        assert predict(b, "?alias=champion")["prediction"] == expected(SAMPLES[:300])
        listing = ok(b.get(f"{M}/versions"))
        assert listing["active"] == 2 and listing["aliases"] == {"champion": 3}


# ----- the registry on gs:// -------------------------------------------------------------


def test_gcs_registry_create_version_activate_and_restart(
    gcs_server: str, app_factory: Factory
) -> None:
    bucket = f"reg-{uuid.uuid4().hex[:12]}"
    storage = gcs_client(gcs_server)
    storage.create_bucket(bucket)
    env = {
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"gs://{bucket}/ml",
        "STORAGE_EMULATOR_HOST": gcs_server,  # google-cloud-storage's own switch
    }
    first = app_factory(env)
    with http(first) as a:
        assert ok(a.get("/ready"))["checks"]["registry"] == "ok"
        create_and_learn(a, SAMPLES[:300])
        ok(a.post(f"{M}/versions"), 201)
        learn(a, SAMPLES[300:400])
        ok(a.post(f"{M}/versions/2/activate"))
        assert predict(a)["prediction"] == expected(SAMPLES[:300])
    first.stop()
    names = {blob.name for blob in storage.list_blobs(bucket)}
    assert {
        "ml/acme/m/model.json",
        "ml/acme/m/aliases.json",
        "ml/acme/m/versions/1/model.pkl",
        "ml/acme/m/versions/2/meta.json",
    } <= names

    with http(app_factory(env)) as b:
        resumed = predict(b)
        assert resumed["prediction"] == expected(SAMPLES[:300]) and resumed["model_version"] == 2
        assert predict(b, "?version=1")["prediction"] == expected([])
        assert [v["version"] for v in ok(b.get(f"{M}/versions"))["versions"]] == [1, 2]
