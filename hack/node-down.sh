#!/usr/bin/env bash
# Stops the real node started by hack/node-up.sh and leaves nothing of it behind: no process, no mount,
# no network interface or namespace, no container, no cgroup, no kernel setting changed. Then checks that
# and fails, listing what is left, if anything is. Idempotent; safe when the node never started.
# The images stay in containerd's root ($ASSAY_CACHE/node) so the next node-up starts fast.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"
source "$HACK_DIR/node/services.sh"

CLUSTER_DIR="$REPO_ROOT/.cluster"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
KUBECTL="$(kube_bin_dir)/kubectl"
start=$SECONDS

# One node-up or node-down at a time (node-up calls node-down, which then inherits the lock).
if [[ -z "${ASSAY_NODE_LOCK_HELD:-}" ]]; then
  mkdir -p "$ASSAY_CACHE/run"
  exec 8>"$ASSAY_CACHE/run/node.lock"
  flock -n 8 || { log "real node: another node-up/node-down is running; waiting for it"; flock 8; }
  export ASSAY_NODE_LOCK_HELD=1
fi

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=5s "$@"; }
api_up() { [[ -s "$KUBECONFIG_PATH" && -x "$KUBECTL" ]] && kubectl get --raw=/readyz >/dev/null 2>&1; }

