"""The Open Inference Protocol v2 over HTTP, with the real client from PyPI
(`tritonclient[http]`) against a real server process: health, metadata, readiness, infer for a
regressor, a classifier and a text model; each answer equals our own /api/v1 predict of the
same rows (==); a version path equals the pinned-version predict; tenants are isolated; bad
input and bounds are 400/413 in OIP's error shape and change nothing."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from river import datasets, linear_model, preprocessing
from tritonclient.utils import InferenceServerException

from shared.learning import label_key
from tests.servers import AppProcess

TENANT = {"X-Tenant-ID": "acme"}


def acme() -> dict[str, str]:
    """A fresh copy: tritonclient adds its own headers to the dict it is given."""
    return dict(TENANT)


OTHER = {"X-Tenant-ID": "umbrella"}
ADMIN = "k3y-0123456789abcdef"
TRUMP = list(itertools.islice(datasets.TrumpApproval(), 160))
PHISHING = list(itertools.islice(datasets.Phishing(), 160))
TEXTS = [
    ("a great and moving film", "pos"),
    ("dull, slow and far too long", "neg"),
    ("great acting, great story", "pos"),
    ("a slow and dull plot", "neg"),
]
REGRESSOR = {
    "name": "trump",
    "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression", "params": {"l2": 0.0}}],
}
CLASSIFIER = {
    "name": "phish",
    "steps": [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}],
}
TEXT = {"name": "reviews", "steps": [{"kind": "tfidf"}, {"kind": "multinomial_nb"}]}
BOUNDS = {"OIP_MAX_ROWS": "64", "MAX_FEATURES_PER_SAMPLE": "12", "MAX_TEXT_CHARS": "200"}


def learn(http: httpx.Client, name: str, samples: list[tuple[Any, Any]]) -> None:
    body = {"samples": [{"x": x, "y": y} for x, y in samples]}
    assert http.post(f"/api/v1/models/{name}/learn", json=body).status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """One gateway over memory:// with three models of tenant acme (and a version of one)."""
    data = tmp_path_factory.mktemp("oip")
    env = {
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"file://{data / 'registry'}",
        "EVENTS_DIR": str(data / "events"),
        "MAX_BODY_BYTES": "65536",
        **BOUNDS,
    }
    app = AppProcess(env, log=data / "app.log").start()
    with httpx.Client(base_url=app.url, headers=acme()) as http:
        for spec in (REGRESSOR, CLASSIFIER, TEXT):
            assert http.post("/api/v1/models", json=spec).status_code == 201
        learn(http, "trump", TRUMP[:80])
        assert http.post("/api/v1/models/trump/versions", json={}).status_code == 201  # v2
        learn(http, "trump", TRUMP[80:120])  # the live model moves on past version 2
        learn(http, "phish", PHISHING[:100])
        learn(http, "reviews", TEXTS)
    yield app
    app.stop()


@pytest.fixture(scope="module")
def client(server: AppProcess) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture
def http(server: AppProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=acme()) as http:
        yield http


def inputs_of(
    metadata: dict[str, Any], rows: list[dict[str, Any]], binary: bool
) -> list[triton.InferInput]:
    """One InferInput per input the metadata declares, in its order, n rows each."""
    built = []
    for spec in metadata["inputs"]:
        dtype = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}[spec["datatype"]]
        column = np.array([row[spec["name"]] for row in rows], dtype=dtype)
        tensor = triton.InferInput(spec["name"], [len(rows)], spec["datatype"])
        built.append(tensor.set_data_from_numpy(column, binary_data=binary))
    return built


def text_of(label: Any) -> str:
    """A BYTES element as tritonclient hands it back: str from JSON, bytes from binary."""
    return label.decode() if isinstance(label, bytes) else label


