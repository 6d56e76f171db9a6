#!/usr/bin/env bash
# Stops the local test cluster (and the real kubelet node, if hack/node-down.sh
# exists) and checks that none of its processes is left running.
#   ASSAY_CLUSTER_NAME  kwokctl cluster name (default: assay)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_NAME="${ASSAY_CLUSTER_NAME:-assay}"
CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
KWOKCTL="$(kwok_bin_dir)/kwokctl"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$CLUSTER_NAME"

claim_cluster "$WORKDIR" "$CLUSTER_NAME"

# Kueue's manager (make kueue-up) runs against this cluster: it goes with it.
if [[ -f "$CLUSTER_DIR/kueue/manager.pid" && -x "$REPO_ROOT/.venv/bin/python" ]]; then
  "$REPO_ROOT/.venv/bin/python" "$HACK_DIR/kueue.py" down || log "could not stop Kueue's manager cleanly"
fi

if [[ -x "$HACK_DIR/node-down.sh" ]]; then
  "$HACK_DIR/node-down.sh"
fi

# The component pids kwokctl recorded, to check afterwards that they are gone.
pids=()
if [[ -d "$WORKDIR/pids" ]]; then
  for f in "$WORKDIR"/pids/*.pid; do
    [[ -f "$f" ]] && pids+=("$(<"$f")")
  done
fi

if [[ -d "$WORKDIR" ]]; then
  [[ -x "$KWOKCTL" ]] || die "$KWOKCTL is missing: run 'make binaries' (needed to stop the cluster)"
  log "stopping cluster '$CLUSTER_NAME'"
  # --kubeconfig: kwokctl removes its context from our kubeconfig, never ~/.kube/config.
  "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 ||
    log "kwokctl delete cluster failed; checking for leftover processes"
else
  log "cluster '$CLUSTER_NAME' is not running"
fi
rm -f "$KUBECONFIG_PATH"

# kwokctl sends SIGTERM; give components a moment, then make sure.
for pid in "${pids[@]}"; do
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  # Only if it is still one of ours (pids get reused).
  if kill -0 "$pid" 2>/dev/null && grep -qF "$WORKDIR/" "/proc/$pid/cmdline" 2>/dev/null; then
    log "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)) survived: killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
done
# Anything else still running from this cluster's directory is a leak too.
stray="$(pgrep -f -- "$WORKDIR/" || true)"
if [[ -n "$stray" ]]; then
  ps -o pid=,args= -p "${stray//$'\n'/,}" >&2 || true
  die "processes of cluster '$CLUSTER_NAME' are still running (listed above)"
fi
log "cluster '$CLUSTER_NAME' is down; no process left"
