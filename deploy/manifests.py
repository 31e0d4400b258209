"""The Kubernetes manifests of infra/k8s as documents (PyYAML only: importable in both venvs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT / "infra" / "k8s"
KNATIVE_ONLY_FIELDS = ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds")


def k8s_documents(k8s_dir: Path = K8S_DIR) -> list[dict[str, Any]]:
    """Every object under k8s_dir (recursively), kustomization.yaml excluded."""
    docs = []
    for path in sorted(k8s_dir.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                docs.append(doc)
    return docs


def is_knative(doc: dict[str, Any]) -> bool:
    return doc.get("apiVersion") == "serving.knative.dev/v1" and doc.get("kind") == "Service"


def knative_pod_spec(service: dict[str, Any]) -> dict[str, Any]:
    """A Knative Service's revision template as the core PodSpec Knative runs: Knative-only
    fields dropped, and probe ports defaulted to the container port as Knative does."""
    spec = copy.deepcopy(service["spec"]["template"]["spec"])
    for field in KNATIVE_ONLY_FIELDS:
        spec.pop(field, None)
    for container in spec.get("containers", []):
        port = (container.get("ports") or [{}])[0].get("containerPort", 8080)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            action = (container.get(kind) or {}).get("httpGet")
            if action is not None:
                action.setdefault("port", port)
    return spec


def knative_as_deployment(service: dict[str, Any]) -> dict[str, Any]:
    """What Knative makes of the Service (a Deployment of its pod template), for checkov."""
    meta = service["metadata"]
    template = service["spec"]["template"]
    labels = template["metadata"]["labels"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta.get("labels", {}),
            "annotations": meta.get("annotations", {}),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": knative_pod_spec(service)},
        },
    }
