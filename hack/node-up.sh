#!/usr/bin/env bash
# Adds a real node to the local cluster: containerd (its own root, state and socket) and a kubelet of the
# control plane's version, registered as node "localhost" with the label assay.dev/pool-node=local and the
# taint assay.dev/real-node=true:NoSchedule (only pods of the local pool land there, never the fake nodes'
# test pods). Pods get a CNI bridge with no masquerading and no forwarding: they reach only this machine.
# Called by hack/kwok-cluster.sh up (the test cluster only); idempotent. hack/node-down.sh undoes everything.
#
# Where the machine does not allow a node (not root, no cgroups, no overlayfs) it says why and exits 0: the
# cluster works with its fake nodes only. On a machine that allows one, a node that does not start (its
# packages, its images, containerd or the kubelet failing) is an error. The outcome is written to
# .cluster/real-node ("ready localhost" or "unavailable: WHY") for tests to skip with the reason — except in
# CI, where the default is "required" and the real-pod tests fail instead of skipping.
#
# Environment:
#   ASSAY_REAL_NODE   off: do nothing; required: a machine that cannot run a node is an error
#                     (default: auto, or required when CI=true)
#   ASSAY_CLUSTER_NAME  only for messages (the kubeconfig is .cluster/kubeconfig)
#
# Credentials: the kubelet uses a copy of the cluster's admin kubeconfig (.cluster/kubeconfig, written by
# kwokctl). Acceptable for a local, loopback-only test cluster; a real cluster gives each kubelet its own
# client certificate (system:node:NAME) via TLS bootstrapping.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"

CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
STATUS_FILE="$CLUSTER_DIR/real-node"
KUBECTL="$(kube_bin_dir)/kubectl"
KUBELET="$(kube_bin_dir)/kubelet"
CONTAINERD="$(containerd_bin_dir)/containerd"
mode="${ASSAY_REAL_NODE:-auto}"
[[ "$mode" != auto || "${CI:-}" != true ]] || mode=required
start=$SECONDS

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=10s "$@"; }

# The machine cannot run a node: say why, and leave the cluster with its fake nodes.
unavailable() {
  { mkdir -p "$CLUSTER_DIR" && echo "unavailable: $*" >"$STATUS_FILE"; } 2>/dev/null || true
  [[ "$mode" != required ]] || die "real node: $* (ASSAY_REAL_NODE=required)"
  log "real node: not started: $*"
  log "real node: the cluster runs with its fake (KWOK) nodes only; tests that need real pods skip"
  exit 0
}