def native(http: httpx.Client, name: str, x: Any, **query: str) -> dict[str, Any]:
    response = http.post(f"/api/v1/models/{name}/predict", json={"x": x}, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_server_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_server_metadata() == {
        "name": "online-ml",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }


def test_model_metadata_declares_the_features_learned(
    client: triton.InferenceServerClient,
) -> None:
    assert client.is_model_ready("trump", headers=acme())
    assert client.is_model_ready("trump", "2", headers=acme())
    assert not client.is_model_ready("trump", "9", headers=acme())
    metadata = client.get_model_metadata("trump", headers=acme())
    assert metadata == {
        "name": "trump",
        "versions": ["1", "2"],
        "platform": "river",
        "inputs": [
            {"name": name, "datatype": "INT64" if name == "ordinal_date" else "FP64", "shape": [-1]}
            for name in TRUMP[0][0]
        ],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }
    fresh = client.get_model_metadata("trump", "1", headers=acme())  # never learned a sample
    assert fresh["inputs"] == [] and fresh["outputs"] == metadata["outputs"]
    phish = client.get_model_metadata("phish", headers=acme())
    assert [o["name"] for o in phish["outputs"]] == ["predict", "predict_proba"]
    reviews = client.get_model_metadata("reviews", headers=acme())
    assert reviews["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_regressor_infers_as_our_predict(
    client: triton.InferenceServerClient, http: httpx.Client, binary: bool
) -> None:
    rows = [x for x, _ in TRUMP[120:160]]  # 40 rows: more than a vectorised batch takes
    metadata = client.get_model_metadata("trump", headers=acme())
    result = client.infer(
        "trump", inputs_of(metadata, rows, binary), request_id="q-7", headers=acme()
    )
    answer = result.get_response()
    assert answer["id"] == "q-7" and answer["model_name"] == "trump"
    assert answer["model_version"] == "1" and answer["parameters"]["seq"] == 120
    # each row kept for a delayed label under "{id}:{row}"
    kept = json.loads(answer["parameters"]["prediction_ids"])
    assert kept == [f"q-7:{row}" for row in range(40)]
    predictions = result.as_numpy("predict")
    assert predictions.shape == (40,) and predictions.dtype == np.float64
    assert predictions.tolist() == [native(http, "trump", x)["prediction"] for x in rows]


def test_a_version_path_predicts_with_that_version_frozen(
    client: triton.InferenceServerClient, http: httpx.Client
) -> None:
    rows = [x for x, _ in TRUMP[120:130]]
    metadata = client.get_model_metadata("trump", "2", headers=acme())
    result = client.infer("trump", inputs_of(metadata, rows, True), "2", headers=acme())
    assert result.get_response()["model_version"] == "2"
    pinned = [native(http, "trump", x, version="2")["prediction"] for x in rows]
    live = [native(http, "trump", x)["prediction"] for x in rows]
    assert result.as_numpy("predict").tolist() == pinned != live


def test_a_classifier_answers_labels_and_probabilities(
    client: triton.InferenceServerClient, http: httpx.Client
) -> None:
    rows = [x for x, _ in PHISHING[100:140]]
    metadata = client.get_model_metadata("phish", headers=acme())
    wanted = [triton.InferRequestedOutput("predict"), triton.InferRequestedOutput("predict_proba")]
    result = client.infer("phish", inputs_of(metadata, rows, True), outputs=wanted, headers=acme())
    proba = result.get_output("predict_proba")
    classes = json.loads(proba["parameters"]["classes"])
    assert sorted(classes) == ["false", "true"]
    expected = [native(http, "phish", x) for x in rows]
    labels = [text_of(label) for label in result.as_numpy("predict")]
    assert labels == [label_key(e["prediction"]) for e in expected]
    table = result.as_numpy("predict_proba")
    assert table.shape == (40, 2)
    assert [dict(zip(classes, row, strict=True)) for row in table.tolist()] == [
        e["proba"] for e in expected
    ]


def test_a_text_model_takes_one_bytes_input(
    client: triton.InferenceServerClient, http: httpx.Client
) -> None:
    texts = ["great film", "dull and slow", "a story"]
    tensor = triton.InferInput("text", [3, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=np.object_))
    result = client.infer("reviews", [tensor], headers=acme())
    labels = [text_of(label) for label in result.as_numpy("predict")]
    expected = [native(http, "reviews", t) for t in texts]
    assert labels == [e["prediction"] for e in expected]
    classes = json.loads(result.get_output("predict_proba")["parameters"]["classes"])
    proba = result.as_numpy("predict_proba").tolist()
    assert [dict(zip(classes, row, strict=True)) for row in proba] == [e["proba"] for e in expected]


def test_another_tenant_sees_no_model(client: triton.InferenceServerClient) -> None:
    assert not client.is_model_ready("trump", headers={**OTHER})
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_metadata("trump", headers={**OTHER})
    assert raised.value.status() == "404"
    assert raised.value.message() == "model 'trump' does not exist for this tenant"
    tensor = triton.InferInput("gallup", [1], "FP64").set_data_from_numpy(np.array([1.0]))
    with pytest.raises(InferenceServerException) as raised:
        client.infer("trump", [tensor], headers={**OTHER})
    assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_metadata("trump")  # no X-Tenant-ID at all
    assert raised.value.status() == "400"


ONE = [{"name": "gallup", "datatype": "FP64", "shape": [1], "data": [43.8]}]


def infer_body(inputs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"inputs": inputs, **extra}


BAD = [
    ("not json", b"{", 400, "not valid JSON"),
    ("no inputs", {"inputs": []}, 400, "inputs must be a non-empty list"),
    ("bad id", infer_body(ONE, id="a b"), 400, "id must be"),
    ("bad datatype", infer_body([{**ONE[0], "datatype": "FP8"}]), 400, "datatype must be"),
    ("bad shape", infer_body([{**ONE[0], "shape": [1, 2]}]), 400, "shape must be"),
    ("short data", infer_body([{**ONE[0], "shape": [2]}]), 400, "data holds 1"),
    ("text in FP64", infer_body([{**ONE[0], "data": ["x"]}]), 400, "is not a FP64 value"),
    ("string feature", infer_body([{**ONE[0], "datatype": "BYTES", "data": ["x"]}]), 400, "text"),
    ("unknown output", infer_body(ONE, outputs=[{"name": "predict_proba"}]), 400, "does not exist"),
    ("huge value", infer_body([{**ONE[0], "data": [1e300]}]), 400, "MAX_ABS_VALUE"),
    (
        "rows over OIP_MAX_ROWS",
        infer_body([{**ONE[0], "shape": [65], "data": [1.0] * 65}]),
        400,
        "OIP_MAX_ROWS is 64",
    ),
    (
        "inputs over MAX_FEATURES_PER_SAMPLE",
        infer_body([{**ONE[0], "name": f"f{i}"} for i in range(13)]),
        400,
        "MAX_FEATURES_PER_SAMPLE is 12",
    ),
    ("body over MAX_BODY_BYTES", infer_body([{**ONE[0], "name": "n" * 70_000}]), 413, "MAX_BODY"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_refused_in_oip_shape_and_changes_nothing(
    http: httpx.Client, body: Any, status: int, message: str
) -> None:
    before = http.get("/api/v1/models/trump").json()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = http.post("/v2/models/trump/infer", content=content)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error"} and isinstance(error["error"], str)
    assert message in error["error"]
    assert http.get("/api/v1/models/trump").json() == before


def test_unknown_models_versions_and_text_bounds(http: httpx.Client) -> None:
    for path, status in [
        ("/v2/models/nope", 404),
        ("/v2/models/nope/ready", 404),
        ("/v2/models/trump/versions/9", 404),
        ("/v2/models/trump/versions/x", 400),
        ("/v2/nothing", 404),
    ]:
        response = http.get(path)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()) == {"error"}
    long_text = {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a" * 201]}]
    }
    response = http.post("/v2/models/reviews/infer", json=long_text)
    assert response.status_code == 400 and "MAX_TEXT_CHARS is 200" in response.json()["error"]


def test_tenant_keys_apply_to_the_model_routes(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("oip-keys")
    env = {
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"file://{data / 'registry'}",
        "EVENTS_DIR": str(data / "events"),
        "TENANT_AUTH": "keys",
        "ADMIN_API_KEY": ADMIN,
    }
    app = AppProcess(env, log=data / "app.log").start()
    try:
        with httpx.Client(base_url=app.url, headers=acme()) as http:
            key = http.post("/api/v1/admin/tenants/acme/keys", headers={"X-API-Key": ADMIN}).json()[
                "key"
            ]
            keyed = {**TENANT, "X-Tenant-Key": key}
            assert http.post("/api/v1/models", json=REGRESSOR, headers=keyed).status_code == 201
            assert http.get("/v2/health/ready").status_code == 200  # no tenant, no key
            refused = http.get("/v2/models/trump")
            assert refused.status_code == 401 and set(refused.json()) == {"error"}
            wrong = http.get("/v2/models/trump", headers={"X-Tenant-Key": key + "x"})
            assert wrong.status_code in (401, 403) and set(wrong.json()) == {"error"}
            assert http.get("/v2/models/trump", headers=keyed).status_code == 200
            body = {"inputs": ONE}
            assert http.post("/v2/models/trump/infer", json=body, headers=keyed).status_code == 200
    finally:
        app.stop()


def test_infer_rows_are_labelled_later_and_learned_exactly(
    client: triton.InferenceServerClient, http: httpx.Client
) -> None:
    """An OIP client labels rows of an earlier infer by "{id}:{row}" (delayed labels): the
    model learns the features kept at infer time, exactly as River does in-process."""
    spec = {**REGRESSOR, "name": "trump-labels"}
    assert http.post("/api/v1/models", json=spec).status_code == 201
    learn(http, "trump-labels", TRUMP[:40])
    rows = TRUMP[40:45]
    metadata = client.get_model_metadata("trump-labels", headers=acme())
    inputs = inputs_of(metadata, [x for x, _ in rows], True)
    client.infer("trump-labels", inputs, request_id="day-1", headers=acme())
    labels = [{"prediction_id": f"day-1:{row}", "y": rows[row][1]} for row in (0, 2, 4)]
    labelled = http.post("/api/v1/models/trump-labels/labels", json={"labels": labels})
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["learned"] == 3

    reference = preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)
    for x, y in [*TRUMP[:40], rows[0], rows[2], rows[4]]:
        reference.learn_one(x, y)
    probe = TRUMP[50][0]
    assert native(http, "trump-labels", probe)["prediction"] == reference.predict_one(probe)
