"""Schema checks of infra/k8s, run in .venv-deploy (kubernetes-validate, jsonschema):

    python -m deploy.k8s_validate kubernetes-validate [--k8s-dir DIR]
    python -m deploy.k8s_validate knative-schema [--k8s-dir DIR]

kubernetes-validate: every core object (strict, against the Kubernetes version k3d runs), and
each Knative Service's pod template as a Pod. knative-schema: every Knative Service against
deploy/schemas/knative-service.schema.json. Prints a summary line, then one line per problem;
exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from deploy.manifests import K8S_DIR, ROOT, is_knative, k8s_documents, knative_pod_spec

SCHEMA = ROOT / "deploy" / "schemas" / "knative-service.schema.json"
EVENTING_SCHEMA = ROOT / "deploy" / "schemas" / "knative-eventing.schema.json"
# Knative Eventing custom resources (the optional overlay infra/k8s/eventing): checked against
# EVENTING_SCHEMA by knative-schema; kubernetes-validate knows no CRD, so it leaves them.
EVENTING_KINDS = {
    ("eventing.knative.dev/v1", "Broker"),
    ("eventing.knative.dev/v1", "Trigger"),
    ("sources.knative.dev/v1beta1", "KafkaSource"),
}
K8S_VERSION = "1.32.0"  # the Kubernetes minor of k3s in scripts/k3d_up.sh
CORE_KINDS = {
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "NetworkPolicy",
}
GROUP_COUNT = 6


def validate_core(k8s_dir: Path) -> tuple[str, list[str]]:
    import kubernetes_validate

    checked: dict[str, int] = {}
    problems = []
    for doc in k8s_documents(k8s_dir):
        kind = doc.get("kind")
        name = (doc.get("metadata") or {}).get("name")
        if is_knative(doc):
            doc = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": doc["metadata"].get("namespace")},
                "spec": knative_pod_spec(doc),
            }
            kind = "Pod(Knative template)"
        elif is_eventing(doc):
            continue
        elif kind not in CORE_KINDS:
            problems.append(f"{kind}/{name}: not a kind this check knows")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{kind}/{name}: {exc.message} at {'/'.join(map(str, exc.path))}")
        checked[kind] = checked.get(kind, 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(checked.items()))
    return f"Kubernetes {K8S_VERSION} strict schemas: {counts}", problems


def is_eventing(doc: dict[str, object]) -> bool:
    return (doc.get("apiVersion"), doc.get("kind")) in EVENTING_KINDS


def _validator(path: Path) -> Any:  # a jsonschema validator (jsonschema: .venv-deploy only)
    import jsonschema

    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_knative(k8s_dir: Path) -> tuple[str, list[str]]:
    services, eventing = _validator(SCHEMA), _validator(EVENTING_SCHEMA)
    problems, names, counts = [], [], {}
    for doc in k8s_documents(k8s_dir):
        name = (doc.get("metadata") or {}).get("name")
        if str(doc.get("apiVersion", "")).startswith("serving.knative.dev/"):
            validator = services
            names.append(name)
        elif str(doc.get("apiVersion", "")).startswith(
            ("eventing.knative.dev/", "sources.knative.dev/")
        ):
            validator = eventing
            counts[doc.get("kind")] = counts.get(doc.get("kind"), 0) + 1
        else:
            continue
        for error in validator.iter_errors(doc):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{name}: {where}: {error.message}")
    if len(names) != GROUP_COUNT:
        problems.append(f"expected {GROUP_COUNT} Knative Services, found {len(names)}")
    for kind in sorted({kind for _, kind in EVENTING_KINDS} - set(counts)):
        problems.append(f"no {kind} under {k8s_dir} (infra/k8s/eventing)")
    eventing_counts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return (
        f"{len(names)} Knative Services against {SCHEMA.relative_to(ROOT)}; "
        f"{eventing_counts} against {EVENTING_SCHEMA.relative_to(ROOT)}",
        problems,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=["kubernetes-validate", "knative-schema"])
    parser.add_argument("--k8s-dir", type=Path, default=K8S_DIR)
    args = parser.parse_args(argv)
    run = validate_core if args.check == "kubernetes-validate" else validate_knative
    summary, problems = run(args.k8s_dir)
    print(summary)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
