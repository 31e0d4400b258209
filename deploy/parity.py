"""Parity of the two deployments: Terraform (Cloud Run) and Knative (k3d) must describe the
same six function groups with the same image, env (keys and literal values), concurrency,
scale bounds, timeout, resource limits, probes and service account.

Each side is read from its own files, not from deploy/functions.yaml: the Terraform side by
parsing every *.tf with python-hcl2 and evaluating the few expression forms the services use
(var., local., each., merge(), string interpolation) against the variables' defaults and
*.auto.tfvars.json; the Knative side from the YAML manifests. An env var is `literal` when
its value is a constant, `platform` when bound to the platform (a Terraform variable or
resource; a ConfigMap key on k3d) and `secret` when it comes from a secret store.

    python -m deploy.parity     exit 1, naming every difference, if the two sides disagree
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

from deploy.manifests import K8S_DIR, is_knative, k8s_documents

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = ROOT / "infra" / "terraform"
GROUPS = ("train", "predict", "batch", "activate", "monitoring", "ingest")
# The GA google provider has no readiness_probe on google_cloud_run_v2_service (Cloud Run
# routes to an instance once its startup probe passes): the one difference allowed.
KNATIVE_ONLY_PROBES = frozenset({"readiness"})
PROBE_DEFAULTS = {  # the same defaults on Cloud Run and Kubernetes
    "initial_delay_seconds": 0,
    "period_seconds": 10,
    "timeout_seconds": 1,
    "failure_threshold": 3,
}
SERVICE_TYPE = "google_cloud_run_v2_service"
HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)

_SEGMENT = re.compile(r"\$\{([^{}]+)\}")
_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)
_TOKEN = re.compile(r"\[\"?([^\]\"]+)\"?\]|\.?([A-Za-z_][\w-]*)")


class ParityError(ValueError):
    """A side cannot be read in the shape parity expects (named in the message)."""


class Unresolved(LookupError):
    """An expression depends on something only known at apply time."""


# ---------------------------------------------------------------------------------------
# Terraform side
# ---------------------------------------------------------------------------------------


def _items(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge hcl2's list-of-single-key-dicts (variable, locals, resource type/name)."""
    out: dict[str, Any] = {}
    for block in blocks:
        out.update(block)
    return out


def parse_terraform(tf_dir: Path) -> dict[str, Any]:
    """variables (defaults overlaid by *.auto.tfvars.json), locals and resources of a dir."""
    variables: dict[str, Any] = {}
    locals_: dict[str, Any] = {}
    resources: dict[str, dict[str, Any]] = {}
    files = sorted(tf_dir.glob("*.tf"))
    if not files:
        raise ParityError(f"no *.tf files in {tf_dir}")
    for path in files:
        try:
            doc = hcl2.load(path.open(), serialization_options=HCL_OPTIONS)
        except Exception as exc:  # lark raises many types; name the file
            raise ParityError(f"{path.name}: cannot parse HCL: {exc}") from None
        for name, spec in _items(doc.get("variable", [])).items():
            if "default" in spec:
                variables[name] = spec["default"]
        for block in doc.get("locals", []):
            locals_.update(block)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                resources.setdefault(rtype, {}).update(named)
    for path in sorted(tf_dir.glob("*.auto.tfvars.json")):
        variables.update(json.loads(path.read_text()))
    return {"variables": variables, "locals": locals_, "resources": resources}


def _split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    args.append(text[start:].strip())
    return [a for a in args if a]


