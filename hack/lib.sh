# Shared helpers for hack/*.sh. Source it; it sets strict mode.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
ASSAY_CACHE="${ASSAY_CACHE:-$HOME/.cache/assay}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Where each pinned component's binaries live, keyed by version.
kube_bin_dir() { echo "$ASSAY_CACHE/k8s/$KUBE_VERSION"; }
etcd_bin_dir() { echo "$ASSAY_CACHE/etcd/$ETCD_VERSION"; }
kwok_bin_dir() { echo "$ASSAY_CACHE/kwok/$KWOK_VERSION"; }
containerd_bin_dir() { echo "$ASSAY_CACHE/containerd/$CONTAINERD_VERSION"; }
