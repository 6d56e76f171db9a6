#!/usr/bin/env bash
# Starts the local test cluster: etcd, kube-apiserver, controller-manager and
# scheduler (binaries built by hack/build-binaries.sh) under kwokctl's binary
# runtime on 127.0.0.1, RBAC and admission on, plus KWOK fake GPU nodes whose
# pods are driven by the stages in hack/kwok/stages/. Idempotent: if the
# cluster already answers, it says so and returns.
#
# Writes .cluster/kubeconfig and links the built kubectl as .cluster/bin/kubectl.
#
# Environment:
#   ASSAY_CLUSTER_NAME            kwokctl cluster name (default: assay)
#   ASSAY_KWOK_EXTRA_ARGS         extra `kwokctl create cluster` arguments, word-split, e.g.
#                                 "--extra-args kube-controller-manager=concurrent-job-syncs=20"
#   ASSAY_KWOK_DISABLE_QPS_LIMITS 1: lift the components' client QPS limits (benchmarks)
#   ASSAY_KWOK_AUTO_COMPLETE      a delay (500ms, 2s, 1m): every Running Job pod succeeds by itself after it
#                                 (Assay's task pods with a valid termination message, as under the next)
#   ASSAY_KWOK_ASSAY_PODS         succeed: Assay's task pods succeed by themselves after 1 s, the evaluate
#                                 step with a fake summary (hack/kwok/optional/assay-pods-succeed.yaml)
#   ASSAY_REAL_NODE               off: do not run hack/node-up.sh (the real kubelet node)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_NAME="${ASSAY_CLUSTER_NAME:-assay}"
CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
KWOK_DIR="$REPO_ROOT/hack/kwok"
KWOKCTL="$(kwok_bin_dir)/kwokctl"
KUBECTL="$(kube_bin_dir)/kubectl"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$CLUSTER_NAME"
# Which checkout started the cluster: another checkout's cluster of the same name is never touched.
OWNER_FILE="$WORKDIR/assay-checkout"
start=$SECONDS

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# Answers /readyz within a few seconds (a busy apiserver gets retries).
cluster_answers() {
  [[ -s "$KUBECONFIG_PATH" ]] || return 1
  local try
  for try in 1 2 3; do
    kubectl get --raw=/readyz --request-timeout=5s >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

# "2s" / "500ms" / "1m" / "3" (seconds) -> milliseconds
duration_ms() {
  local d="$1"
  [[ "$d" =~ ^[0-9]+(ms|s|m)?$ ]] || return 1
  case "$d" in
    *ms) echo "${d%ms}" ;;
    *s) echo $(( ${d%s} * 1000 )) ;;
    *m) echo $(( ${d%m} * 60000 )) ;;
    *) echo $(( d * 1000 )) ;;
  esac
}

# Refused before a cluster starts, not half-way through setting it up.
[[ "${ASSAY_KWOK_ASSAY_PODS:-succeed}" == succeed ]] ||
  die "ASSAY_KWOK_ASSAY_PODS='$ASSAY_KWOK_ASSAY_PODS': the only choice is 'succeed'"

# kwokctl picks every port by counting down from 32767 and probing, so two clusters
# created at once (tests beside benchmarks) can pick the same one; the loser waits
# two minutes and fails. Ports of our own instead: a block of six in 20000-24999,
# chosen from the checkout and cluster name (stable across restarts), moved on
# while any of them is taken.
free_port_block() {
  local seed block p taken
  seed=$(printf '%s' "$REPO_ROOT/$CLUSTER_NAME" | cksum | cut -d' ' -f1)
  for ((block = seed % 800; block < seed % 800 + 50; block++)); do
    taken=
    for ((p = 20000 + (block % 800) * 6; p < 20006 + (block % 800) * 6; p++)); do
      if ss -Htan "sport = :$p" | grep -q .; then taken=1; break; fi
    done
    [[ -z "$taken" ]] && { echo $((20000 + (block % 800) * 6)); return; }
  done
  die "no six free ports in 20000-24999"
}

# The kwokctl config with this cluster's ports (etcd's peer port has no flag or env).
write_config() {
  local base="$1" ports
  ports="$(printf '  %s: %s\n' kubeApiserverPort "$base" etcdPort $((base + 1)) etcdPeerPort $((base + 2)) \
    kubeControllerManagerPort $((base + 3)) kubeSchedulerPort $((base + 4)) kwokControllerPort $((base + 5)))"
  awk -v ports="$ports" '{ print } /^options:$/ { print ports }' "$KWOK_DIR/kwokctl.yaml" >"$CLUSTER_DIR/kwokctl.yaml"
}

"$HACK_DIR/build-binaries.sh" control-plane
for bin in "$KWOKCTL" "$(kwok_bin_dir)/kwok" "$KUBECTL" "$(etcd_bin_dir)/etcd" \
  "$(kube_bin_dir)/kube-apiserver" "$(kube_bin_dir)/kube-controller-manager" "$(kube_bin_dir)/kube-scheduler"; do
  [[ -x "$bin" ]] || die "$bin is missing: run 'make binaries'"
done

mkdir -p "$CLUSTER_DIR/bin"
ln -sfn "$KUBECTL" "$CLUSTER_DIR/bin/kubectl"