class Scope:
    """Evaluates the expression forms the service definitions use; anything else (resource
    attributes, unset variables, other functions) is Unresolved and kept as text."""

    def __init__(self, tf: dict[str, Any], **bindings: Any) -> None:
        self.tf = tf
        self.bindings = bindings

    def bind(self, **bindings: Any) -> Scope:
        return Scope(self.tf, **{**self.bindings, **bindings})

    def lookup(self, path: str) -> Any:
        tokens = [a or b for a, b in _TOKEN.findall(path)]
        if not tokens or "".join(tokens) != re.sub(r"[.\[\]\"]", "", path):
            raise Unresolved(path)
        head, rest = tokens[0], tokens[1:]
        if head in self.bindings:
            value = self.bindings[head]
        elif head in ("var", "local") and rest:
            table = self.tf["variables"] if head == "var" else self.tf["locals"]
            if rest[0] not in table:
                raise Unresolved(path)
            value, rest = table[rest[0]], rest[1:]
        else:
            raise Unresolved(path)
        for token in rest:
            if not isinstance(value, dict) or token not in value:
                raise Unresolved(path)
            value = value[token]
        return value

    def raw(self, expression: str) -> Any:
        """One step: a reference's stored value, or merge() of stored maps (not resolved)."""
        expression = expression.strip()
        call = _CALL.match(expression)
        if call:
            if call.group(1) != "merge":
                raise Unresolved(expression)
            merged: dict[str, Any] = {}
            for arg in _split_args(call.group(2)):
                part = self.raw(arg)
                if isinstance(part, str) and _SEGMENT.fullmatch(part):
                    part = self.raw(_SEGMENT.fullmatch(part).group(1))
                if not isinstance(part, dict):
                    raise Unresolved(arg)
                merged.update(part)
            return merged
        return self.lookup(expression)

    def resolve(self, value: Any, deep: bool = True) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v, deep) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, deep) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _SEGMENT.fullmatch(value)
        if whole:
            try:
                result = self.raw(whole.group(1))
            except Unresolved:
                return value
            return self.resolve(result, deep) if deep else result

        def substitute(match: re.Match[str]) -> str:
            try:
                result = self.resolve(self.raw(match.group(1)))
            except Unresolved:
                return match.group(0)
            if isinstance(result, (dict, list)):
                return match.group(0)
            return str(result).lower() if isinstance(result, bool) else str(result)

        return _SEGMENT.sub(substitute, value)


def _one(block: Any, what: str) -> dict[str, Any]:
    if isinstance(block, list) and len(block) == 1 and isinstance(block[0], dict):
        return block[0]
    raise ParityError(f"terraform: expected exactly one {what} block")


def _classify(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str) and "${" in raw:
        return ("platform",)
    if isinstance(raw, bool):
        return ("literal", str(raw).lower())
    return ("literal", str(raw))


