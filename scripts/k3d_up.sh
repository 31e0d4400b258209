#!/usr/bin/env bash
# `make k3d-up`: a local k3d cluster running the six functions on Knative Serving (Kourier),
# with in-cluster Valkey and NATS JetStream and the registry on a PersistentVolumeClaim, all
# from infra/k8s (generated from deploy/functions.yaml). Re-running it re-applies everything.
#
# Needs: Docker (a running engine), k3d >= 5, kubectl, openssl, and network access to GitHub
# (Knative release manifests) and Docker Hub (k3s, Valkey, NATS images).
#
# Knobs (environment): CLUSTER (online-ml), HTTP_PORT (8081: Kourier on localhost),
# KNATIVE_VERSION (1.20.0), K3S_IMAGE (rancher/k3s:v1.32.5-k3s1).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-online-ml}
HTTP_PORT=${HTTP_PORT:-8081}
KNATIVE_VERSION=${KNATIVE_VERSION:-1.20.0}
K3S_IMAGE=${K3S_IMAGE:-rancher/k3s:v1.32.5-k3s1}
PYTHON=${PYTHON:-.venv/bin/python}
KEY_FILE=.data/k3d/admin-api-key
METRICS_FILE=.data/k3d/metrics-token

say() { printf '\n== %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "k3d-up: '$1' is required: $2" >&2; exit 1; }
}
need docker "https://docs.docker.com/engine/install/"
need k3d "https://k3d.io (e.g. curl -s https://raw.githubusercontent.com/k3d-io/k3d/main/install.sh | bash)"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need openssl "apt-get install openssl"
docker info >/dev/null 2>&1 || { echo "k3d-up: no Docker engine is reachable" >&2; exit 1; }

# The table is the one source of truth: image, namespace and service names come from it.
read -r IMAGE NAMESPACE PREFIX < <("$PYTHON" - <<'EOF'
from deploy.render import load_table
t = load_table()
print(f"{t['k3d']['image_registry']}/{t['image']['name']}:{t['image']['tag']}",
      t["k3d"]["namespace"], t["service_prefix"])
EOF
)
"$PYTHON" -m deploy.render --check  # never deploy manifests that disagree with the table

say "cluster k3d-$CLUSTER (one node: the registry PVC is ReadWriteOnce local-path)"
if ! k3d cluster get "$CLUSTER" >/dev/null 2>&1; then
  k3d cluster create "$CLUSTER" --image "$K3S_IMAGE" --servers 1 --agents 0 \
    --port "${HTTP_PORT}:80@loadbalancer" --k3s-arg "--disable=traefik@server:0" --wait
fi
kubectl config use-context "k3d-$CLUSTER" >/dev/null

say "image $IMAGE (built here, imported into the node: no registry)"
docker build -t "$IMAGE" .
k3d image import "$IMAGE" --cluster "$CLUSTER"

say "Knative Serving $KNATIVE_VERSION with Kourier"
releases=https://github.com/knative
kubectl apply -f "$releases/serving/releases/download/knative-v$KNATIVE_VERSION/serving-crds.yaml"
kubectl wait --for=condition=Established crd/services.serving.knative.dev --timeout=120s
kubectl apply -f "$releases/serving/releases/download/knative-v$KNATIVE_VERSION/serving-core.yaml"
kubectl apply -f "$releases/net-kourier/releases/download/knative-v$KNATIVE_VERSION/kourier.yaml"
kubectl -n knative-serving patch configmap/config-network --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
# What infra/k8s/functions uses: the registry PVC (read-write), emptyDir for /tmp and the
# data dir under a read-only root filesystem, and a pod-level securityContext (fsGroup).
kubectl -n knative-serving patch configmap/config-features --type merge -p '{"data":{
  "kubernetes.podspec-persistent-volume-claim":"enabled",
  "kubernetes.podspec-persistent-volume-write":"enabled",
  "kubernetes.podspec-volumes-emptydir":"enabled",
  "kubernetes.podspec-securitycontext":"enabled"}}'
# dev.local images exist only in the node: never resolve them to a registry digest.
kubectl -n knative-serving patch configmap/config-deployment --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local"}}'
kubectl -n knative-serving rollout status deploy/controller deploy/webhook deploy/activator \
  deploy/autoscaler --timeout=300s
kubectl -n kourier-system rollout status deploy/3scale-kourier-gateway --timeout=300s

say "infra/k8s (kustomize) with a random ADMIN_API_KEY and METRICS_TOKEN in place of the placeholders"
mkdir -p "$(dirname "$KEY_FILE")"
[ -s "$KEY_FILE" ] || openssl rand -hex 32 >"$KEY_FILE"
[ -s "$METRICS_FILE" ] || openssl rand -hex 32 >"$METRICS_FILE"
manifests=$(kubectl kustomize infra/k8s | sed \
  -e "s/ADMIN_API_KEY: replace-me$/ADMIN_API_KEY: $(cat "$KEY_FILE")/" \
  -e "s/METRICS_TOKEN: replace-me-metrics$/METRICS_TOKEN: $(cat "$METRICS_FILE")/")
for attempt in 1 2 3 4 5; do  # the Knative webhook may still be warming up
  if printf '%s\n' "$manifests" | kubectl apply -f -; then break; fi
  [ "$attempt" = 5 ] && exit 1
  sleep 10
done
kubectl -n "$NAMESPACE" rollout status deploy/valkey deploy/nats --timeout=300s

say "waiting for the function services"
missing=()
for group in train predict batch activate monitoring ingest; do
  if [ ! -f "functions/$group/main.py" ]; then
    missing+=("$group")
    continue
  fi
  kubectl -n "$NAMESPACE" wait "ksvc/$PREFIX-$group" --for=condition=Ready --timeout=600s
done
kubectl -n "$NAMESPACE" get ksvc
if [ "${#missing[@]}" -gt 0 ]; then
  echo "note: functions/<group>/main.py absent for: ${missing[*]} (their services cannot start yet)"
fi

say "smoke test"
host="$PREFIX-predict.$NAMESPACE.example.com"
curl -sf -H "Host: $host" "http://localhost:$HTTP_PORT/health" && echo
cat <<EOF

Ready. Call a function through Kourier on localhost:$HTTP_PORT with its Host name, e.g.
  curl -s -H 'Host: $PREFIX-train.$NAMESPACE.example.com' -H 'X-Tenant-ID: acme' \
    http://localhost:$HTTP_PORT/api/v1/catalog
Admin key: $KEY_FILE.  Tear down: k3d cluster delete $CLUSTER
EOF
