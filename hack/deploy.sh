#!/usr/bin/env bash
# make deploy / make undeploy: Assay installed on the local cluster the way a cluster admin installs it,
# `kubectl apply -k` of manifests/, through an overlay (.cluster/deploy/) that changes three things only:
#   - the operator image: the one `make images` built here (assay.local/operator:<content hash>, already in
#     the real node's containerd: a rebuilt image is a new tag, so the Deployment rolls);
#   - where the two replicas run: the real node (its label and toleration), the cluster's only node that runs
#     real containers (on a fake node the pods would look Running and serve nothing);
#   - the webhook answers only the apiserver: manifests/components/webhook-client-auth with the client CA
#     of the cluster's apiserver (.cluster/webhook-client/, made by hack/kwok-cluster.sh).
# Then waits for the rollout: both replicas Ready on the real node, one of them acting (kopf peering), and the
# webhook configuration carrying the certificate the operator manages (its caBundle = Secret
# assay-system/assay-webhook-tls). The apiserver calls the webhook through its Service (kube-proxy on the
# real node: hack/node/services.sh).
#   hack/deploy.sh up      (make deploy)
#   hack/deploy.sh down    (make undeploy: kubectl delete -k, CRDs and every Evaluation included, as the
#                           README's uninstall; then checks that no webhook configuration of Assay is left)
#   hack/deploy.sh render  the overlay's objects (kubectl kustomize), nothing applied
#   ASSAY_DEPLOY_TIMEOUT   seconds to wait for the rollout (default 180)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"

CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
OVERLAY="$CLUSTER_DIR/deploy"
CLIENT_CA="$CLUSTER_DIR/webhook-client/ca.crt"
NAMESPACE=assay-system
WEBHOOK_CONFIGURATION=assay-validating-webhook
TIMEOUT="${ASSAY_DEPLOY_TIMEOUT:-180}"
what="${1:-up}"
start=$SECONDS