def _tf_env(scope: Scope, container: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    env: dict[str, tuple[str, ...]] = {}

    def add(name: Any, entry: dict[str, Any], item_scope: Scope) -> None:
        name = item_scope.resolve(name)
        if not isinstance(name, str) or "${" in name:
            raise ParityError(f"terraform: env name {name!r} is not known before apply")
        if name in env:
            raise ParityError(f"terraform: env {name} is set twice")
        if "value_source" in entry:
            env[name] = ("secret",)
        else:
            env[name] = _classify(item_scope.resolve(entry.get("value", ""), deep=False))

    for entry in container.get("env", []):
        add(entry.get("name"), entry, scope)
    for dynamic in container.get("dynamic", []):
        if "env" not in dynamic:
            continue
        block = dynamic["env"]
        iterator = block.get("iterator", "env")
        for_each = block.get("for_each", "")
        whole = _SEGMENT.fullmatch(for_each) if isinstance(for_each, str) else None
        try:
            items = scope.raw(whole.group(1)) if whole else for_each
        except Unresolved:
            raise ParityError(f"terraform: dynamic env over {for_each!r} is not known") from None
        if not isinstance(items, dict):
            raise ParityError(f"terraform: dynamic env over {for_each!r} is not a map")
        content = _one(block.get("content"), "dynamic env content")
        for key, value in items.items():
            add(
                content.get("name"), content, scope.bind(**{iterator: {"key": key, "value": value}})
            )
    return dict(sorted(env.items()))


def _tf_probe(scope: Scope, block: Any, what: str) -> dict[str, Any]:
    probe = _one(block, what)
    http_get = _one(probe.get("http_get"), f"{what}.http_get")
    out = {"path": scope.resolve(http_get.get("path"))}
    for field, default in PROBE_DEFAULTS.items():
        out[field] = scope.resolve(probe.get(field, default))
    return out


def _service_account_id(scope: Scope, tf: dict[str, Any], expression: Any) -> Any:
    match = re.fullmatch(r"\$\{google_service_account\.([\w-]+)\.email\}", str(expression))
    if not match:
        return scope.resolve(expression)
    account = tf["resources"].get("google_service_account", {}).get(match.group(1))
    if account is None:
        raise ParityError(f"terraform: google_service_account.{match.group(1)} is not defined")
    return scope.resolve(account.get("account_id"))


def _image_ref(image: Any) -> str:
    """name:tag (or @digest) of an image reference, without the registry path."""
    return str(image).rsplit("/", 1)[-1]


def _seconds(value: Any) -> Any:
    text = str(value)
    return int(text[:-1]) if re.fullmatch(r"\d+s", text) else value


def terraform_side(tf_dir: Path = TERRAFORM_DIR) -> dict[str, dict[str, Any]]:
    """Per group, what the Cloud Run service resource would be created with."""
    tf = parse_terraform(tf_dir)
    services = tf["resources"].get(SERVICE_TYPE, {})
    if len(services) != 1:
        raise ParityError(f"terraform: expected one {SERVICE_TYPE} resource with for_each")
    body = next(iter(services.values()))
    scope = Scope(tf)
    groups = scope.resolve(body.get("for_each"), deep=False)
    if not isinstance(groups, dict):
        raise ParityError(f"terraform: for_each of {SERVICE_TYPE} is not a known map")
    out = {}
    for group, spec in groups.items():
        each = scope.bind(each={"key": group, "value": spec})
        template = _one(body.get("template"), "template")
        scaling = _one(template.get("scaling"), "template.scaling")
        container = _one(template.get("containers"), "template.containers")
        ports = container.get("ports") or [{}]
        resources = _one(container.get("resources", [{}]), "containers.resources")
        probes = {
            kind: _tf_probe(each, container[f"{kind}_probe"], f"{kind}_probe")
            for kind in ("startup", "liveness", "readiness")
            if f"{kind}_probe" in container
        }
        out[group] = {
            "service_name": each.resolve(body.get("name")),
            "image": _image_ref(each.resolve(container.get("image"))),
            "service_account": _service_account_id(each, tf, template.get("service_account")),
            "concurrency": each.resolve(template.get("max_instance_request_concurrency")),
            "min_scale": each.resolve(scaling.get("min_instance_count")),
            "max_scale": each.resolve(scaling.get("max_instance_count")),
            "timeout_seconds": _seconds(each.resolve(template.get("timeout"))),
            "port": each.resolve(ports[0].get("container_port", 8080)),
            "limits": each.resolve(resources.get("limits", {})),
            "env": _tf_env(each, container),
            "probes": probes,
        }
    return out


# ---------------------------------------------------------------------------------------
# Knative side
# ---------------------------------------------------------------------------------------


def _k8s_probe(probe: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": (probe.get("httpGet") or {}).get("path"),
        "initial_delay_seconds": probe.get("initialDelaySeconds", 0),
        "period_seconds": probe.get("periodSeconds", 10),
        "timeout_seconds": probe.get("timeoutSeconds", 1),
        "failure_threshold": probe.get("failureThreshold", 3),
    }


def knative_side(k8s_dir: Path = K8S_DIR) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per group, the Knative Service; plus references that do not resolve in k8s_dir."""
    try:
        docs = k8s_documents(k8s_dir)
    except yaml.YAMLError as exc:
        raise ParityError(f"knative: cannot parse YAML: {exc}") from None
    index = {(d.get("kind"), (d.get("metadata") or {}).get("name")): d for d in docs}
    problems: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        if not is_knative(doc):
            continue
        meta = doc.get("metadata") or {}
        group = (meta.get("labels") or {}).get("app.kubernetes.io/component")
        if group in out or group is None:
            problems.append(f"knative {meta.get('name')}: missing or duplicate component label")
            continue
        template = (doc.get("spec") or {}).get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        spec = template.get("spec") or {}
        containers = spec.get("containers") or [{}]
        container = containers[0]
        env: dict[str, tuple[str, ...]] = {}
        for entry in container.get("env", []):
            name, source = entry["name"], entry.get("valueFrom") or {}
            if name in env:
                problems.append(f"knative {group}: env {name} is set twice")
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                data = (index.get(("ConfigMap", ref["name"])) or {}).get("data") or {}
                if ref["key"] not in data:
                    problems.append(f"knative {group}: ConfigMap {ref['name']} has no {ref['key']}")
                env[name] = ("platform",)
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = index.get(("Secret", ref["name"])) or {}
                keys = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
                if ref["key"] not in keys:
                    problems.append(f"knative {group}: Secret {ref['name']} has no {ref['key']}")
                env[name] = ("secret",)
            else:
                env[name] = ("literal", str(entry.get("value", "")))
        account = spec.get("serviceAccountName", "default")
        if ("ServiceAccount", account) not in index:
            problems.append(f"knative {group}: ServiceAccount {account} is not defined")
        for volume in spec.get("volumes", []):
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in index:
                problems.append(f"knative {group}: PersistentVolumeClaim {claim} is not defined")
        probes = {
            kind: _k8s_probe(container[f"{kind}Probe"])
            for kind in ("startup", "liveness", "readiness")
            if f"{kind}Probe" in container
        }
        ports = container.get("ports") or [{}]

        def scale(key: str, annotations: dict[str, Any] = annotations) -> Any:
            value = annotations.get(f"autoscaling.knative.dev/{key}")
            return int(value) if isinstance(value, str) and value.isdigit() else value

        out[group] = {
            "service_name": meta.get("name"),
            "image": _image_ref(container.get("image")),
            "service_account": account,
            "concurrency": spec.get("containerConcurrency"),
            "min_scale": scale("min-scale"),
            "max_scale": scale("max-scale"),
            "timeout_seconds": spec.get("timeoutSeconds"),
            "port": ports[0].get("containerPort", 8080),
            "limits": (container.get("resources") or {}).get("limits", {}),
            "env": dict(sorted(env.items())),
            "probes": probes,
        }
    return out, problems


# ---------------------------------------------------------------------------------------
# Push ingestion: Pub/Sub push subscription (Terraform) and Knative Eventing (infra/k8s/eventing)
# ---------------------------------------------------------------------------------------

PUSH_SUBSCRIPTION = "google_pubsub_subscription"
_PUSH_ENDPOINT = re.compile(
    r"^\$\{google_cloud_run_v2_service\.function\[(?:\"(?P<group>[\w-]+)\"|var\.push\.function)\]"
    r"\.uri\}(?P<path>.*)$"
)


def terraform_push(tf_dir: Path = TERRAFORM_DIR) -> dict[str, Any]:
    """Where the one Pub/Sub push subscription delivers, with what retries and filter."""
    tf = parse_terraform(tf_dir)
    scope = Scope(tf)
    pushing = {
        name: body
        for name, body in tf["resources"].get(PUSH_SUBSCRIPTION, {}).items()
        if body.get("push_config")
    }
    if len(pushing) != 1:
        raise ParityError(f"terraform: expected one {PUSH_SUBSCRIPTION} with push_config")
    body = next(iter(pushing.values()))
    push = _one(body.get("push_config"), "push_config")
    endpoint = str(scope.resolve(push.get("push_endpoint"), deep=False))
    for name, value in tf["locals"].items():  # push_endpoint = local.x: look it up
        if endpoint == f"${{local.{name}}}":
            endpoint = str(value)
    match = _PUSH_ENDPOINT.match(endpoint)
    if match is None:
        raise ParityError(f"terraform: push_endpoint {endpoint!r} is not a function's uri + path")
    group = match.group("group") or scope.resolve("${var.push.function}")
    retry = _one(body.get("retry_policy"), "retry_policy")
    dead_letter = _one(body.get("dead_letter_policy"), "dead_letter_policy")
    return {
        "function": group,
        "path": scope.resolve(match.group("path")),
        "oidc": bool(push.get("oidc_token")),
        "max_delivery_attempts": scope.resolve(dead_letter.get("max_delivery_attempts")),
        "min_backoff_seconds": _seconds(scope.resolve(retry.get("minimum_backoff"))),
        "filter": scope.resolve(body.get("filter")),
    }


def knative_push(k8s_dir: Path = K8S_DIR) -> dict[str, Any]:
    """Every Trigger and KafkaSource: its destination, retries and (Trigger) event type."""
    docs = k8s_documents(k8s_dir)
    services = {
        (d.get("metadata") or {}).get("name"): (d.get("metadata") or {}).get("labels", {})
        for d in docs
        if is_knative(d)
    }
    brokers = {(d.get("metadata") or {}).get("name") for d in docs if d.get("kind") == "Broker"}
    out: dict[str, Any] = {"triggers": {}, "sources": {}, "problems": []}
    for doc in docs:
        kind, spec = doc.get("kind"), doc.get("spec") or {}
        name = (doc.get("metadata") or {}).get("name")
        if kind == "Trigger":
            destination = spec.get("subscriber") or {}
            if spec.get("broker") not in brokers:
                out["problems"].append(
                    f"knative Trigger {name}: Broker {spec.get('broker')} is not defined"
                )
        elif kind == "KafkaSource":
            destination = spec.get("sink") or {}
        else:
            continue
        ref = destination.get("ref") or {}
        if not is_knative({"apiVersion": ref.get("apiVersion"), "kind": ref.get("kind")}):
            out["problems"].append(f"knative {kind} {name}: does not deliver to a Knative Service")
        delivery = spec.get("delivery") or {}
        backoff = re.fullmatch(r"PT(\d+)S", str(delivery.get("backoffDelay", "")))
        entry = {
            "function": (services.get(ref.get("name")) or {}).get("app.kubernetes.io/component"),
            "path": destination.get("uri"),
            "max_delivery_attempts": int(delivery.get("retry", 0)) + 1,
            "min_backoff_seconds": int(backoff.group(1)) if backoff else None,
        }
        if kind == "Trigger":
            entry["type"] = ((spec.get("filter") or {}).get("attributes") or {}).get("type")
            out["triggers"][name] = entry
        else:
            out["sources"][name] = entry
    return out


def compare_push(terraform: dict[str, Any], knative: dict[str, Any], types: list[str]) -> list[str]:
    """Both sides deliver to the same function and path with the same attempts and backoff;
    Knative has one Trigger per event type the table names; Pub/Sub pushes with an OIDC
    token and no filter (a filtered-out message is acknowledged unseen)."""
    problems = list(knative["problems"])
    if not terraform["oidc"]:
        problems.append("terraform push subscription: no oidc_token (ingest is private)")
    if terraform["filter"]:
        problems.append("terraform push subscription: a filter would drop events unseen")
    if not knative["sources"]:
        problems.append("knative: no KafkaSource")
    seen = sorted(t["type"] for t in knative["triggers"].values())
    if seen != sorted(types):
        problems.append(f"knative Trigger types {seen} != push.event_types {sorted(types)}")
    fields = ("function", "path", "max_delivery_attempts", "min_backoff_seconds")
    for name, entry in {**knative["triggers"], **knative["sources"]}.items():
        for field in fields:
            if entry[field] != terraform[field]:
                problems.append(
                    f"push {name}: {field}: terraform {terraform[field]!r} != knative {entry[field]!r}"
                )
    return problems


# ---------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------


def compare(terraform: dict[str, dict[str, Any]], knative: dict[str, dict[str, Any]]) -> list[str]:
    """Every difference, one line each, naming the group and the field."""
    problems = []
    for side, groups in (("terraform", terraform), ("knative", knative)):
        missing = [g for g in GROUPS if g not in groups]
        extra = [g for g in groups if g not in GROUPS]
        if missing:
            problems.append(f"{side}: no service for {', '.join(missing)}")
        if extra:
            problems.append(f"{side}: unknown groups {', '.join(extra)}")
    for group in GROUPS:
        tf, kn = terraform.get(group), knative.get(group)
        if tf is None or kn is None:
            continue
        for field in tf:
            if field in ("env", "probes"):
                continue
            if tf[field] != kn.get(field):
                problems.append(
                    f"{group}: {field}: terraform {tf[field]!r} != knative {kn.get(field)!r}"
                )
        for name in sorted(set(tf["env"]) | set(kn["env"])):
            a, b = tf["env"].get(name), kn["env"].get(name)
            if a != b:
                problems.append(f"{group}: env {name}: terraform {a} != knative {b}")
        for kind in sorted(set(tf["probes"]) | set(kn["probes"])):
            a, b = tf["probes"].get(kind), kn["probes"].get(kind)
            if a is None and kind in KNATIVE_ONLY_PROBES:
                continue  # Cloud Run (GA provider) has no readiness probe: documented
            if a != b:
                problems.append(f"{group}: {kind} probe: terraform {a} != knative {b}")
    return problems


def check(tf_dir: Path = TERRAFORM_DIR, k8s_dir: Path = K8S_DIR) -> list[str]:
    """All parity problems between the Terraform and Knative directories (empty: agree)."""
    try:
        terraform = terraform_side(tf_dir)
        knative, problems = knative_side(k8s_dir)
        push = compare_push(terraform_push(tf_dir), knative_push(k8s_dir), push_event_types(tf_dir))
    except ParityError as exc:
        return [str(exc)]
    return problems + compare(terraform, knative) + push


def push_event_types(tf_dir: Path) -> list[str]:
    """The event types deploy/functions.yaml names (beside the Terraform directory's repo)."""
    table = tf_dir.parent.parent / "deploy" / "functions.yaml"
    try:
        return list(yaml.safe_load(table.read_text())["push"]["event_types"])
    except (OSError, KeyError, TypeError) as exc:
        raise ParityError(f"{table}: no push.event_types ({exc})") from None


def main() -> int:
    problems = check()
    for problem in problems:
        print(f"parity: {problem}")
    if not problems:
        print(f"parity: terraform and knative agree for {', '.join(GROUPS)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
