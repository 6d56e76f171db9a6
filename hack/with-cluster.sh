#!/usr/bin/env bash
# Runs a command against a cluster: ASSAY_KUBECONFIG if set, else the local
# cluster, started here (its build and start-up output visible, outside any test
# timeout) if it does not answer, and then stopped again, whatever the command's
# outcome. Exits with the command's status.
#   hack/with-cluster.sh .venv/bin/pytest tests/integration
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KUBECONFIG_PATH="$REPO_ROOT/.cluster/kubeconfig"

local_cluster_answers() {
  [[ -s "$KUBECONFIG_PATH" ]] &&
    "$(kube_bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_PATH" get --raw=/readyz --request-timeout=5s >/dev/null 2>&1
}

if [[ -z "${ASSAY_KUBECONFIG:-}" ]]; then
  started_here=yes
  ! local_cluster_answers || started_here=
  "$HACK_DIR/kwok-cluster.sh" up  # on a running cluster it only brings this checkout's stages and runner image along
  # Stopped even when the command fails or is interrupted; a failed stop fails the run.
  [[ -z "$started_here" ]] || trap 'status=$?; "$HACK_DIR/kwok-cluster.sh" down || status=1; exit $status' EXIT
fi
"$@"
