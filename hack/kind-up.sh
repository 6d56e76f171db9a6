#!/usr/bin/env bash
# For users with Docker: a kind cluster with real pods, Assay installed from manifests/ with kustomize,
# and the digits example evaluated on it.
#
#   hack/kind-up.sh            # create (or reuse) the cluster, build + load images, install, run the example
#   hack/kind-up.sh --down     # delete the cluster
#
# Needs docker, kind and kubectl on PATH. Environment:
#   ASSAY_KIND_CLUSTER   cluster name (default: assay)
#   ASSAY_IMAGE_TAG      tag of the images built and loaded (default: dev)
#   ASSAY_SKIP_EXAMPLE   1: install only, do not run the example
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${ASSAY_KIND_CLUSTER:-assay}"
TAG="${ASSAY_IMAGE_TAG:-dev}"
CONTEXT="kind-$CLUSTER"
EXAMPLE_NAMESPACE=default

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH (this script is for machines with Docker; see README)"
done

if [[ "${1:-}" == "--down" ]]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

# --- cluster: one node, the repository's examples/ mounted so a PersistentVolume can serve them ----------
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "creating kind cluster '$CLUSTER'"
  kind create cluster --name "$CLUSTER" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  labels:
    assay.dev/pool-node: local   # examples/digits/pool.yaml selects this label (no taint needed: it only tolerates one)
  extraMounts:
  - hostPath: $REPO_ROOT/examples
    containerPath: /assay/examples
    readOnly: true
EOF
else
  log "reusing kind cluster '$CLUSTER'"
fi

# --- images: the same Dockerfile targets a registry build would use ---------------------------------------
if [[ ! -f "$REPO_ROOT/examples/digits/model/v1/classifier.pkl" ]]; then
  log "training the example model (make example)"
  make -C "$REPO_ROOT" example
fi
log "building assay-operator:$TAG and assay-runner:$TAG (the runner with the examples' dependencies)"
docker build --target operator -t "assay-operator:$TAG" "$REPO_ROOT"
# examples/digits/evaluation.yaml names assay-runner:dev, whatever the tag.
docker build --target runner-examples -t "assay-runner:$TAG" -t assay-runner:dev "$REPO_ROOT"
kind load docker-image --name "$CLUSTER" "assay-operator:$TAG" "assay-runner:$TAG" assay-runner:dev

# --- install: manifests/ with the image tag just built -----------------------------------------------------
# kustomize wants a relative path to the base; .cluster/ is git-ignored.
overlay="$REPO_ROOT/.cluster/kind-overlay"
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../manifests
images:
- name: assay-operator
  newTag: "$TAG"
EOF
log "installing Assay (kubectl apply -k manifests/)"
k apply -k "$overlay"
k -n assay-system rollout status deployment/assay-operator --timeout=180s

[[ "${ASSAY_SKIP_EXAMPLE:-}" == 1 ]] && { log "installed; skipping the example"; exit 0; }

# --- the example: its data on a read-only volume, results on a provisioned one ----------------------------
log "running the digits example"
k apply -f - <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: assay-examples
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  hostPath: {path: /assay/examples, type: Directory}
  claimRef: {namespace: $EXAMPLE_NAMESPACE, name: assay-examples}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: assay-examples
  namespace: $EXAMPLE_NAMESPACE
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: assay-examples
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: assay-results
  namespace: $EXAMPLE_NAMESPACE
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
k apply -f "$REPO_ROOT/examples/digits/pool.yaml"
# The webhook answers once the operator has put its certificate in place; retry the first create briefly.
for _ in $(seq 30); do
  k apply -n "$EXAMPLE_NAMESPACE" -f "$REPO_ROOT/examples/digits/evaluation.yaml" && break
  sleep 2
done
k -n "$EXAMPLE_NAMESPACE" wait --for=condition=Succeeded evaluation/digits-svc-v1 --timeout=600s
k -n "$EXAMPLE_NAMESPACE" get evaluation digits-svc-v1
log "done: kubectl --context $CONTEXT get evaluations -A; metrics: kubectl --context $CONTEXT -n assay-system port-forward svc/assay-metrics 9090"
