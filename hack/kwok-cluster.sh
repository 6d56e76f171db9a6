#!/usr/bin/env bash
# This checkout's local clusters: etcd, kube-apiserver, kube-controller-manager and kube-scheduler (binaries
# built by hack/build-binaries.sh) under kwokctl's binary runtime on 127.0.0.1, RBAC and admission on, plus KWOK
# fake nodes whose pods are driven by the stages in hack/kwok/stages/.
#
#   hack/kwok-cluster.sh up   [ROLE] [OPTION...] [-- KWOKCTL_CREATE_ARG...]
#   hack/kwok-cluster.sh down [ROLE]
#   hack/kwok-cluster.sh name [ROLE]     prints its kwokctl name
#
# Without ROLE, the test cluster (make cluster-up, make cluster-down, the tests): kwokctl name
# ASSAY_CLUSTER_NAME (default assay), kubeconfig .cluster/kubeconfig, and the real node (hack/node-up.sh)
# unless ASSAY_REAL_NODE=off. With ROLE (a word: chaos, bench), a cluster of its own beside it, for work that
# restarts or loads a cluster: named <ASSAY_CLUSTER_NAME>-<ROLE> (or by <ROLE>_CLUSTER_NAME, e.g.
# CHAOS_CLUSTER_NAME), kubeconfig .cluster/<ROLE>/kubeconfig, never with the real node. Either way the
# built kubectl is linked as .cluster/bin/kubectl.
#
# up is idempotent: a cluster that answers is kept (its stages brought up to date with this checkout, and the
# real node's); one left stopped (a crash, a reboot) is deleted and started afresh. Options:
#   --fresh                delete this checkout's cluster first, even one that answers
#   --config FILE          kwokctl configuration (default hack/kwok/kwokctl.yaml); its ports are chosen here
#   --nodes FILE           the fake nodes (default hack/kwok/nodes.yaml); they must be labelled type=kwok
#   --stage FILE           one more kwok Stage file, applied after hack/kwok/stages/ (repeatable)
#   --audit POLICY         log the requests POLICY selects, in batches, to ~/.kwok/clusters/<name>/logs/audit.log
#   --disable-qps-limits   lift the components' client QPS limits and the apiserver's inflight limits
#   --auto-complete DELAY  every Running Job pod succeeds DELAY (500ms, 2s, 1m) after it starts (Assay's task
#                          pods with a valid termination message, as under the next)
#   --assay-pods succeed   Assay's task pods succeed 1 s after they start, the evaluate step with a fake
#                          summary (hack/kwok/optional/assay-pods-succeed.yaml)
#   -- ARG...              anything else for `kwokctl create cluster`, e.g.
#                          -- --extra-args kube-controller-manager=concurrent-job-syncs=20
# The test cluster takes its defaults from the environment (make cluster-up sets them from KWOK_* variables):
#   ASSAY_KWOK_DISABLE_QPS_LIMITS=1, ASSAY_KWOK_AUTO_COMPLETE=DELAY, ASSAY_KWOK_ASSAY_PODS=succeed, and
#   ASSAY_KWOK_EXTRA_ARGS (word-split: "--extra-args kube-controller-manager=concurrent-job-syncs=20").
# A cluster with a ROLE takes only its options: a shell's settings never change the chaos or benchmark cluster.
#
# down stops the cluster (the test cluster's real node too, via hack/node-down.sh) and checks that none of its
# processes is left. A cluster another checkout started is never touched while it runs (lib.sh claim_cluster).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { die "usage: $0 up|down|name [ROLE] [OPTION...] (see the comment at its top)"; }