# stop_daemon PIDFILE NAME: SIGTERM, a grace period, then SIGKILL.
stop_daemon() {
  local pidfile="$1" name="$2" pid
  running "$pidfile" || return 0
  pid="$(<"$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "real node: $name ($pid) ignored SIGTERM for 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 25); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}

# Our processes that are not one of the two daemons: container shims (by our socket path) and whatever
# runs in the pods' cgroups.
stray_pids() {
  pgrep -f -- "-address $CONTAINERD_SOCK" || true
  local procs
  for procs in /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs \
    /sys/fs/cgroup/kubepods/cgroup.procs /sys/fs/cgroup/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/kubepods/*/*/cgroup.procs /sys/fs/cgroup/kubepods/*/*/*/cgroup.procs; do
    [[ -f "$procs" ]] && cat "$procs"
  done
}

# Mount points under our directories, deepest first.
our_mounts() {
  awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' |
    grep -E "^($NODE_RUN|$NODE_STATE)(/|$)" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- || true
}

# The node serves one checkout's cluster: another checkout's cluster-down leaves it alone.
owner="$(cat "$NODE_RUN/owner" 2>/dev/null || true)"
if [[ -n "$owner" && "$owner" != "$KUBECONFIG_PATH" && "${ASSAY_NODE_DOWN_ANY:-}" != 1 ]] &&
  running "$NODE_RUN/kubelet.pid"; then
  log "real node: it serves another cluster ($owner); leaving it (ASSAY_NODE_DOWN_ANY=1 stops it anyway)"
  exit 0
fi

was_running=false
{ running "$NODE_RUN/kubelet.pid" || running "$NODE_RUN/containerd.pid" || running "$NODE_RUN/kube-proxy.pid"; } &&
  was_running=true

# 1. With the API and the kubelet up, let the kubelet stop the pods itself: it tears down their
#    containers and networks properly. Cordoned first so no new pod is placed meanwhile.
if running "$NODE_RUN/kubelet.pid" && api_up; then
  log "real node: draining '$NODE_NAME'"
  kubectl cordon "$NODE_NAME" >/dev/null 2>&1 || true
  kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
    --grace-period=2 --wait=false >/dev/null 2>&1 || true
  # Until no container runs (exited ones are removed below).
  for _ in $(seq 60); do
    ctr_node tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | grep -q . || break
    sleep 0.5
  done
fi

# 2. kube-proxy and its rules and ours (hack/node/services.sh), the kubelet, then the Node object (deleted
#    while the kubelet ran, it would register again).
stop_daemon "$NODE_RUN/kube-proxy.pid" kube-proxy
services_down
stop_daemon "$NODE_RUN/kubelet.pid" kubelet
if api_up && kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
fi

# 3. Whatever containers are left (the API was down, or the kubelet was slow): kill and remove them. If
#    containerd died (a killed session), start it once more, so its records in the kept root go too.
if ! containerd_up && [[ -f "$NODE_RUN/containerd.toml" ]]; then
  PATH="$(containerd_bin_dir):$PATH" setsid "$(containerd_bin_dir)/containerd" --config "$NODE_RUN/containerd.toml" \
    </dev/null >>"$NODE_LOGS/containerd.log" 2>&1 8>&- &
  echo $! >"$NODE_RUN/containerd.pid"
  for _ in $(seq 50); do containerd_up && break; sleep 0.2; done
fi
if containerd_up; then
  for task in $(ctr_node tasks ls -q 2>/dev/null); do
    ctr_node tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
  done
  for _ in $(seq 25); do
    ctr_node tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
    sleep 0.2
  done
  for task in $(ctr_node tasks ls -q 2>/dev/null); do ctr_node tasks delete -f "$task" >/dev/null 2>&1 || true; done
  for sb in $(ctr_node sandboxes ls 2>/dev/null | awk 'NR > 1 {print $1}'); do
    ctr_node sandboxes rm -f "$sb" >/dev/null 2>&1 || true
  done
  for c in $(ctr_node containers ls -q 2>/dev/null); do ctr_node containers rm "$c" >/dev/null 2>&1 || true; done
fi
stop_daemon "$NODE_RUN/containerd.pid" containerd

# 4. Processes that outlived their manager (shims, container processes): by pid, found above.
for pid in $(stray_pids | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
for _ in $(seq 25); do [[ -z "$(stray_pids)" ]] && break; sleep 0.2; done

# 5. Mounts: container root filesystems, network namespaces, the kubelet's volumes and its root bind mount.
while IFS= read -r m; do
  [[ -n "$m" ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
done < <(our_mounts)

# 6. Network: the bridge and any veth still attached to it (pods' namespaces are gone with their mounts).
for veth in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip link delete "$veth" 2>/dev/null || true
done
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$CNI_BRIDGE"
# The CNI library's result cache (kept in /var/lib/cni whatever the config says), for our network only.
rm -f /var/lib/cni/results/assay-* 2>/dev/null || true
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true

# 7. The pods' cgroups (the kubelet makes kubepods/ in every controller), deepest first.
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d "$root" ]] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
done

# 8. The kubelet's links in /var/log/containers that point at our pod logs; the kernel settings it changed.
find /var/log/containers -maxdepth 1 -lname "$NODE_RUN/*" -delete 2>/dev/null || true
rmdir /var/log/containers 2>/dev/null || true
if [[ -f "$NODE_RUN/sysctl.saved" ]]; then
  while read -r key value; do
    [[ "$(cat "/proc/sys/$key" 2>/dev/null)" == "$value" ]] || echo "$value" >"/proc/sys/$key" 2>/dev/null ||
      log "real node: could not restore /proc/sys/$key to $value"
  done <"$NODE_RUN/sysctl.saved"
fi

rm -rf "$NODE_RUN"
rm -f "$CLUSTER_DIR/real-node"

# 9. Check: nothing of the node may be left.
left=()
[[ -z "$(stray_pids)" ]] || left+=("processes: $(stray_pids | sort -u | tr '\n' ' ')")
stray="$(pgrep -f -- "$NODE_RUN/" || true)"
[[ -z "$stray" ]] || left+=("processes: $(ps -o pid=,args= -p "${stray//$'\n'/,}" | cut -c1-120 | tr '\n' ';')")
[[ -z "$(our_mounts)" ]] || left+=("mounts: $(our_mounts | tr '\n' ' ')")
! ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || left+=("network interface $CNI_BRIDGE")
[[ -z "$(services_left)" ]] || left+=("nftables: $(services_left | tr '\n' ' ')")
ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods >/dev/null 2>&1 &&
  left+=("cgroups: $(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null | tr '\n' ' ')")
((${#left[@]} == 0)) || die "real node: left behind after stopping: ${left[*]}"
if $was_running; then log "real node stopped in $((SECONDS - start)) s; nothing left behind"; fi
