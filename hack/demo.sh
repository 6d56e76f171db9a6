#!/usr/bin/env bash
# make demo: the digits example evaluated by the real runner in real pods on the local cluster's real node.
# Builds what is missing (binaries, images, the example model), starts the cluster and the real node, installs
# Assay from manifests/ as a cluster admin does (hack/deploy.sh: CRDs, RBAC, the operator's Deployment on the
# real node, the webhook), applies examples/digits/{pool,evaluation}.yaml, shows progress, and prints the
# summary metrics from the Evaluation's status. The cluster and the install stay up afterwards (kubectl get
# evals, assay get; `make undeploy` removes Assay). A second run starts the evaluation afresh.
#   ASSAY_DEMO_OPERATOR  installed (default): the install above; process: the CRDs only, and the operator as
#                        a process on this machine for the demo's namespace, stopped with the demo (quick
#                        loops on operator/ code: no image to rebuild)
#   ASSAY_DEMO_TIMEOUT   seconds to wait for the evaluation (default 600)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"

NAMESPACE=assay-demo
EXAMPLE="$REPO_ROOT/examples/digits"
CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
DEMO_DIR="$CLUSTER_DIR/demo"
VENV_BIN="$REPO_ROOT/.venv/bin"
TIMEOUT="${ASSAY_DEMO_TIMEOUT:-600}"
OPERATOR="${ASSAY_DEMO_OPERATOR:-installed}"
[[ "$OPERATOR" == installed || "$OPERATOR" == process ]] ||
  die "ASSAY_DEMO_OPERATOR must be 'installed' or 'process', not '$OPERATOR'"
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

# 2. Assay (or only its CRDs), the example's volumes and pool.
if [[ "$OPERATOR" == installed ]]; then
  "$HACK_DIR/deploy.sh" up
else
  # An installed operator watches every namespace: it would act on the demo's evaluation beside this one.
  ! kubectl -n assay-system get deployment assay-operator >/dev/null 2>&1 ||
    die "Assay is installed on this cluster (make deploy): 'make undeploy' first, or run the demo without ASSAY_DEMO_OPERATOR=process"
  log "demo: installing the CRDs"
  kubectl apply -k "$REPO_ROOT/crds/" >/dev/null
fi
kubectl wait --for=condition=Established --timeout=60s crd/evaluations.assay.dev crd/resourcepools.assay.dev >/dev/null
log "demo: the example's volumes and its pool"
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

# 4. With ASSAY_DEMO_OPERATOR=process, the operator on this machine, for the demo's namespace; stopped when
#    the demo ends.
operator_alive() { true; }
operator_log="kubectl -n assay-system logs deploy/assay-operator"
if [[ "$OPERATOR" == process ]]; then
  log "demo: starting the operator (log: ${DEMO_DIR#"$REPO_ROOT"/}/operator.log)"
  "$VENV_BIN/assay-operator" --kubeconfig "$KUBECONFIG_PATH" --namespace "$NAMESPACE" --webhook none \
    --metrics-port 0 --health-port 0 >"$DEMO_DIR/operator.log" 2>&1 &
  operator_pid=$!
  trap 'kill "$operator_pid" 2>/dev/null; wait "$operator_pid" 2>/dev/null || true' EXIT
  operator_alive() { kill -0 "$operator_pid" 2>/dev/null || { tail -n 30 "$DEMO_DIR/operator.log" >&2; return 1; }; }
  operator_log="$DEMO_DIR/operator.log"
fi

# 5. The evaluation, and its progress until it ends.
kubectl -n "$NAMESPACE" apply -f "$EXAMPLE/evaluation.yaml" >/dev/null
log "demo: evaluation $NAMESPACE/$NAME applied; waiting (up to $TIMEOUT s)"
field() { kubectl -n "$NAMESPACE" get evaluation "$NAME" -o "jsonpath=$1" 2>/dev/null || true; }
last="" phase="" waited=$SECONDS
while (( SECONDS - waited < TIMEOUT )); do
  operator_alive || die "the operator exited"
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
  die "the evaluation ended as '${phase:-not started}' after $((SECONDS - waited)) s (operator log: $operator_log; task logs: assay logs -n $NAMESPACE $NAME)"
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
