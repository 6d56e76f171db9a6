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
kube_proxy_bin_dir() { echo "$ASSAY_CACHE/kube-proxy/$KUBE_VERSION"; }

# A kwokctl cluster records which checkout started it (WORKDIR/assay-checkout). Another
# checkout's cluster is never touched while any of its processes runs; once they are all
# gone (a reboot, a killed session, CI after the session that left it), it is only stale
# state, and whoever needs the name takes it over.
#   claim_cluster WORKDIR NAME
claim_cluster() {
  local workdir="$1" name="$2" owner
  owner="$(cat "$workdir/assay-checkout" 2>/dev/null || true)"
  [[ -z "$owner" || "$owner" == "$REPO_ROOT" ]] && return 0
  if pgrep -f -- "^$workdir/bin/" >/dev/null 2>&1; then
    die "cluster '$name' is running for the checkout $owner: stop it there (or use another ASSAY_CLUSTER_NAME here)"
  fi
  log "cluster '$name' was left stopped by the checkout $owner: taking it over"
  echo "$REPO_ROOT" >"$workdir/assay-checkout"
}