# It should have started and did not: show the logs, clean up, fail.
failed() {
  echo "unavailable: $*" >"$STATUS_FILE"
  local f
  for f in "$NODE_LOGS"/*.log; do [[ -f "$f" ]] && { log "--- last lines of $f"; tail -n 15 "$f" >&2; }; done
  "$HACK_DIR/node-down.sh" || true
  die "real node: $* (set ASSAY_REAL_NODE=off to run the cluster without it)"
}


node_ready() {
  [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# Why this machine cannot run a node, or nothing.
machine_problem() {
  [[ "$(uname -s)" == Linux ]] || { echo "a node needs Linux (this is $(uname -s))"; return; }
  [[ $(id -u) -eq 0 ]] || {
    echo "a node needs root (the kubelet and containerd manage mounts, cgroups and network namespaces)"
    return
  }
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    local c
    for c in cpu memory pids; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.controllers ||
        { echo "the cgroup v2 controller '$c' is not available (/sys/fs/cgroup/cgroup.controllers)"; return; }
    done
    [[ -w /sys/fs/cgroup ]] || { echo "/sys/fs/cgroup is read-only (a container without cgroup access?)"; return; }
  else
    local c
    for c in cpu cpuacct memory pids devices freezer; do
      [[ -d /sys/fs/cgroup/$c && -w /sys/fs/cgroup/$c ]] ||
        { echo "the cgroup v1 controller '$c' is not mounted writable at /sys/fs/cgroup/$c"; return; }
    done
  fi
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
    { echo "the kernel has no overlay filesystem (containerd's snapshotter needs it)"; return; }
  command -v unshare >/dev/null || { echo "unshare (util-linux) is missing"; return; }
}

[[ "$mode" != off ]] || { log "real node: ASSAY_REAL_NODE=off"; exit 0; }
problem="$(machine_problem)"
[[ -z "$problem" ]] || unavailable "$problem"

# One node-up or node-down at a time (node-up calls node-down, which then inherits the lock).
if [[ -z "${ASSAY_NODE_LOCK_HELD:-}" ]]; then
  mkdir -p "$ASSAY_CACHE/run"
  exec 8>"$ASSAY_CACHE/run/node.lock"
  flock -n 8 || { log "real node: another node-up/node-down is running; waiting for it"; flock 8; }
  export ASSAY_NODE_LOCK_HELD=1
fi
[[ -s "$KUBECONFIG_PATH" ]] && kubectl get --raw=/readyz >/dev/null 2>&1 ||
  die "real node: the cluster does not answer at $KUBECONFIG_PATH; run 'make cluster-up' first"

# One real node per machine (ports, bridge, cgroups): it serves the cluster of the checkout that started it.
owner="$(cat "$NODE_RUN/owner" 2>/dev/null || true)"
if [[ -n "$owner" && "$owner" != "$KUBECONFIG_PATH" ]] && running "$NODE_RUN/kubelet.pid"; then
  if [[ -s "$owner" ]] && "$KUBECTL" --kubeconfig "$owner" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1; then
    unavailable "the machine's real node already serves another cluster ($owner); one per machine"
  fi
  log "real node: it served a cluster that is gone ($owner); taking it over"
  ASSAY_NODE_DOWN_ANY=1 "$HACK_DIR/node-down.sh"
fi
if running "$NODE_RUN/kubelet.pid" && running "$NODE_RUN/containerd.pid" && node_ready; then
  "$HACK_DIR/images.sh" all   # a changed tree gets its new runner image
  echo "ready $NODE_NAME" >"$STATUS_FILE"
  log "real node '$NODE_NAME' is already up"
  exit 0
fi
# Half up (a crash, a reboot): start from a clean slate.
[[ ! -d "$NODE_RUN" ]] || "$HACK_DIR/node-down.sh"

"$HACK_DIR/install-node-deps.sh" || failed "could not install runc, the CNI plugins or debootstrap (hack/install-node-deps.sh)"
[[ -x "$KUBELET" ]] || "$HACK_DIR/build-binaries.sh" control-plane
[[ -f "$(containerd_bin_dir)/.complete" ]] || "$HACK_DIR/build-binaries.sh" node
RUNC="$(command -v runc)" || unavailable "runc is not installed"
for p in bridge host-local loopback; do
  [[ -x "$CNI_BIN_DIR/$p" ]] || unavailable "the CNI plugin $CNI_BIN_DIR/$p is missing"
done

# Images first: a cold build takes minutes, and there is no point in a node that cannot start a pod.
"$HACK_DIR/images.sh" build || failed "the runner and sandbox images could not be built (hack/images.sh build)"

log "real node: starting containerd and the kubelet ($KUBE_VERSION)"
mkdir -p "$NODE_RUN" "$NODE_LOGS" "$NODE_RUN/cni/net.d" "$NODE_RUN/cni/ipam" "$NODE_RUN/pod-logs" \
  "$KUBELET_ROOT" "$CONTAINERD_ROOT" "$CONTAINERD_STATE"
render() {  # render TEMPLATE OUT: replaces @NAME@ placeholders
  sed -e "s|@CONTAINERD_ROOT@|$CONTAINERD_ROOT|g" -e "s|@CONTAINERD_STATE@|$CONTAINERD_STATE|g" \
    -e "s|@CONTAINERD_SOCK@|$CONTAINERD_SOCK|g" -e "s|@RUNC@|$RUNC|g" -e "s|@CNI_BIN_DIR@|$CNI_BIN_DIR|g" \
    -e "s|@CNI_CONF_DIR@|$NODE_RUN/cni/net.d|g" -e "s|@CNI_IPAM_DIR@|$NODE_RUN/cni/ipam|g" \
    -e "s|@CNI_BRIDGE@|$CNI_BRIDGE|g" -e "s|@CNI_SUBNET@|$CNI_SUBNET|g" \
    -e "s|@SANDBOX_IMAGE@|$SANDBOX_IMAGE|g" -e "s|@POD_LOGS_DIR@|$NODE_RUN/pod-logs|g" "$1" >"$2"
  ! grep -q '@[A-Z_]*@' "$2" || die "unreplaced placeholder in $2"
}
render "$HACK_DIR/node/containerd.toml.in" "$NODE_RUN/containerd.toml"
render "$HACK_DIR/node/kubelet.yaml.in" "$NODE_RUN/kubelet.yaml"
render "$HACK_DIR/node/cni.conflist.in" "$NODE_RUN/cni/net.d/10-assay.conflist"
install -m 600 "$KUBECONFIG_PATH" "$NODE_RUN/kubeconfig"
echo "$KUBECONFIG_PATH" >"$NODE_RUN/owner"

# The kubelet sets these kernel settings when it starts; node-down.sh puts the saved values back.
for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  [[ -f /proc/sys/$key ]] && echo "$key $(</proc/sys/$key)"
done >"$NODE_RUN/sysctl.saved"

# setsid: the daemons outlive this script and get no terminal signals; their pids let node-down stop them.
# 8>&-: they must not inherit the node lock.
PATH="$(containerd_bin_dir):$PATH" setsid "$CONTAINERD" --config "$NODE_RUN/containerd.toml" \
  </dev/null >"$NODE_LOGS/containerd.log" 2>&1 8>&- &
echo $! >"$NODE_RUN/containerd.pid"
for _ in $(seq 100); do containerd_up && break; running "$NODE_RUN/containerd.pid" || break; sleep 0.2; done
containerd_up || failed "containerd did not start"

"$HACK_DIR/images.sh" import || failed "the images could not be imported into the node's containerd"

setsid "$KUBELET" --config "$NODE_RUN/kubelet.yaml" --kubeconfig "$NODE_RUN/kubeconfig" \
  --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" --hostname-override "$NODE_NAME" \
  --node-labels "$NODE_POOL_LABEL" --v=1 </dev/null >"$NODE_LOGS/kubelet.log" 2>&1 8>&- &
echo $! >"$NODE_RUN/kubelet.pid"
for _ in $(seq 120); do node_ready && break; running "$NODE_RUN/kubelet.pid" || break; sleep 0.5; done
node_ready || failed "the kubelet did not register a Ready node '$NODE_NAME' within 60 s"

echo "ready $NODE_NAME" >"$STATUS_FILE"
log "real node '$NODE_NAME' Ready in $((SECONDS - start)) s: label $NODE_POOL_LABEL, taint assay.dev/real-node=true:NoSchedule," \
  "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.allocatable.cpu} CPU, {.status.allocatable.memory} memory allocatable')"
