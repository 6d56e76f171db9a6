# shellcheck shell=bash
# Services on the real node. Sourced by hack/node-up.sh and hack/node-down.sh after paths.sh.
#
# kube-proxy (nftables mode, built from the same Kubernetes wrapper module as the kubelet) makes ClusterIP
# Services work on this machine: the apiserver calls the webhook Service, and the metrics and debug Services
# answer from here. All its rules live in its own nftables tables (ip/ip6 kube-proxy).
#
# Pods also need the apiserver, which listens on 127.0.0.1 only (kwokctl's bindAddress): the `kubernetes`
# Service's endpoint is this machine's own address, where nothing listens. The least exposing way found:
#   - one DNAT rule, in a table of ours that runs before kube-proxy's, sends what a pod sends to the
#     `kubernetes` ClusterIP:443 to 127.0.0.1:<apiserver port>, and nothing else;
#   - route_localnet on the pod bridge only (never `all`), so the kernel delivers those packets to loopback;
#   - a filter rule drops anything else that arrives from the bridge for 127.0.0.0/8: with route_localnet a
#     pod that forges packets could otherwise reach every loopback service (etcd, the kubelet's port).
# Not done: ip_forward stays as the machine has it (off here). Host -> pod and pod -> host traffic is local
# delivery, not forwarding, so Services work without it; pod -> Service -> another pod would need it, and
# nothing here does that. Binding the apiserver to the bridge instead would expose it to every pod on every
# address; `--enable-aggregator-routing` would serve the webhook but leave pods without an apiserver.

KUBE_PROXY="$(kube_proxy_bin_dir)/kube-proxy"
KUBE_PROXY_HEALTHZ=127.0.0.1:10256
NFT_TABLE=assay-node
CNI_GATEWAY="${CNI_SUBNET%/*}"
CNI_GATEWAY="${CNI_GATEWAY%.*}.1"

# The kernel settings node-up may change or kube-proxy might touch; node-down writes the saved values back.
SERVICE_SYSCTLS=(net/ipv4/ip_forward net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables
  net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_tcp_timeout_established
  net/netfilter/nf_conntrack_tcp_timeout_close_wait)

# The pod bridge, made before the CNI plugin would make it (the plugin takes it as it is), so that
# route_localnet is set on it alone. It goes with the bridge.
pod_bridge_up() {
  ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || ip link add "$CNI_BRIDGE" type bridge
  ip addr show dev "$CNI_BRIDGE" | grep -q "inet $CNI_GATEWAY/" ||
    ip addr add "$CNI_GATEWAY/${CNI_SUBNET#*/}" dev "$CNI_BRIDGE"
  ip link set "$CNI_BRIDGE" up
  echo 1 >"/proc/sys/net/ipv4/conf/$CNI_BRIDGE/route_localnet"
}

# pods_to_apiserver_rules SERVICE_IP SERVICE_PORT APISERVER_PORT: our nftables table, as `nft -f` reads it.
pods_to_apiserver_rules() {
  cat <<EOF
table ip $NFT_TABLE {
  chain pods-to-apiserver {
    type nat hook prerouting priority dstnat - 10; policy accept;
    iifname "$CNI_BRIDGE" ip daddr $1 tcp dport $2 dnat to 127.0.0.1:$3
  }
  chain loopback-only-through-dnat {
    type filter hook input priority filter - 10; policy accept;
    iifname "$CNI_BRIDGE" ip daddr 127.0.0.0/8 ct status dnat accept
    iifname "$CNI_BRIDGE" ip daddr 127.0.0.0/8 drop
  }
}
EOF
}

# services_up KUBECTL_FN: the DNAT for the apiserver, then kube-proxy; waits until kube-proxy has written
# its rules. Needs the Node object (kube-proxy reads its addresses), so it runs after the kubelet is Ready.
services_up() {
  local svc_ip svc_port api_port
  svc_ip="$(kubectl -n default get service kubernetes -o 'jsonpath={.spec.clusterIP}')"
  svc_port="$(kubectl -n default get service kubernetes -o 'jsonpath={.spec.ports[0].port}')"
  api_port="$(sed -n 's#^ *server: https://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$NODE_RUN/kubeconfig" | head -1)"
  [[ -n "$svc_ip" && -n "$svc_port" && -n "$api_port" ]] ||
    return 1
  nft delete table ip "$NFT_TABLE" 2>/dev/null || true
  pods_to_apiserver_rules "$svc_ip" "$svc_port" "$api_port" | nft -f - || return 1
  # No conntrack sizing (0: leave the kernel's), no NodePorts beyond the bridge's address, everything it
  # serves itself on loopback.
  setsid "$KUBE_PROXY" --kubeconfig "$NODE_RUN/kubeconfig" --hostname-override "$NODE_NAME" \
    --proxy-mode nftables --cluster-cidr "$CNI_SUBNET" --nodeport-addresses "$CNI_GATEWAY/32" \
    --healthz-bind-address "$KUBE_PROXY_HEALTHZ" \
    --metrics-bind-address 127.0.0.1:10249 --conntrack-max-per-core 0 --conntrack-min 0 \
    --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 --v=1 \
    </dev/null >"$NODE_LOGS/kube-proxy.log" 2>&1 8>&- &
  echo $! >"$NODE_RUN/kube-proxy.pid"
  local _
  for _ in $(seq 120); do
    kube_proxy_synced && return 0
    running "$NODE_RUN/kube-proxy.pid" || return 1
    sleep 0.5
  done
  return 1
}

# kube-proxy has synced once: its health endpoint says so and its table holds the `kubernetes` Service.
kube_proxy_synced() {
  curl -fsS "http://$KUBE_PROXY_HEALTHZ/healthz" >/dev/null 2>&1 &&
    nft list table ip kube-proxy 2>/dev/null | grep -q 'default/kubernetes'
}

# What services_up added, gone (kube-proxy stopped first by the caller); idempotent.
services_down() {
  local family
  for family in ip ip6; do nft delete table "$family" kube-proxy 2>/dev/null || true; done
  nft delete table ip "$NFT_TABLE" 2>/dev/null || true
  kubelet_iptables_down
}

# The iptables chains a kubelet makes where iptables is installed (KUBE-IPTABLES-HINT always, the firewall
# chains unless makeIPTablesUtilChains is off, as ours has it; an older node of this project had them on).
# Removed with the rules that jump to them (the empty tables iptables-nft made stay: they change nothing).
kubelet_iptables_down() {
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      { "$ipt" -t "$table" -S 2>/dev/null || true; } | sed -n 's/^-A \([A-Z]* .*-j KUBE-\)/-D \1/p' |
        while IFS= read -r rule; do eval "\"$ipt\" -t $table $rule" 2>/dev/null || true; done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Our nftables tables, and the kubelet's iptables chains, still there (for node-down's final check).
services_left() {
  command -v nft >/dev/null || return 0
  nft list tables 2>/dev/null | grep -E "table (ip|ip6) (kube-proxy|$NFT_TABLE)$" || true
  nft list ruleset 2>/dev/null | grep -oE 'chain KUBE-[A-Z-]+' | sort -u || true
}
