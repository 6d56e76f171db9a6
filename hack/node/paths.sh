# shellcheck shell=bash disable=SC2034  # sourced: the scripts that source it use these
# Where the real node and the local images live. Sourced by hack/node-*.sh and hack/images.sh after lib.sh.
# Persistent (survive node-down, shared by every clone on this machine): containerd's content and
# snapshots, so a warm node-up does not import images again. Everything a running node needs at run
# time (sockets, pids, kubelet root, logs) lives under NODE_RUN and is removed by node-down.
# "localhost": the apiserver reaches a kubelet at its Hostname address, and the kubelet listens on loopback
# only; a name that resolves to 127.0.0.1 everywhere is the one that works without touching /etc/hosts.
NODE_NAME="localhost"
NODE_POOL_LABEL="assay.dev/pool-node=local"
NODE_STATE="$ASSAY_CACHE/node"                 # persistent: containerd root (images)
NODE_RUN="$ASSAY_CACHE/run/node"               # per-run: sockets, state, kubelet root, logs
CONTAINERD_ROOT="$NODE_STATE/containerd"
CONTAINERD_STATE="$NODE_RUN/containerd"
CONTAINERD_SOCK="$NODE_RUN/containerd.sock"
KUBELET_ROOT="$NODE_RUN/kubelet"
NODE_LOGS="$NODE_RUN/logs"
CNI_BRIDGE="assay0"
CNI_SUBNET="10.88.0.0/16"
# Debian's runc and CNI plugins (hack/install-node-deps.sh).
CNI_BIN_DIR="/usr/lib/cni"
IMAGES_CACHE="$ASSAY_CACHE/images"
IMAGE_PREFIX="assay.local"
RUNNER_IMAGE_DEV="$IMAGE_PREFIX/runner:dev"
EXAMPLE_RUNNER_IMAGE="docker.io/library/assay-runner:dev"   # `image: assay-runner:dev` in examples/
SANDBOX_IMAGE="$IMAGE_PREFIX/sandbox:dev"
OPERATOR_IMAGE_DEV="$IMAGE_PREFIX/operator:dev"

# ctr warns about cgroup v1 on every call: not news.
ctr_node() {
  "$(containerd_bin_dir)/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@" \
    2> >(grep -v 'support for cgroup v1 is deprecated' >&2)
}
containerd_up() { [[ -S "$CONTAINERD_SOCK" ]] && ctr_node version >/dev/null 2>&1; }

# Whether the process in PIDFILE runs (a zombie, dead but not yet reaped, does not).
running() {
  local pid
  [[ -f "$1" ]] && pid="$(<"$1")" && kill -0 "$pid" 2>/dev/null &&
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}
