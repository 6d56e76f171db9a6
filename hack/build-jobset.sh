#!/usr/bin/env bash
# Builds the JobSet controller (sigs.k8s.io/jobset, the Go peer of the
# benchmarks, arm A1) from the Go module proxy into
# $ASSAY_CACHE/jobset/$JOBSET_VERSION/ with its CRDs beside it:
#   jobset-controller   the manager binary (the module root is its main package)
#   crds/*.yaml         config/components/crd/bases of the same module version
#   webhook-manifests.yaml  its admission webhook configurations
#                       (config/components/webhook/manifests.yaml), for the
#                       benchmark to register against a manager run out of cluster
# Cached: a directory with a .complete marker is not rebuilt.
#
# `go install sigs.k8s.io/jobset@VERSION` does not work here (the proxy refuses
# that module's version list, which go install consults), so a wrapper module
# requires the exact version and builds the package.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="$ASSAY_CACHE/jobset/$JOBSET_VERSION"
if [[ -f "$out/.complete" ]]; then
  log "jobset $JOBSET_VERSION: cached in $out"
  exit 0
fi
command -v go >/dev/null || die "Go is required (go1.26 or newer) to build the JobSet controller"

start=$SECONDS
log "jobset $JOBSET_VERSION: building into $out (about 1-2 min cold)"
rm -rf "$out" && mkdir -p "$out/crds"
wrapper="$ASSAY_CACHE/src/jobset-$JOBSET_VERSION"
mkdir -p "$wrapper"
(
  cd "$wrapper"
  [[ -f go.mod ]] || printf 'module assay.local/jobset-build\n\ngo 1.26\n' > go.mod
  go mod edit "-require=sigs.k8s.io/jobset@$JOBSET_VERSION"
  go mod download sigs.k8s.io/jobset
  go build -ldflags "-s -w" -o "$out/jobset-controller" sigs.k8s.io/jobset
  moddir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/jobset)"
  [[ -d "$moddir/config/components/crd/bases" ]] ||
    die "no config/components/crd/bases in $moddir: has the JobSet module layout changed?"
  cp "$moddir"/config/components/crd/bases/*.yaml "$out/crds/"
  cp "$moddir/config/components/webhook/manifests.yaml" "$out/webhook-manifests.yaml"
  chmod u+w "$out"/crds/*.yaml "$out/webhook-manifests.yaml"
)
touch "$out/.complete"
log "jobset $JOBSET_VERSION: built in $((SECONDS - start)) s"
