"""Terraform (Cloud Run) and Knative (k3d) describe the same six function groups, read each
from its own files; and editing either side alone is caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy import parity
from tests.deploy.conftest import edit

FIELDS = (
    "service_name",
    "image",
    "service_account",
    "concurrency",
    "min_scale",
    "max_scale",
    "timeout_seconds",
    "port",
    "limits",
    "env",
)


@pytest.fixture(scope="module")
def sides() -> tuple[dict[str, Any], dict[str, Any]]:
    knative, problems = parity.knative_side()
    assert problems == []
    return parity.terraform_side(), knative


def test_no_differences() -> None:
    assert parity.check() == []


@pytest.mark.parametrize("group", parity.GROUPS)
@pytest.mark.parametrize("field", FIELDS)
def test_group_field_agrees(
    sides: tuple[dict[str, Any], dict[str, Any]], group: str, field: str
) -> None:
    terraform, knative = sides
    assert terraform[group][field] == knative[group][field]


@pytest.mark.parametrize("group", parity.GROUPS)
def test_probes_agree(sides: tuple[dict[str, Any], dict[str, Any]], group: str) -> None:
    terraform, knative = sides
    tf, kn = terraform[group]["probes"], knative[group]["probes"]
    assert set(tf) == {"startup", "liveness"}  # the GA provider has no readiness_probe
    assert set(kn) == {"startup", "liveness", "readiness"}
    assert {k: kn[k] for k in tf} == tf
    assert tf["startup"]["path"] == tf["liveness"]["path"] == "/health"
    assert kn["readiness"]["path"] == "/ready"


def test_what_is_compared(sides: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Not vacuous: the values are the real ones, with every env key classified."""
    terraform, _ = sides
    predict = terraform["predict"]
    assert predict["image"] == "online-ml-functions:0.1.0"
    assert predict["service_account"] == "ml-functions"
    assert (predict["concurrency"], predict["min_scale"], predict["max_scale"]) == (80, 1, 50)
    env = predict["env"]
    assert env["FUNCTION_SOURCE"] == ("literal", "functions/predict/main.py")
    assert env["ENV"] == ("literal", "prod")
    assert env["STATE_URL"] == env["MODEL_REGISTRY_URI"] == env["NATS_URL"] == ("platform",)
    assert env["ADMIN_API_KEY"] == ("secret",)
    assert terraform["batch"]["env"]["WORKERS"] == ("literal", "2")


TF, K8S = "infra/terraform", "infra/k8s"

