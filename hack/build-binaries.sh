#!/usr/bin/env bash
# Builds the local cluster's binaries from pinned Go modules into $ASSAY_CACHE,
# keyed by version. A component whose directory is complete is not rebuilt.
#   hack/build-binaries.sh [control-plane|node|all]   (default: control-plane)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
what="${1:-control-plane}"

timed() {  # timed LABEL DIR CMD...: runs CMD unless DIR/.complete exists
  local label="$1" dir="$2"; shift 2
  if [[ -f "$dir/.complete" ]]; then log "$label: cached in $dir"; return; fi
  log "$label: building into $dir (cold builds take minutes; output follows when done)"
  local start=$SECONDS
  rm -rf "$dir" && mkdir -p "$dir"
  # Hundreds of "go: downloading" lines are noise; compiler errors still show.
  "$@" 2>&1 | { grep -v '^go: downloading ' || true; } >&2
  touch "$dir/.complete"
  log "$label: built in $((SECONDS - start)) s"
}

# k8s.io/kubernetes replaces its staging modules with ./staging/src/...; a wrapper
# module must point each of them at the published module of the same release.
kube_wrapper() {
  local w="$ASSAY_CACHE/src/kube-$KUBE_VERSION"
  mkdir -p "$w" && cd "$w"
  [[ -f go.mod ]] || printf 'module assay.local/kube-build\n\ngo 1.26\n' > go.mod
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -n "$gomod" ]] || die "could not download k8s.io/kubernetes@$KUBE_VERSION"
  local args=()
  while read -r mod; do
    args+=("-replace=$mod=$mod@$KUBE_STAGING_VERSION")
  done < <(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "$gomod")
  go mod edit "${args[@]}"
  # Tool directives keep the requirement even if someone runs `go mod tidy`.
  local cmd
  for cmd in "$@"; do go get -tool "k8s.io/kubernetes/cmd/$cmd@$KUBE_VERSION" >/dev/null; done
}

# build_kube_commands OUT CMD...: the Kubernetes commands, version-stamped, from the wrapper module.
build_kube_commands() {
  local out="$1"; shift
  ( kube_wrapper "$@"
    local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
    local ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    go build -o "$out/" -ldflags "$ld" "${@/#/k8s.io/kubernetes/cmd/}" )
}

build_kube() {
  build_kube_commands "$(kube_bin_dir)" kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet
}

# kube-proxy serves only the real node: a directory of its own, so adding it invalidated no cached
# control-plane build (the same wrapper module and Go build cache: a minute or two when those are warm).
build_kube_proxy() { build_kube_commands "$(kube_proxy_bin_dir)" kube-proxy; }

build_etcd() {
  local w="$ASSAY_CACHE/src/etcd-$ETCD_VERSION" out; out="$(etcd_bin_dir)"
  ( mkdir -p "$w" && cd "$w"
    [[ -f go.mod ]] || printf 'module assay.local/etcd-build\n\ngo 1.26\n' > go.mod
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
    go build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 )
}

build_kwok() {
  GOBIN="$(kwok_bin_dir)" go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_containerd() {
  local m="github.com/containerd/containerd/v2/cmd"
  GOBIN="$(containerd_bin_dir)" go install -ldflags "-s -w" -tags "no_btrfs no_devmapper no_zfs" \
    "$m/containerd@$CONTAINERD_VERSION" "$m/ctr@$CONTAINERD_VERSION" "$m/containerd-shim-runc-v2@$CONTAINERD_VERSION"
}

command -v go >/dev/null || die "Go is required (go1.26 or newer) to build the cluster binaries"
# One build at a time per cache: a second caller (make test beside hack/node-up.sh) waits, then finds the
# .complete markers instead of wiping a directory the first one is filling.
mkdir -p "$ASSAY_CACHE/run"
exec 9>"$ASSAY_CACHE/run/build-binaries.lock"
if ! flock -n 9; then
  log "another hack/build-binaries.sh is building into $ASSAY_CACHE; waiting for it"
  flock 9
fi
total=$SECONDS
case "$what" in
  control-plane|all)
    timed "kubernetes $KUBE_VERSION (apiserver, controller-manager, scheduler, kubectl, kubelet)" "$(kube_bin_dir)" build_kube
    timed "etcd $ETCD_VERSION" "$(etcd_bin_dir)" build_etcd
    timed "kwok $KWOK_VERSION" "$(kwok_bin_dir)" build_kwok ;;&
  node|all)
    timed "containerd $CONTAINERD_VERSION" "$(containerd_bin_dir)" build_containerd
    timed "kube-proxy $KUBE_VERSION" "$(kube_proxy_bin_dir)" build_kube_proxy ;;
  control-plane) ;;
  *) die "unknown target '$what' (control-plane, node or all)" ;;
esac
log "binaries ready in $((SECONDS - total)) s"