command="${1:-}"
shift || usage
role=
if [[ $# -gt 0 && "$1" != -* ]]; then
  role="$1"
  shift
fi
# .cluster/bin holds the kubectl link; any other word names a state directory of its own.
[[ -z "$role" || ("$role" =~ ^[a-z0-9]+$ && "$role" != bin) ]] ||
  die "ROLE '$role': a lower-case word other than 'bin', such as chaos or bench"

if [[ -z "$role" ]]; then
  CLUSTER_NAME="${ASSAY_CLUSTER_NAME:-assay}"
  STATE_DIR="$REPO_ROOT/.cluster"
  DOWN_COMMAND="make cluster-down"
else
  name_override="${role^^}_CLUSTER_NAME"
  CLUSTER_NAME="${!name_override:-${ASSAY_CLUSTER_NAME:-assay}-$role}"
  STATE_DIR="$REPO_ROOT/.cluster/$role"
  DOWN_COMMAND="hack/kwok-cluster.sh down $role"
fi
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
KWOK_DIR="$HACK_DIR/kwok"
KWOKCTL="$(kwok_bin_dir)/kwokctl"
KUBECTL="$(kube_bin_dir)/kubectl"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$CLUSTER_NAME"
# Which checkout started the cluster: another checkout's cluster of the same name is never touched.
OWNER_FILE="$WORKDIR/assay-checkout"

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
    *s) echo $((${d%s} * 1000)) ;;
    *m) echo $((${d%m} * 60000)) ;;
    *) echo $((d * 1000)) ;;
  esac
}

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
      if ss -Htan "sport = :$p" | grep -q .; then
        taken=1
        break
      fi
    done
    [[ -z "$taken" ]] && {
      echo $((20000 + (block % 800) * 6))
      return
    }
  done
  die "no six free ports in 20000-24999"
}

# The kwokctl configuration with this cluster's ports (etcd's peer port has no flag or env).
write_config() {
  local base="$1" ports
  ports="$(printf '  %s: %s\n' kubeApiserverPort "$base" etcdPort $((base + 1)) etcdPeerPort $((base + 2)) \
    kubeControllerManagerPort $((base + 3)) kubeSchedulerPort $((base + 4)) kwokControllerPort $((base + 5)))"
  awk -v ports="$ports" '{ print } /^options:$/ { print ports }' "$config" >"$STATE_DIR/kwokctl.yaml"
}