# (file, old, new, substring the report must contain): one side edited, the other not.
ONE_SIDED_EDITS = [
    pytest.param(
        f"{K8S}/functions/predict.yaml",
        "containerConcurrency: 80",
        "containerConcurrency: 70",
        "predict: concurrency: terraform 80 != knative 70",
        id="knative-concurrency",
    ),
    pytest.param(
        f"{K8S}/functions/train.yaml",
        "min-scale: '0'",
        "min-scale: '2'",
        "train: min_scale: terraform 0 != knative 2",
        id="knative-min-scale",
    ),
    pytest.param(
        f"{K8S}/functions/ingest.yaml",
        "max-scale: '10'",
        "max-scale: '3'",
        "ingest: max_scale",
        id="knative-max-scale",
    ),
    pytest.param(
        f"{K8S}/functions/activate.yaml",
        "online-ml-functions:0.1.0",
        "online-ml-functions:0.2.0",
        "activate: image",
        id="knative-image",
    ),
    pytest.param(
        f"{K8S}/functions/batch.yaml",
        "value: INFO",
        "value: DEBUG",
        "batch: env LOG_LEVEL: terraform ('literal', 'INFO') != knative ('literal', 'DEBUG')",
        id="knative-env-value",
    ),
    pytest.param(
        f"{K8S}/functions/monitoring.yaml",
        "        - name: N_LAGS\n          value: '12'\n",
        "",
        "monitoring: env N_LAGS: terraform ('literal', '12') != knative None",
        id="knative-env-removed",
    ),
    pytest.param(
        f"{K8S}/functions/predict.yaml",
        "serviceAccountName: ml-functions",
        "serviceAccountName: default",
        "predict: service_account",
        id="knative-service-account",
    ),
    pytest.param(
        f"{K8S}/functions/predict.yaml",
        "path: /health\n          initialDelaySeconds: 0\n          periodSeconds: 15",
        "path: /healthz\n          initialDelaySeconds: 0\n          periodSeconds: 15",
        "predict: liveness probe",
        id="knative-probe",
    ),
    pytest.param(
        f"{K8S}/platform-config.yaml",
        "  NATS_URL: nats://nats:4222\n",
        "",
        "ConfigMap online-ml-platform has no NATS_URL",
        id="knative-configmap-key",
    ),
    pytest.param(
        f"{TF}/functions.auto.tfvars.json",
        '"max_scale": 50',
        '"max_scale": 40',
        "predict: max_scale: terraform 40 != knative 50",
        id="terraform-tfvars",
    ),
    pytest.param(
        f"{TF}/functions.auto.tfvars.json",
        '"timeout_seconds": 60,',
        '"timeout_seconds": 90,',
        "timeout_seconds: terraform 90 != knative 60",
        id="terraform-timeout",
    ),
    pytest.param(
        f"{TF}/services.tf",
        "path = var.probes.startup.path",
        'path = "/ready"',
        "startup probe: terraform {'path': '/ready'",
        id="terraform-probe",
    ),
    pytest.param(
        f"{TF}/services.tf",
        "max_instance_request_concurrency = each.value.concurrency",
        "max_instance_request_concurrency = 1",
        "concurrency: terraform 1 != knative",
        id="terraform-concurrency-literal",
    ),
    pytest.param(
        f"{TF}/services.tf",
        '      dynamic "env" {\n        for_each = merge(',
        '      env {\n        name  = "EXTRA"\n        value = "1"\n      }\n\n'
        '      dynamic "env" {\n        for_each = merge(',
        "env EXTRA: terraform ('literal', '1') != knative None",
        id="terraform-env-added",
    ),
    pytest.param(
        f"{TF}/main.tf",
        "    TRAIN_JOB_REGION     = var.region\n",
        "    TRAIN_JOB_REGION     = var.region\n    LOG_FORMAT           = var.region\n",
        "env LOG_FORMAT: terraform ('platform',) != knative None",
        id="terraform-platform-env",
    ),
    pytest.param(
        f"{TF}/services.tf",
        "service_account                  = google_service_account.functions.email",
        'service_account                  = "other@x.iam"',
        "service_account: terraform 'other@x.iam' != knative 'ml-functions'",
        id="terraform-service-account",
    ),
    pytest.param(
        f"{TF}/main.tf",
        '"${var.image_registry}/${var.image_name}:${var.image_tag}"',
        '"${var.image_registry}/${var.image_name}:latest"',
        "image: terraform",
        id="terraform-image",
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "expected"), ONE_SIDED_EDITS)
def test_one_sided_edit_is_reported(
    deploy_copy: Path, path: str, old: str, new: str, expected: str
) -> None:
    assert parity.check(deploy_copy / TF, deploy_copy / K8S) == []  # the copy agrees
    edit(deploy_copy / path, old, new)
    problems = parity.check(deploy_copy / TF, deploy_copy / K8S)
    assert any(expected in p for p in problems), problems


def test_missing_group_is_reported(deploy_copy: Path) -> None:
    (deploy_copy / K8S / "functions" / "monitoring.yaml").unlink()
    assert "knative: no service for monitoring" in parity.check(deploy_copy / TF, deploy_copy / K8S)


def test_unparsable_terraform_is_reported(deploy_copy: Path) -> None:
    edit(deploy_copy / TF / "services.tf", "for_each = var.functions", "for_each = = {")
    assert parity.check(deploy_copy / TF, deploy_copy / K8S)[0].startswith("services.tf")


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert parity.main() == 0
    assert "agree for train, predict, batch, activate, monitoring, ingest" in (
        capsys.readouterr().out
    )
