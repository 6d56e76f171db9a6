#!/usr/bin/env bash
# Installs the Debian packages the real node and `make images` need: runc (the OCI runtime under
# containerd's shim), the CNI plugins (bridge, host-local, loopback), and debootstrap (the runner
# image without a registry or a Docker engine), nftables (the `nft` that kube-proxy's nftables mode runs). Quick
# and silent when all are installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# package -> a file it installs, so a check needs no dpkg query per package.
declare -A PROVIDES=(
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [debootstrap]=/usr/sbin/debootstrap
  [nftables]=/usr/sbin/nft
  [iproute2]=/usr/sbin/ip
  [mount]=/usr/bin/mount
)
missing=()
for pkg in "${!PROVIDES[@]}"; do
  [[ -e "${PROVIDES[$pkg]}" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then exit 0; fi

[[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root (run: sudo $0)"
command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get here: install them with your package manager"
log "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
