#!/usr/bin/env bash
# The benchmark cluster: a kwokctl cluster of its own (name assay-bench,
# kubeconfig .cluster/bench/kubeconfig), never the test cluster others use.
#   benchmarks/cluster.sh up     start a fresh one (deleting a previous one)
#   benchmarks/cluster.sh down   delete it
# Tuned as issue 9 asks: no client QPS limits and no apiserver inflight limits
# (--disable-qps-limits), BENCH_JOB_SYNCS concurrent Job syncs in the
# controller-manager, BENCH_NODES fake nodes of BENCH_GPUS_PER_NODE (8) GPUs each, every Job pod
# succeeding BENCH_POD_MS after it runs, and an audit log of every request at
# ~/.kwok/clusters/assay-bench/logs/audit.log (read it before `down`).
#
# Reuses the test cluster's kwok stages (hack/kwok/stages/) and binaries.
source "$(dirname "${BASH_SOURCE[0]}")/../hack/lib.sh"

CLUSTER_NAME="${BENCH_CLUSTER_NAME:-assay-bench}"
BENCH_DIR="$REPO_ROOT/benchmarks"
STATE_DIR="$REPO_ROOT/.cluster/bench"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
KWOKCTL="$(kwok_bin_dir)/kwokctl"
KUBECTL="$(kube_bin_dir)/kubectl"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$CLUSTER_NAME"
NODES="${BENCH_NODES:-50}"
GPUS="${BENCH_GPUS_PER_NODE:-8}"
POD_MS="${BENCH_POD_MS:-1000}"
JOB_SYNCS="${BENCH_JOB_SYNCS:-20}"

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# N fake nodes like the test cluster's a100 nodes (hack/kwok/nodes.yaml).
nodes_yaml() {
  local i
  for ((i = 0; i < NODES; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: bench-gpu-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    type: kwok
    assay.dev/pool-node: bench
    kubernetes.io/hostname: bench-gpu-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    gpu.example.com/type: bench
spec:
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
status:
  capacity: {cpu: "96", memory: 1152Gi, pods: "110", nvidia.com/gpu: "$GPUS"}
  allocatable: {cpu: "94", memory: 1100Gi, pods: "110", nvidia.com/gpu: "$GPUS"}
EOF
  done
}

down() {
  if [[ -d "$WORKDIR" ]]; then
    "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 ||
      log "kwokctl delete cluster $CLUSTER_NAME failed"
  fi
  rm -f "$KUBECONFIG_PATH"
  # kwokctl sends SIGTERM; make sure nothing of this cluster is left.
  local pids
  for _ in $(seq 40); do
    pids="$(pgrep -f -- "$WORKDIR/" || true)"
    [[ -z "$pids" ]] && return 0
    sleep 0.25
  done
  die "processes of cluster '$CLUSTER_NAME' still running: $pids"
}

up() {
  "$HACK_DIR/build-binaries.sh" control-plane
  down
  mkdir -p "$STATE_DIR"
  local start=$SECONDS
  # kwokctl has no flag for kubectl; without it, it would try to download one.
  KWOK_KUBECTL_BINARY="$KUBECTL" "$KWOKCTL" create cluster --name "$CLUSTER_NAME" \
    --config "$BENCH_DIR/kwok/kwokctl.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" \
    --kube-apiserver-binary "$(kube_bin_dir)/kube-apiserver" \
    --kube-controller-manager-binary "$(kube_bin_dir)/kube-controller-manager" \
    --kube-scheduler-binary "$(kube_bin_dir)/kube-scheduler" \
    --etcd-binary "$(etcd_bin_dir)/etcd" \
    --kwok-controller-binary "$(kwok_bin_dir)/kwok" \
    --kube-audit-policy "$BENCH_DIR/kwok/audit-policy.yaml" \
    --disable-qps-limits \
    --extra-args "kube-controller-manager=concurrent-job-syncs=$JOB_SYNCS" \
    --extra-args "kube-apiserver=audit-log-mode=batch" \
    --extra-args "kube-apiserver=audit-log-batch-buffer-size=200000" \
    --extra-args "kube-apiserver=audit-log-batch-max-size=1000" \
    --extra-args "kube-apiserver=audit-log-batch-max-wait=1s" \
    --extra-args "kube-apiserver=audit-log-maxsize=100000" \
    --wait 60s >"$STATE_DIR/create.log" 2>&1 || {
    cat "$STATE_DIR/create.log" >&2
    die "kwokctl could not start the benchmark cluster (logs: $WORKDIR/logs/)"
  }
  chmod 600 "$KUBECONFIG_PATH"
  kubectl wait --for=condition=Established --timeout=30s crd/stages.kwok.x-k8s.io >/dev/null
  kubectl apply -f "$HACK_DIR/kwok/stages/" >/dev/null
  sed "s/durationMilliseconds: 1000/durationMilliseconds: $POD_MS/" "$BENCH_DIR/kwok/pod-auto-complete-bench.yaml" |
    kubectl apply -f - >/dev/null
  nodes_yaml | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Ready --timeout=120s node -l type=kwok >/dev/null
  for _ in $(seq 60); do
    kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.5
  done
  log "benchmark cluster '$CLUSTER_NAME' up in $((SECONDS - start)) s: $NODES nodes x $GPUS GPUs, pods finish ${POD_MS} ms after they run"
  log "KUBECONFIG=$KUBECONFIG_PATH; audit log: $WORKDIR/logs/audit.log"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
