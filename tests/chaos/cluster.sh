#!/usr/bin/env bash
# The chaos cluster: a kwokctl cluster of its own (kubeconfig .cluster/chaos/kubeconfig) for the tests that stop
# kube-apiserver and etcd and for the soak, so they never disturb the test cluster others use. Same settings,
# stages and fake nodes as the test cluster (hack/kwok/).
#   tests/chaos/cluster.sh up     start it (a fresh one, deleting a previous one of this checkout)
#   tests/chaos/cluster.sh down   delete it, leaving no process behind
#   tests/chaos/cluster.sh name   print its kwokctl name
# Its name is CHAOS_CLUSTER_NAME, else "<ASSAY_CLUSTER_NAME>-chaos" (assay-chaos by default), so two checkouts
# with their own ASSAY_CLUSTER_NAME never share one; a cluster another checkout is running is never touched.
source "$(dirname "${BASH_SOURCE[0]}")/../../hack/lib.sh"

CLUSTER_NAME="${CHAOS_CLUSTER_NAME:-${ASSAY_CLUSTER_NAME:-assay}-chaos}"
STATE_DIR="$REPO_ROOT/.cluster/chaos"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
KWOKCTL="$(kwok_bin_dir)/kwokctl"
KUBECTL="$(kube_bin_dir)/kubectl"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$CLUSTER_NAME"

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

down() {
  if [[ -d "$WORKDIR" ]]; then
    claim_cluster "$WORKDIR" "$CLUSTER_NAME"
    "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 ||
      log "kwokctl delete cluster $CLUSTER_NAME failed"
  fi
  rm -f "$KUBECONFIG_PATH"
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
    --config "$HACK_DIR/kwok/kwokctl.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" \
    --kube-apiserver-binary "$(kube_bin_dir)/kube-apiserver" \
    --kube-controller-manager-binary "$(kube_bin_dir)/kube-controller-manager" \
    --kube-scheduler-binary "$(kube_bin_dir)/kube-scheduler" \
    --etcd-binary "$(etcd_bin_dir)/etcd" \
    --kwok-controller-binary "$(kwok_bin_dir)/kwok" \
    --wait 120s >"$STATE_DIR/create.log" 2>&1 || {
    cat "$STATE_DIR/create.log" >&2
    die "kwokctl could not start the chaos cluster (logs: $WORKDIR/logs/)"
  }
  chmod 600 "$KUBECONFIG_PATH"
  echo "$REPO_ROOT" >"$WORKDIR/assay-checkout"
  kubectl wait --for=condition=Established --timeout=60s crd/stages.kwok.x-k8s.io >/dev/null
  kubectl apply -f "$HACK_DIR/kwok/stages/" >/dev/null
  kubectl apply -f "$HACK_DIR/kwok/nodes.yaml" >/dev/null
  kubectl wait --for=condition=Ready --timeout=120s node -l type=kwok >/dev/null
  for _ in $(seq 60); do
    kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.5
  done
  log "chaos cluster '$CLUSTER_NAME' up in $((SECONDS - start)) s; KUBECONFIG=$KUBECONFIG_PATH, workdir $WORKDIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  name) echo "$CLUSTER_NAME" ;;
  *) die "usage: $0 up|down|name" ;;
esac
