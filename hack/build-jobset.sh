#!/usr/bin/env bash
# Builds the JobSet controller (sigs.k8s.io/jobset, the Go peer of the benchmarks, arm A1) into
# $ASSAY_CACHE/jobset/$JOBSET_VERSION/: jobset-controller (the module root is its main package), its CRDs and
# webhook configurations, for the benchmark to register against a manager run out of cluster (build_manager
# in hack/lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_manager jobset sigs.k8s.io/jobset "$JOBSET_VERSION" sigs.k8s.io/jobset jobset-controller
