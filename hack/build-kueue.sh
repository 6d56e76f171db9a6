#!/usr/bin/env bash
# Builds the Kueue manager (sigs.k8s.io/kueue, cmd/kueue) into $ASSAY_CACHE/kueue/$KUEUE_VERSION/:
# kueue-manager, its CRDs and webhook configurations, which hack/kueue.py points at the manager on this
# machine (build_manager in hack/lib.sh). RBAC is not taken: the manager runs with the cluster's admin
# kubeconfig. `make kueue` builds it; `make kueue-up` builds it if needed and starts it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_manager kueue sigs.k8s.io/kueue "$KUEUE_VERSION" sigs.k8s.io/kueue/cmd/kueue kueue-manager