# The apiserver's client certificate for admission webhooks (a CA of this cluster's own, under
# $STATE_DIR/webhook-client/): the apiserver presents it when it calls Assay's webhook Service, and the installed
# operator (make deploy: manifests/components/webhook-client-auth) accepts only callers it signed. An
# AdmissionConfiguration names a kubeconfig whose user, by the webhook's host, holds the certificate.
write_webhook_client_auth() {
  local dir="$STATE_DIR/webhook-client" host
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=assay-webhook-client-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$dir/client.key" -out "$dir/client.csr" 2>/dev/null
  openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile <(echo "extendedKeyUsage=clientAuth") -out "$dir/client.crt" 2>/dev/null
  rm -f "$dir/client.csr" "$dir/ca.srl"
  chmod 600 "$dir"/*.key
  # By host: the webhook Service's DNS name (port 443 is left out), and any Service of the operator's namespace.
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "users:"
    for host in assay-webhook.assay-system.svc '*.assay-system.svc'; do
      echo "- name: '$host'"
      echo "  user: {client-certificate: $dir/client.crt, client-key: $dir/client.key}"
    done
  } >"$dir/kubeconfig"
  local plugin
  {
    echo "apiVersion: apiserver.config.k8s.io/v1"
    echo "kind: AdmissionConfiguration"
    echo "plugins:"
    for plugin in ValidatingAdmissionWebhook MutatingAdmissionWebhook; do
      echo "- name: $plugin"
      echo "  configuration:"
      echo "    apiVersion: apiserver.config.k8s.io/v1"
      echo "    kind: WebhookAdmissionConfiguration"
      echo "    kubeConfigFile: $dir/kubeconfig"
    done
  } >"$dir/admission.yaml"
  create_args+=(--extra-args "kube-apiserver=admission-control-config-file=$dir/admission.yaml")
}

real_node_up() {
  if [[ -z "$role" && -x "$HACK_DIR/node-up.sh" && "${ASSAY_REAL_NODE:-}" != off ]]; then
    "$HACK_DIR/node-up.sh"
  fi
}

down() {
  claim_cluster "$WORKDIR" "$CLUSTER_NAME"
  # Kueue's manager (make kueue-up, hack/kueue.py) runs against the test cluster: it goes with it.
  if [[ -z "$role" && -f "$STATE_DIR/kueue/manager.pid" && -x "$REPO_ROOT/.venv/bin/python" ]]; then
    "$REPO_ROOT/.venv/bin/python" "$HACK_DIR/kueue.py" down || log "could not stop Kueue's manager cleanly"
  fi
  if [[ -z "$role" && -x "$HACK_DIR/node-down.sh" ]]; then
    "$HACK_DIR/node-down.sh"
  fi
  # The component pids kwokctl recorded, to check afterwards that they are gone.
  local pids=() f pid stray
  if [[ -d "$WORKDIR/pids" ]]; then
    for f in "$WORKDIR"/pids/*.pid; do
      [[ -f "$f" ]] && pids+=("$(<"$f")")
    done
  fi
  if [[ -d "$WORKDIR" ]]; then
    [[ -x "$KWOKCTL" ]] || die "$KWOKCTL is missing: run 'make binaries' (needed to stop the cluster)"
    log "stopping cluster '$CLUSTER_NAME'"
    # --kubeconfig: kwokctl removes its context from our kubeconfig, never ~/.kube/config.
    "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 ||
      log "kwokctl delete cluster failed; checking for leftover processes"
  else
    log "cluster '$CLUSTER_NAME' is not running"
  fi
  rm -f "$KUBECONFIG_PATH"
  # kwokctl sends SIGTERM; give components a moment, then make sure.
  for pid in "${pids[@]}"; do
    for _ in $(seq 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    # Only if it is still one of ours (pids get reused).
    if kill -0 "$pid" 2>/dev/null && grep -qF "$WORKDIR/" "/proc/$pid/cmdline" 2>/dev/null; then
      log "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)) survived: killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  # Anything else still running from this cluster's directory is a leak too.
  stray="$(pgrep -f -- "$WORKDIR/" || true)"
  if [[ -n "$stray" ]]; then
    ps -o pid=,args= -p "${stray//$'\n'/,}" >&2 || true
    die "processes of cluster '$CLUSTER_NAME' are still running (listed above)"
  fi
  log "cluster '$CLUSTER_NAME' is down; no process left"
}

# The options of `up`, then the cluster's own defaults from the environment (test cluster only).
fresh=
config="$KWOK_DIR/kwokctl.yaml"
nodes="$KWOK_DIR/nodes.yaml"
stages=()
audit_policy=
disable_qps_limits=
auto_complete=
assay_pods=
extra_args=()
if [[ -z "$role" ]]; then
  [[ "${ASSAY_KWOK_DISABLE_QPS_LIMITS:-}" =~ ^(1|true|yes)$ ]] && disable_qps_limits=1
  auto_complete="${ASSAY_KWOK_AUTO_COMPLETE:-}"
  assay_pods="${ASSAY_KWOK_ASSAY_PODS:-}"
  # shellcheck disable=SC2206  # word splitting is the interface
  extra_args=(${ASSAY_KWOK_EXTRA_ARGS:-})
fi

# A file option's value, checked and made absolute.
file_option() {
  [[ -f "$2" ]] || die "$1 '$2': no such file"
  realpath "$2"
}

parse_up_options() {
  while (($#)); do
    case "$1" in
      --fresh) fresh=1 ;;
      --disable-qps-limits) disable_qps_limits=1 ;;
      --config | --nodes | --stage | --audit | --auto-complete | --assay-pods)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in
          --config) config="$(file_option "$1" "$2")" ;;
          --nodes) nodes="$(file_option "$1" "$2")" ;;
          --stage) stages+=("$(file_option "$1" "$2")") ;;
          --audit) audit_policy="$(file_option "$1" "$2")" ;;
          --auto-complete) auto_complete="$2" ;;
          --assay-pods) assay_pods="$2" ;;
        esac
        shift
        ;;
      --)
        shift
        extra_args+=("$@")
        return
        ;;
      *) die "up: unknown option '$1' (the comment at the top of $0 lists them)" ;;
    esac
    shift
  done
}

up() {
  local start=$SECONDS delay_ms= bin attempt base_port stage
  # Refused before a cluster starts, not half-way through setting it up.
  [[ -z "$assay_pods" || "$assay_pods" == succeed ]] ||
    die "assay pods '$assay_pods' (ASSAY_KWOK_ASSAY_PODS or --assay-pods): the only choice is 'succeed'"
  if [[ -n "$auto_complete" ]]; then
    delay_ms="$(duration_ms "$auto_complete")" ||
      die "auto-complete '$auto_complete' (ASSAY_KWOK_AUTO_COMPLETE or --auto-complete) is not a duration like 500ms, 2s or 1m"
  fi

  "$HACK_DIR/build-binaries.sh" control-plane
  for bin in "$KWOKCTL" "$(kwok_bin_dir)/kwok" "$KUBECTL" "$(etcd_bin_dir)/etcd" \
    "$(kube_bin_dir)/kube-apiserver" "$(kube_bin_dir)/kube-controller-manager" "$(kube_bin_dir)/kube-scheduler"; do
    [[ -x "$bin" ]] || die "$bin is missing: run 'make binaries'"
  done
  mkdir -p "$STATE_DIR" "$REPO_ROOT/.cluster/bin"
  ln -sfn "$KUBECTL" "$REPO_ROOT/.cluster/bin/kubectl"

  if [[ -z "$fresh" ]] && cluster_answers; then
    # A running cluster is brought up to date with this checkout: the fake pods' stages and (node-up) the
    # runner image, which the tests rely on.
    kubectl apply -f "$KWOK_DIR/stages/" >/dev/null
    log "cluster '$CLUSTER_NAME' is already up (KUBECONFIG=$KUBECONFIG_PATH; stages applied); '$DOWN_COMMAND' first to change its settings"
    real_node_up
    return
  fi
  if [[ -d "$WORKDIR" ]]; then
    claim_cluster "$WORKDIR" "$CLUSTER_NAME"
    # A test cluster's state is not worth saving; start afresh.
    if [[ -n "$fresh" ]]; then
      log "cluster '$CLUSTER_NAME' exists: deleting it to start a fresh one"
    else
      # Left over from a crash or reboot (processes gone), or this checkout lost its kubeconfig.
      log "cluster '$CLUSTER_NAME' exists but does not answer at $KUBECONFIG_PATH: deleting it and starting a new one"
    fi
    down
  fi

  local create_args=(
    --name "$CLUSTER_NAME"
    --config "$STATE_DIR/kwokctl.yaml"
    --kubeconfig "$KUBECONFIG_PATH"
    --kube-apiserver-binary "$(kube_bin_dir)/kube-apiserver"
    --kube-controller-manager-binary "$(kube_bin_dir)/kube-controller-manager"
    --kube-scheduler-binary "$(kube_bin_dir)/kube-scheduler"
    --etcd-binary "$(etcd_bin_dir)/etcd"
    --kwok-controller-binary "$(kwok_bin_dir)/kwok"
    --wait 120s
  )
  [[ -n "$disable_qps_limits" ]] && create_args+=(--disable-qps-limits)
  if [[ -n "$audit_policy" ]]; then
    # Batched, so that the log costs the apiserver little; 100 GB before it rotates.
    create_args+=(
      --kube-audit-policy "$audit_policy"
      --extra-args kube-apiserver=audit-log-mode=batch
      --extra-args kube-apiserver=audit-log-batch-buffer-size=200000
      --extra-args kube-apiserver=audit-log-batch-max-size=1000
      --extra-args kube-apiserver=audit-log-batch-max-wait=1s
      --extra-args kube-apiserver=audit-log-maxsize=100000
    )
  fi

  write_webhook_client_auth

  for attempt in 1 2; do
    base_port="$(free_port_block)"
    write_config "$base_port"
    log "starting cluster '$CLUSTER_NAME' on 127.0.0.1:$base_port (kwokctl $KWOK_VERSION, Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION)${extra_args[*]:+ with: ${extra_args[*]}}"
    rm -f "$KUBECONFIG_PATH"
    # kwokctl has no flag for kubectl; without it, it would use or fetch another one.
    if KWOK_KUBECTL_BINARY="$KUBECTL" "$KWOKCTL" create cluster "${create_args[@]}" "${extra_args[@]}" \
      >"$STATE_DIR/create.log" 2>&1; then
      break
    fi
    tail -n 5 "$STATE_DIR/create.log" >&2
    grep -h -m1 -i 'address already in use\|error\|fatal' "$WORKDIR"/logs/*.log 2>/dev/null | cut -c1-300 >&2 || true
    [[ $attempt == 1 ]] || die "kwokctl could not start the cluster (full output: $STATE_DIR/create.log, logs: $WORKDIR/logs/); '$DOWN_COMMAND' cleans up"
    log "kwokctl could not start the cluster; cleaning up and trying once more"
    down
  done
  chmod 600 "$KUBECONFIG_PATH"
  echo "$REPO_ROOT" >"$OWNER_FILE"

  # Stages before nodes: without them kwok would never mark the nodes Ready.
  kubectl wait --for=condition=Established --timeout=60s crd/stages.kwok.x-k8s.io >/dev/null
  kubectl apply -f "$KWOK_DIR/stages/" >/dev/null
  for stage in "${stages[@]}"; do
    kubectl apply -f "$stage" >/dev/null
  done
  if [[ "$assay_pods" == succeed ]]; then
    kubectl apply -f "$KWOK_DIR/optional/assay-pods-succeed.yaml" >/dev/null
    log "Assay's task pods succeed 1 s after they start (evaluate step: a fake summary)"
  fi
  if [[ -n "$delay_ms" ]]; then
    # The Job stage leaves Assay's pods to the Assay stage: their evaluate step needs a termination message.
    for stage in auto-complete-jobs assay-pods-succeed; do
      sed "s/durationMilliseconds: 1000/durationMilliseconds: $delay_ms/" "$KWOK_DIR/optional/$stage.yaml" |
        kubectl apply -f - >/dev/null
    done
    log "auto-complete: every Running Job pod succeeds ${delay_ms} ms after it starts"
  fi
  kubectl apply -f "$nodes" >/dev/null
  kubectl wait --for=condition=Ready --timeout=120s node -l type=kwok >/dev/null
  # Pods can be created only once the controller-manager has made the namespace's
  # default service account.
  for _ in $(seq 60); do
    kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.5
  done

  log "cluster '$CLUSTER_NAME' up in $((SECONDS - start)) s: $(kubectl get nodes -l type=kwok --no-headers | wc -l) fake nodes${audit_policy:+; audit log: $WORKDIR/logs/audit.log}"
  real_node_up
  log "ready: export KUBECONFIG=$KUBECONFIG_PATH PATH=$REPO_ROOT/.cluster/bin:\$PATH"
}

case "$command" in
  up)
    parse_up_options "$@"
    up
    ;;
  down)
    (($# == 0)) || usage
    down
    ;;
  name)
    (($# == 0)) || usage
    echo "$CLUSTER_NAME"
    ;;
  *) usage ;;
esac