kubectl() { "$(kube_bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# write_overlay IMAGE: .cluster/deploy/kustomization.yaml over this checkout's manifests/, with the webhook
# client CA of the cluster (hack/kwok-cluster.sh made it; its apiserver presents a certificate it signed).
write_overlay() {
  mkdir -p "$OVERLAY"
  [[ -f "$CLIENT_CA" ]] ||
    die "$CLIENT_CA is missing: the cluster was started before its apiserver had a webhook client certificate ('make cluster-down cluster-up')"
  cp "$CLIENT_CA" "$OVERLAY/webhook-client-ca.crt"
  cat >"$OVERLAY/kustomization.yaml" <<EOF
# Written by hack/deploy.sh (make deploy): manifests/ with the locally built operator image, on the real node,
# answering only the apiserver (manifests/components/webhook-client-auth).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../manifests
components:
- ../../manifests/components/webhook-client-auth
configMapGenerator:
- name: assay-webhook-client-ca
  namespace: $NAMESPACE
  files: [ca.crt=webhook-client-ca.crt]
images:
- name: assay-operator
  newName: ${1%:*}
  newTag: ${1##*:}
patches:
- target: {kind: Deployment, name: assay-operator}
  patch: |-
    - op: add
      path: /spec/template/spec/nodeSelector
      value: {${NODE_POOL_LABEL%=*}: ${NODE_POOL_LABEL#*=}}
    - op: add
      path: /spec/template/spec/tolerations
      value: [{key: assay.dev/real-node, operator: Exists, effect: NoSchedule}]
EOF
}

operator_image() { "$HACK_DIR/images.sh" names | awk '$1 == "operator" {print $2}'; }

# jsonpath FIELD KIND/NAME: one field of one object in the operator's namespace, empty if absent.
field() { kubectl -n "$NAMESPACE" get "$2" -o "jsonpath=$1" 2>/dev/null || true; }

# What "installed" means, checked once (a line on stderr for the first thing not yet true).
rollout_problem() {
  local ready on_node peers ca secret
  ready="$(field '{.status.readyReplicas}' deployment/assay-operator)"
  [[ "$ready" == 2 ]] || { echo "${ready:-0}/2 replicas Ready"; return; }
  on_node="$(kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/component=operator \
    --field-selector "spec.nodeName=$NODE_NAME,status.phase=Running" -o name | wc -l)"
  [[ "$on_node" -ge 2 ]] || { echo "$on_node replicas running on the real node"; return; }
  peers="$(kubectl get clusterkopfpeering assay -o 'jsonpath={.status}' 2>/dev/null |
    python3 -c 'import json, sys; print(sum(1 for v in json.loads(sys.stdin.read() or "{}").values() if v))')"
  [[ "$peers" -ge 2 ]] || { echo "${peers:-0} replicas in the peering (leader election)"; return; }
  ca="$(kubectl get validatingwebhookconfiguration "$WEBHOOK_CONFIGURATION" \
    -o 'jsonpath={.webhooks[*].clientConfig.caBundle}' 2>/dev/null || true)"
  secret="$(field '{.data.tls\.crt}' secret/assay-webhook-tls)"
  [[ -n "$secret" && "$ca" == "$secret $secret" ]] ||
    { echo "the webhook's caBundle is not yet the operator's certificate (Secret assay-webhook-tls)"; return; }
}

up() {
  [[ "$(cat "$CLUSTER_DIR/real-node" 2>/dev/null)" == ready* ]] ||
    die "make deploy runs the operator's pods on the real node, which is not up ($(cat "$CLUSTER_DIR/real-node" 2>/dev/null || echo 'make cluster-up'))"
  "$HACK_DIR/images.sh" all
  local image problem="" last=""
  image="$(operator_image)"
  [[ -n "$image" ]] || die "hack/images.sh names gave no operator image"
  write_overlay "$image"
  log "deploy: kubectl apply -k ${OVERLAY#"$REPO_ROOT"/} (manifests/ with $image)"
  # One apply: manifests/ holds no object of its own CRDs' kinds (the operator creates its peering object).
  kubectl apply -k "$OVERLAY" >/dev/null
  kubectl -n "$NAMESPACE" rollout status deployment/assay-operator --timeout="${TIMEOUT}s" >&2
  local waited=$SECONDS
  while (( SECONDS - waited < TIMEOUT )); do
    problem="$(rollout_problem)"
    [[ -z "$problem" ]] && break
    [[ "$problem" == "$last" ]] || { log "deploy: waiting: $problem"; last="$problem"; }
    sleep 1
  done
  [[ -z "$problem" ]] || {
    kubectl -n "$NAMESPACE" get pods -o wide >&2 || true
    die "deploy: not installed after ${TIMEOUT} s: $problem (kubectl -n $NAMESPACE logs deploy/assay-operator)"
  }
  log "deploy: Assay installed in $((SECONDS - start)) s: 2 replicas Ready on '$NODE_NAME', one acting," \
    "webhook $WEBHOOK_CONFIGURATION (failurePolicy Fail) with the operator's certificate"
}

down() {
  [[ -f "$OVERLAY/kustomization.yaml" ]] || write_overlay "$(operator_image)"
  log "deploy: kubectl delete -k ${OVERLAY#"$REPO_ROOT"/} (CRDs, Evaluations and pools included)"
  kubectl delete -k "$OVERLAY" --ignore-not-found --wait=true --timeout="${TIMEOUT}s" >/dev/null
  # ClusterKopfPeering objects went with their CRD; a webhook configuration left behind would refuse every
  # Evaluation creation once the CRDs come back.
  ! kubectl get validatingwebhookconfiguration "$WEBHOOK_CONFIGURATION" >/dev/null 2>&1 ||
    die "deploy: the webhook configuration $WEBHOOK_CONFIGURATION is still there"
  log "deploy: Assay uninstalled in $((SECONDS - start)) s"
}

case "$what" in
  up) up ;;
  down) down ;;
  render) write_overlay "$(operator_image)"; kubectl kustomize "$OVERLAY" ;;
  *) die "unknown action '$what' (up, down or render)" ;;
esac
