#!/usr/bin/env bash
# make demo: the digits example evaluated by the real runner in real pods on the local cluster's real node.
# Builds what is missing (binaries, images, the example model), starts the cluster and the real node, installs
# the CRDs, runs the operator on this machine, applies examples/digits/{pool,evaluation}.yaml, shows progress,
# and prints the summary metrics from the Evaluation's status. The cluster stays up afterwards (kubectl get
# evals, assay get); the operator stops with the demo. A second run starts the evaluation afresh.
#   ASSAY_DEMO_TIMEOUT  seconds to wait for the evaluation (default 600)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"

NAMESPACE=assay-demo
EXAMPLE="$REPO_ROOT/examples/digits"
CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
DEMO_DIR="$CLUSTER_DIR/demo"
VENV_BIN="$REPO_ROOT/.venv/bin"
TIMEOUT="${ASSAY_DEMO_TIMEOUT:-600}"
start=$SECONDS

kubectl() { "$(kube_bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
assay() { local command="$1"; shift; "$VENV_BIN/assay" "$command" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
evaluation_name() { sed -n 's/^  name: *//p' "$EXAMPLE/evaluation.yaml" | head -1; }
NAME="$(evaluation_name)"

[[ -f "$EXAMPLE/model/v1/classifier.pkl" ]] || die "the example model is missing: run 'make example'"

# 1. The cluster and the real node (each a no-op when already up).
"$HACK_DIR/kwok-cluster.sh" up
"$HACK_DIR/node-up.sh"
if [[ "$(cat "$CLUSTER_DIR/real-node" 2>/dev/null)" != ready* ]]; then
  die "the demo runs real pods, and this machine cannot run the real node ($(sed 's/^unavailable: //' \
    "$CLUSTER_DIR/real-node" 2>/dev/null || echo 'see above')). The same evaluation without a cluster:" \
    "assay run -f examples/digits/evaluation.yaml --local"
fi

# 2. The API, the example's volumes and pool.
log "demo: installing the CRDs, the example's volumes and its pool"
kubectl apply -k "$REPO_ROOT/crds/" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/evaluations.assay.dev crd/resourcepools.assay.dev >/dev/null
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
mkdir -p "$DEMO_DIR/results"
# The runner runs as UID 65532 (as in the Dockerfile): it must be able to write its results.
chmod 0777 "$DEMO_DIR/results"
sed -e "s|@EXAMPLES_DIR@|$REPO_ROOT/examples|g" -e "s|@RESULTS_DIR@|$DEMO_DIR/results|g" \
  -e "s|@NAMESPACE@|$NAMESPACE|g" -e "s|@PREFIX@|assay-demo|g" "$HACK_DIR/demo/volumes.yaml.in" | kubectl apply -f - >/dev/null
kubectl apply -f "$EXAMPLE/pool.yaml" >/dev/null

# 3. A fresh run: the previous evaluation and its results go (the runner would resume from them).
if kubectl -n "$NAMESPACE" get evaluation "$NAME" >/dev/null 2>&1; then
  log "demo: deleting the previous run of $NAME"
  kubectl -n "$NAMESPACE" delete evaluation "$NAME" --wait=true --timeout=60s >/dev/null
  kubectl -n "$NAMESPACE" wait --for=delete pod -l "assay.dev/evaluation=$NAME" --timeout=60s >/dev/null 2>&1 || true
fi
find "$DEMO_DIR/results" -mindepth 1 -delete

# 4. The operator, on this machine, for the demo's namespace; stopped when the demo ends.
log "demo: starting the operator (log: ${DEMO_DIR#"$REPO_ROOT"/}/operator.log)"
"$VENV_BIN/assay-operator" --kubeconfig "$KUBECONFIG_PATH" --namespace "$NAMESPACE" --webhook none \
  --metrics-port 0 --health-port 0 >"$DEMO_DIR/operator.log" 2>&1 &
operator_pid=$!
trap 'kill "$operator_pid" 2>/dev/null; wait "$operator_pid" 2>/dev/null || true' EXIT

# 5. The evaluation, and its progress until it ends.
kubectl -n "$NAMESPACE" apply -f "$EXAMPLE/evaluation.yaml" >/dev/null
log "demo: evaluation $NAMESPACE/$NAME applied; waiting (up to $TIMEOUT s)"
field() { kubectl -n "$NAMESPACE" get evaluation "$NAME" -o "jsonpath=$1" 2>/dev/null || true; }
last="" phase="" waited=$SECONDS
while (( SECONDS - waited < TIMEOUT )); do
  kill -0 "$operator_pid" 2>/dev/null || { tail -n 30 "$DEMO_DIR/operator.log" >&2; die "the operator exited"; }
  phase="$(field '{.status.phase}')"
  now="$(field '{.status.phase}: {.status.taskCounts.succeeded}/{.status.taskCounts.total} tasks done, {.status.taskCounts.running} running, {.status.taskCounts.pending} pending, {.status.taskCounts.failed} failed')"
  [[ "$now" == "$last" || -z "$phase" ]] || { log "demo: $now"; last="$now"; }
  case "$phase" in Succeeded | Failed | Cancelled | Expired) break ;; esac
  sleep 1
done

echo
kubectl -n "$NAMESPACE" get evaluations
echo
assay get "$NAME" -n "$NAMESPACE" || true
echo
if [[ "$phase" != Succeeded ]]; then
  kubectl -n "$NAMESPACE" get pods -o wide >&2 || true
  die "the evaluation ended as '${phase:-not started}' after $((SECONDS - waited)) s (operator log: $DEMO_DIR/operator.log; task logs: assay logs -n $NAMESPACE $NAME)"
fi
log "demo: summary metrics computed by the runner in real pods (status.results.summary):"
# The headline and averaged metrics; the per-class ones are in the status too.
field '{.status.results.summary}' | "$VENV_BIN/python" -c '
import json, sys
summary = json.load(sys.stdin)
shown = {k: v for k, v in summary.items() if "/" not in k or k.split("/")[0].endswith("avg")}
width = max(map(len, shown))
for key, value in shown.items():
    print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
if len(shown) < len(summary):
    print(f"  (+ {len(summary) - len(shown)} more: kubectl get eval -n '"$NAMESPACE"' '"$NAME"' -o yaml)")
'
log "demo: done in $((SECONDS - start)) s. Look around: export KUBECONFIG=$KUBECONFIG_PATH PATH=$CLUSTER_DIR/bin:\$PATH;" \
  "kubectl get evals -n $NAMESPACE; assay get -n $NAMESPACE $NAME; assay logs -n $NAMESPACE $NAME;" \
  "assay results -n $NAMESPACE $NAME --only-wrong; the console: assay ui -n $NAMESPACE --open"
