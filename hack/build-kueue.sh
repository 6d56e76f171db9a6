#!/usr/bin/env bash
# Builds the Kueue manager (sigs.k8s.io/kueue, cmd/kueue) from the Go module proxy into
# $ASSAY_CACHE/kueue/$KUEUE_VERSION/ with what running it out of cluster needs beside it:
#   kueue-manager           the manager binary
#   crds/*.yaml             config/components/crd/bases of the same module version
#   webhook-manifests.yaml  its admission webhook configurations
#                           (config/components/webhook/manifests.yaml); hack/kueue.sh
#                           points them at the manager on 127.0.0.1
# RBAC is not taken: the manager runs on the host with the cluster's admin kubeconfig.
# Cached: a directory with a .complete marker is not rebuilt.
# `make kueue` builds it; `make kueue-up` builds it if needed and starts it.
#
# As for JobSet (hack/build-jobset.sh), a wrapper module requires the exact version:
# the proxy is asked for that version only, never for the module's version list.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="$ASSAY_CACHE/kueue/$KUEUE_VERSION"
if [[ -f "$out/.complete" ]]; then
  log "kueue $KUEUE_VERSION: cached in $out"
  exit 0
fi
command -v go >/dev/null || die "Go is required (go1.26 or newer) to build the Kueue manager"

start=$SECONDS
log "kueue $KUEUE_VERSION: building into $out (several minutes cold on 2 cores)"
rm -rf "$out" && mkdir -p "$out/crds"
wrapper="$ASSAY_CACHE/src/kueue-$KUEUE_VERSION"
mkdir -p "$wrapper"
(
  cd "$wrapper"
  [[ -f go.mod ]] || printf 'module assay.local/kueue-build\n\ngo 1.26\n' > go.mod
  go mod edit "-require=sigs.k8s.io/kueue@$KUEUE_VERSION"
  go mod download sigs.k8s.io/kueue
  moddir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
  [[ -d "$moddir/config/components/crd/bases" && -d "$moddir/cmd/kueue" ]] ||
    die "no config/components/crd/bases or cmd/kueue in $moddir: has the Kueue module layout changed?"
  go build -ldflags "-s -w" -o "$out/kueue-manager" sigs.k8s.io/kueue/cmd/kueue
  cp "$moddir"/config/components/crd/bases/*.yaml "$out/crds/"
  cp "$moddir/config/components/webhook/manifests.yaml" "$out/webhook-manifests.yaml"
  chmod u+w "$out"/crds/*.yaml "$out/webhook-manifests.yaml"
)
touch "$out/.complete"
log "kueue $KUEUE_VERSION: built in $((SECONDS - start)) s"