real_node_up() {
  if [[ -x "$HACK_DIR/node-up.sh" && "${ASSAY_REAL_NODE:-}" != off ]]; then
    "$HACK_DIR/node-up.sh"
  fi
}

if cluster_answers; then
  # A running cluster is brought up to date with this checkout: the fake pods' stages and (node-up) the
  # runner image, which the tests rely on.
  kubectl apply -f "$KWOK_DIR/stages/" >/dev/null
  log "cluster '$CLUSTER_NAME' is already up (KUBECONFIG=$KUBECONFIG_PATH; stages applied); 'make cluster-down' first to change its settings"
  real_node_up
  exit 0
fi

if [[ -d "$WORKDIR" ]]; then
  claim_cluster "$WORKDIR" "$CLUSTER_NAME"
  # Left over from a crash or reboot (processes gone), or this checkout lost its
  # kubeconfig. A test cluster's state is not worth saving; start afresh.
  log "cluster '$CLUSTER_NAME' exists but does not answer at $KUBECONFIG_PATH: deleting it and starting a new one"
  "$HACK_DIR/cluster-down.sh"
fi

create_args=(
  --name "$CLUSTER_NAME"
  --config "$CLUSTER_DIR/kwokctl.yaml"
  --kubeconfig "$KUBECONFIG_PATH"
  --kube-apiserver-binary "$(kube_bin_dir)/kube-apiserver"
  --kube-controller-manager-binary "$(kube_bin_dir)/kube-controller-manager"
  --kube-scheduler-binary "$(kube_bin_dir)/kube-scheduler"
  --etcd-binary "$(etcd_bin_dir)/etcd"
  --kwok-controller-binary "$(kwok_bin_dir)/kwok"
  --wait 60s
)
[[ "${ASSAY_KWOK_DISABLE_QPS_LIMITS:-}" =~ ^(1|true|yes)$ ]] && create_args+=(--disable-qps-limits)
# shellcheck disable=SC2206  # word splitting is the interface
extra_args=(${ASSAY_KWOK_EXTRA_ARGS:-})

for attempt in 1 2; do
  base_port="$(free_port_block)"
  write_config "$base_port"
  log "starting cluster '$CLUSTER_NAME' on 127.0.0.1:$base_port (kwokctl $KWOK_VERSION, Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION)${extra_args[*]:+ with: ${extra_args[*]}}"
  rm -f "$KUBECONFIG_PATH"
  # kwokctl has no flag for kubectl; without it, it would use or fetch another one.
  if KWOK_KUBECTL_BINARY="$KUBECTL" "$KWOKCTL" create cluster "${create_args[@]}" "${extra_args[@]}" \
    >"$CLUSTER_DIR/create.log" 2>&1; then
    break
  fi
  tail -n 5 "$CLUSTER_DIR/create.log" >&2
  grep -h -m1 -i 'address already in use\|error\|fatal' "$WORKDIR"/logs/*.log 2>/dev/null | cut -c1-300 >&2 || true
  [[ $attempt == 1 ]] || die "kwokctl could not start the cluster (full output: $CLUSTER_DIR/create.log, logs: $WORKDIR/logs/); 'make cluster-down' cleans up"
  log "kwokctl could not start the cluster; cleaning up and trying once more"
  "$HACK_DIR/cluster-down.sh"
done
chmod 600 "$KUBECONFIG_PATH"
echo "$REPO_ROOT" >"$OWNER_FILE"

# Stages before nodes: without them kwok would never mark the nodes Ready.
kubectl wait --for=condition=Established --timeout=30s crd/stages.kwok.x-k8s.io >/dev/null
kubectl apply -f "$KWOK_DIR/stages/" >/dev/null
if [[ "${ASSAY_KWOK_ASSAY_PODS:-}" == succeed ]]; then
  kubectl apply -f "$KWOK_DIR/optional/assay-pods-succeed.yaml" >/dev/null
  log "Assay's task pods succeed 1 s after they start (evaluate step: a fake summary)"
fi
if [[ -n "${ASSAY_KWOK_AUTO_COMPLETE:-}" ]]; then
  delay_ms="$(duration_ms "$ASSAY_KWOK_AUTO_COMPLETE")" ||
    die "ASSAY_KWOK_AUTO_COMPLETE='$ASSAY_KWOK_AUTO_COMPLETE' is not a duration like 500ms, 2s or 1m"
  # The Job stage leaves Assay's pods to the Assay stage: their evaluate step needs a termination message.
  for stage in auto-complete-jobs assay-pods-succeed; do
    sed "s/durationMilliseconds: 1000/durationMilliseconds: $delay_ms/" "$KWOK_DIR/optional/$stage.yaml" |
      kubectl apply -f - >/dev/null
  done
  log "auto-complete: every Running Job pod succeeds ${delay_ms} ms after it starts"
fi
kubectl apply -f "$KWOK_DIR/nodes.yaml" >/dev/null
kubectl wait --for=condition=Ready --timeout=60s node -l type=kwok >/dev/null
# Pods can be created only once the controller-manager has made the namespace's
# default service account.
for _ in $(seq 60); do
  kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done

log "cluster '$CLUSTER_NAME' up in $((SECONDS - start)) s: $(kubectl get nodes -l type=kwok --no-headers | wc -l) fake nodes"

real_node_up

log "ready: export KUBECONFIG=$KUBECONFIG_PATH PATH=$CLUSTER_DIR/bin:\$PATH"
