"""Push ingestion deployed on both platforms: the Pub/Sub push subscription (Terraform) and
the Knative Broker, Triggers and KafkaSource (infra/k8s/eventing) deliver the table's event
types to the ingest function's /api/v1/events with the same attempts and backoff; editing
one side alone is caught. And the cluster settings reach both platforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deploy import parity, render
from shared import push_ingest
from tests.deploy.conftest import ROOT, edit
from tests.deploy.test_tools import _k8s_validate, needs_tools

TF, EVENTING = "infra/terraform", "infra/k8s/eventing"


def test_the_table_names_the_types_the_function_accepts() -> None:
    table = render.load_table()
    accepted = {push_ingest.OBSERVATION, push_ingest.SAMPLE, push_ingest.LABEL}
    assert set(table["push"]["event_types"]) == accepted
    assert table["push"]["function"] == "ingest" and table["push"]["path"] == "/api/v1/events"


def test_both_sides_deliver_to_ingest_events() -> None:
    terraform = parity.terraform_push()
    knative = parity.knative_push()
    assert terraform == {
        "function": "ingest",
        "path": "/api/v1/events",
        "oidc": True,
        "max_delivery_attempts": 5,
        "min_backoff_seconds": 1,
        "filter": None,
    }
    assert sorted(t["type"] for t in knative["triggers"].values()) == sorted(
        render.load_table()["push"]["event_types"]
    )
    for entry in [*knative["triggers"].values(), *knative["sources"].values()]:
        assert entry["function"] == "ingest" and entry["path"] == "/api/v1/events"
        assert entry["max_delivery_attempts"] == 5 and entry["min_backoff_seconds"] == 1
    assert knative["problems"] == []


ONE_SIDED = [
    pytest.param(
        f"{EVENTING}/triggers.yaml",
        "uri: /api/v1/events",
        "uri: /api/v1/event",
        "path: terraform '/api/v1/events' != knative '/api/v1/event'",
        id="trigger-path",
    ),
    pytest.param(
        f"{EVENTING}/kafka/kafka-source.yaml",
        "name: online-ml-ingest\n    uri",
        "name: online-ml-train\n    uri",
        "function: terraform 'ingest' != knative 'train'",
        id="kafka-sink-function",
    ),
    pytest.param(
        f"{EVENTING}/triggers.yaml",
        "type: io.onlineml.label",
        "type: io.onlineml.labels",
        "Trigger types",
        id="trigger-type",
    ),
    pytest.param(
        f"{EVENTING}/broker.yaml",
        "name: online-ml\n",
        "name: online-ml-other\n",
        "Broker online-ml is not defined",
        id="broker-renamed",
    ),
    pytest.param(
        f"{TF}/functions.auto.tfvars.json",
        '"max_delivery_attempts": 5',
        '"max_delivery_attempts": 7',
        "max_delivery_attempts: terraform 7 != knative 5",
        id="tf-attempts",
    ),
    pytest.param(
        f"{TF}/pubsub.tf",
        "${var.push.path}",
        "/api/v1/events/",
        "path: terraform '/api/v1/events/' != knative '/api/v1/events'",
        id="tf-path",
    ),
    pytest.param(
        f"{TF}/pubsub.tf",
        "  topic = google_pubsub_topic.events.id\n",
        '  topic  = google_pubsub_topic.events.id\n  filter = "attributes.type = \\"x\\""\n',
        "a filter would drop events unseen",
        id="tf-filter",
    ),
    pytest.param(
        f"{TF}/pubsub.tf",
        "    oidc_token {",
        "    no_wrapper {\n      write_metadata = true\n    }\n    dynamic_oidc {",
        "no oidc_token",
        id="tf-no-oidc",
    ),
]


@pytest.mark.parametrize(("rel", "old", "new", "expected"), ONE_SIDED)
def test_one_sided_edit_is_caught(
    deploy_copy: Path, rel: str, old: str, new: str, expected: str
) -> None:
    assert parity.check(deploy_copy / TF, deploy_copy / "infra/k8s") == []
    edit(deploy_copy / rel, old, new)
    problems = parity.check(deploy_copy / TF, deploy_copy / "infra/k8s")
    assert any(expected in p for p in problems), problems


def test_the_base_stays_applicable_without_eventing_crds() -> None:
    """The base kustomization lists no Eventing resource: it applies on Knative Serving alone."""
    base = yaml.safe_load((ROOT / "infra/k8s/kustomization.yaml").read_text())
    assert not [r for r in base["resources"] if r.startswith("eventing")]
    overlay = yaml.safe_load((ROOT / EVENTING / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["broker.yaml", "triggers.yaml"]


def test_cluster_settings_reach_both_platforms() -> None:
    terraform = parity.terraform_side()
    knative, _ = parity.knative_side()
    for group in parity.GROUPS:
        for side in (terraform[group]["env"], knative[group]["env"]):
            assert side["STATE_MIN_REPLICAS"] == side["EVENTS_REPLICAS"] == ("platform",)
            assert side["STATE_REPLICA_TIMEOUT_MS"] == ("literal", "500")
    k3d = render.load_table()["k3d"]["platform_env"]
    assert (k3d["STATE_MIN_REPLICAS"], k3d["EVENTS_REPLICAS"]) == ("0", "1")  # one of each
    tfvars = json.loads((ROOT / TF / "functions.auto.tfvars.json").read_text())
    assert {"STATE_MIN_REPLICAS", "EVENTS_REPLICAS"} <= set(tfvars["platform_env_keys"])


def test_cloud_run_state_url_is_the_valkey_cluster_by_default() -> None:
    tf = parity.parse_terraform(ROOT / TF)
    state_url = tf["locals"]["state_url"]
    assert "redis+cluster://" in state_url and "var.redis_url" in state_url
    instance = tf["resources"]["google_memorystore_instance"]["state"]
    assert instance["replica_count"] == "${var.valkey_cluster.replica_count}"


@needs_tools
@pytest.mark.parametrize(
    ("rel", "old", "new", "expected"),
    [
        (f"{EVENTING}/triggers.yaml", "subscriber:", "subscribers:", "subscribers"),
        (f"{EVENTING}/triggers.yaml", "backoffPolicy: exponential", "backoffPolicy: fast", "fast"),
        (f"{EVENTING}/broker.yaml", "backoffDelay: PT1S", "backoffDelay: 1s", "does not match"),
        (
            f"{EVENTING}/kafka/kafka-source.yaml",
            "initialOffset: earliest",
            "initialOffset: first",
            "first",
        ),
    ],
)
def test_eventing_schema_rejects(
    deploy_copy: Path, rel: str, old: str, new: str, expected: str
) -> None:
    k8s = deploy_copy / "infra" / "k8s"
    assert _k8s_validate("knative-schema", k8s).returncode == 0
    edit(deploy_copy / rel, old, new)
    result = _k8s_validate("knative-schema", k8s)
    assert result.returncode == 1 and expected in result.stdout, result.stdout
