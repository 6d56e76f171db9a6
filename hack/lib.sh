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

# Builds a kubebuilder-style manager (JobSet, Kueue) from the Go module proxy into
# $ASSAY_CACHE/<name>/<version>/: the binary, and beside it the module's CRDs (crds/*.yaml, from
# config/components/crd/bases) and its admission webhook configurations (webhook-manifests.yaml, from
# config/components/webhook/manifests.yaml), to run it out of cluster. Cached: a directory with a .complete
# marker is not rebuilt. `go install MODULE@VERSION` does not work here (it asks the proxy for the module's
# version list, which the proxy refuses), so a wrapper module requires the exact version.
#   build_manager NAME MODULE VERSION PACKAGE BINARY
build_manager() {
  local name="$1" module="$2" version="$3" package="$4" binary="$5"
  local out="$ASSAY_CACHE/$name/$version" start=$SECONDS
  if [[ -f "$out/.complete" ]]; then
    log "$name $version: cached in $out"
    return 0
  fi
  command -v go >/dev/null || die "Go is required (go1.26 or newer) to build $module"
  log "$name $version: building $package into $out (minutes cold on 2 cores)"
  rm -rf "$out" && mkdir -p "$out/crds"
  local wrapper="$ASSAY_CACHE/src/$name-$version"
  mkdir -p "$wrapper"
  (
    cd "$wrapper"
    [[ -f go.mod ]] || printf 'module assay.local/%s-build\n\ngo 1.26\n' "$name" >go.mod
    go mod edit "-require=$module@$version"
    go mod download "$module"
    local moddir
    moddir="$(go list -m -f '{{.Dir}}' "$module")"
    [[ -d "$moddir/config/components/crd/bases" && -f "$moddir/config/components/webhook/manifests.yaml" ]] ||
      die "no config/components/{crd/bases,webhook/manifests.yaml} in $moddir: has the $module layout changed?"
    go build -ldflags "-s -w" -o "$out/$binary" "$package"
    cp "$moddir"/config/components/crd/bases/*.yaml "$out/crds/"
    cp "$moddir/config/components/webhook/manifests.yaml" "$out/webhook-manifests.yaml"
    chmod u+w "$out"/crds/*.yaml "$out/webhook-manifests.yaml"
  )
  touch "$out/.complete"
  log "$name $version: built in $((SECONDS - start)) s"
}
