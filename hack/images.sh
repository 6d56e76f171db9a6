#!/usr/bin/env bash
# Builds the runner, operator and pod sandbox images with no registry and no Docker engine, and imports them
# into the real node's containerd when it runs.
#   hack/images.sh [build|import|all|names]     (default: all = build, then import if the node is up)
#   hack/images.sh archive runner|operator|sandbox   the path of the image's OCI archive (built or not)
#   hack/images.sh config runner|operator       the image's OCI config, as JSON (what tests compare with
#                                               the Dockerfile)
#
# The runner image is three layers, each cached by the content of what makes it, so an unchanged tree
# rebuilds nothing and a change to operator/ rebuilds only the small top layer:
#   base     Debian (debootstrap --variant=minbase) with python3 (and venv)
#   deps     a venv in /opt/assay with the third-party dependencies, pinned by constraints.txt
#            (hack/images/install-assay.sh deps)
#   package  the assay package                                      (hack/images/install-assay.sh package)
# It is the Dockerfile's `runner` target plus the `examples` extra (the digits example's scikit-learn): the
# same venv in /opt/assay, the same pip install -c constraints.txt, the same environment and user.
# Each layer is made in a chroot over an overlay of the layers below it, inside a private mount namespace
# (so no mount outlives the build). Each layer directory is compressed once into a blob, and
# hack/images/oci_archive.py writes the OCI image archives that `ctr images import` loads: seconds, where
# buildah's vfs driver took 3-4 minutes per change (it copies the root filesystem at every step and
# recompresses every layer at every push). Everything is kept in $ASSAY_CACHE/images.
# The operator image is the Dockerfile's `operator` target made the same way: its own dependency layer (the
# core and the `console` extra, in a venv WITHOUT pip: nothing installs at run time) and package layer, built
# over the base layer, then stacked on a slim copy of it: the base blob less what hack/images/operator-slim.txt
# names (pip's wheels, apt and dpkg, the shells and their tools: the Dockerfile's build-operator-root stage
# removes the same list). Only that blob is extra (no second root filesystem), made in seconds from the base.
# The sandbox ("pause") image is the base layer sleeping forever: it costs no extra disk.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node/paths.sh"
what="${1:-all}"

DEBIAN_SUITE=bookworm          # python3 3.11, what pyproject.toml's requires-python asks for
BASE_PACKAGES=python3,python3-venv
BASE_RECIPE=2                  # bump when the base recipe below changes
# The Dockerfile's runner has runner,debug; the local image adds the digits example's libraries.
IMAGE_EXTRAS=runner,examples,debug
# The Dockerfile's build-operator stage: `pip install '.[console]'` into a venv made --without-pip.
OPERATOR_EXTRAS=console
# What the runner image is made of; a change to any of these files changes the image's tag.
INPUTS=(pyproject.toml README.md constraints.txt operator hack/images hack/images.sh)
PIP_CACHE="$IMAGES_CACHE/pip-cache"

sha() { sha256sum | cut -c1-16; }

# The Debian mirror the host already uses (apt sources), so no address is written down here.
debian_mirror() {
  if [[ -n "${ASSAY_DEBIAN_MIRROR:-}" ]]; then echo "$ASSAY_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' | head -1)
  [[ -n "$uri" ]] || uri=$(sed -n 's/^deb[[:space:]]\+\([^[:space:]]*\/debian\)\/\{0,1\}[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt sources; set ASSAY_DEBIAN_MIRROR"
  echo "$uri"
}

# The files that make the runner image: tracked or untracked, never git-ignored (no caches, no venv).
input_files() { git -C "$REPO_ROOT" ls-files -co --exclude-standard -- "${INPUTS[@]}" | sort -u; }

base_key() { printf '%s\n' "$DEBIAN_SUITE" "$BASE_PACKAGES" "$BASE_RECIPE" | sha; }
# Both read the staged copy of the inputs, so a file edited during a build cannot split the keys.
#   deps_key EXTRAS [VENV_PIP]   inputs_key DEPS_KEY
deps_key() {
  {
    base_key
    cd "$CTX" && cat constraints.txt hack/images/install-assay.sh
    python3 hack/images/dependencies.py pyproject.toml "$1"
    [[ "${2:-yes}" == yes ]] || echo "venv without pip"
  } | sha
}
inputs_key() {
  { echo "$1"; cd "$CTX" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha
}

# run_in_root ROOT LOWERS UPPER CMD...: runs CMD chrooted in ROOT. With LOWERS (colon-separated, top
# first) ROOT is an overlay of UPPER over LOWERS, so UPPER collects exactly the new layer. A private mount
# namespace holds every mount: they all disappear when CMD ends, whatever happens.
run_in_root() {
  local root="$1" lowers="$2" upper="$3"; shift 3
  local ctx="$CTX"
  # pip in the chroot trusts what the host's pip trusts (a TLS-inspecting proxy's CA, say), for the build
  # only: the bundle is mounted, never copied into the image.
  local ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
  [[ -f "$ca" ]] || ca=/dev/null
  local pass_env=(PIP_CACHE_DIR=/tmp/pip-cache)
  [[ "$ca" == /dev/null ]] || pass_env+=(PIP_CERT=/tmp/host-ca.pem)
  local v
  for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT; do
    [[ -z "${!v:-}" ]] || pass_env+=("$v=${!v}")
  done
  mkdir -p "$PIP_CACHE"
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root="$1" lowers="$2" upper="$3" ctx="$4" pipcache="$5" ca="$6" env="$7"; shift 7
    if [[ -n "$lowers" ]]; then
      mkdir -p "$root" "$upper" "$upper.work"
      mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$upper,workdir=$upper.work" "$root"
    fi
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    mkdir -p "$root/tmp/src" "$root/tmp/pip-cache"
    mount --bind -o ro "$ctx" "$root/tmp/src"
    mount --bind "$pipcache" "$root/tmp/pip-cache"
    touch "$root/tmp/host-ca.pem" && mount --bind -o ro "$ca" "$root/tmp/host-ca.pem"
    touch "$root/etc/resolv.conf" && mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
    # shellcheck disable=SC2086  # one variable assignment per word
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 $env chroot "$root" "$@"
  ' run_in_root "$root" "$lowers" "$upper" "$ctx" "$PIP_CACHE" "$ca" "${pass_env[*]}" "$@"
  [[ -z "$lowers" ]] || rm -rf "$upper.work"
}

# A private copy of the inputs (CTX): what the keys hash and what the chroot reads as /tmp/src (read-only).
stage_context() {
  CTX="$(mktemp -d "$IMAGES_CACHE/work/ctx.XXXXXX")"
  trap 'rm -rf "$CTX"' EXIT
  (cd "$REPO_ROOT" && input_files | while read -r f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done |
    xargs -0 -r cp --parents -t "$CTX")
  # The few pins this image's older Python cannot install (see the file).
  local name pin
  while read -r pin; do
    name="${pin%%==*}"
    sed -i "s/^${name}==.*/${pin}/I" "$CTX/constraints.txt"
  done < <(grep -v '^#' "$HACK_DIR/images/constraints-override.txt" | grep '==')
}

build_base_rootfs() {
  local dir="$IMAGES_CACHE/base-$BASE_KEY"
  [[ -f "$dir/.complete" ]] && return
  log "base layer: debootstrap $DEBIAN_SUITE with $BASE_PACKAGES (about a minute)"
  rm -rf "$dir" && mkdir -p "$dir"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$dir/rootfs" "$(debian_mirror)" \
    >"$dir/debootstrap.log" 2>&1 || die "debootstrap failed; see $dir/debootstrap.log"
  # Nothing in an image should depend on the build host: drop apt's downloads and lists, device nodes
  # (the runtime mounts its own /dev) and the host's resolver.
  rm -rf "$dir/rootfs"/var/cache/apt/archives/*.deb "$dir/rootfs"/var/lib/apt/lists/* "$dir/rootfs"/dev/*
  : >"$dir/rootfs/etc/resolv.conf"
  touch "$dir/.complete"
}

# build_layer NAME KEY LOWERS CMD...: the files CMD adds over LOWERS, kept in IMAGES_CACHE/NAME-KEY/layer.
build_layer() {
  local name="$1" key="$2" lowers="$3"; shift 3
  local dir="$IMAGES_CACHE/$name-$key"
  [[ -f "$dir/.complete" ]] && return
  rm -rf "$dir" && mkdir -p "$dir"
  run_in_root "$dir/merged" "$lowers" "$dir/layer" "$@"
  # The mount points made for the build are not part of the image.
  rm -rf "$dir/merged" "$dir/layer/tmp" "$dir/layer/etc/resolv.conf" "$dir/layer/root/.cache"
  rmdir "$dir/layer/etc" "$dir/layer/root" 2>/dev/null || true
  touch "$dir/.complete"
}

oci() { python3 "$HACK_DIR/images/oci_archive.py" "$@"; }

# layer_blob NAME KEY DIR [--without LIST]: DIR (less LIST's paths) compressed once into
# IMAGES_CACHE/blobs/NAME-KEY.tar.gz (+ .json: digests).
layer_blob() {
  local out="$IMAGES_CACHE/blobs/$1-$2" dir="$3"; shift 3
  [[ -f "$out.json" ]] && return
  mkdir -p "$IMAGES_CACHE/blobs"
  oci layer "$dir" "$out" "$@"
}

runner_image() { echo "$IMAGE_PREFIX/runner:$INPUTS_KEY"; }
operator_image() { echo "$IMAGE_PREFIX/operator:$OPERATOR_KEY"; }
sandbox_image() { echo "$IMAGE_PREFIX/sandbox:$BASE_KEY"; }
archive_of() { local n="${1#"$IMAGE_PREFIX"/}"; echo "$IMAGES_CACHE/archives/${n//:/-}.oci.tar"; }

build() {
  "$HACK_DIR/install-node-deps.sh"
  local runner bkey dkey
  runner=$(runner_image) bkey=$BASE_KEY dkey=$DEPS_KEY
  if all_built; then log "images: $runner and $(operator_image) are up to date"; return; fi
  [[ $(id -u) -eq 0 ]] || die "building images needs root (debootstrap, chroot and mounts)"
  # One build at a time on this machine: two would write into the same layer directories.
  mkdir -p "$IMAGES_CACHE"
  exec 9>"$IMAGES_CACHE/.lock"
  flock -n 9 || { log "images: another build is running; waiting for it"; flock 9; }
  if all_built; then log "images: $runner and $(operator_image) are up to date"; return; fi
  local start=$SECONDS
  mkdir -p "$IMAGES_CACHE/archives"
  build_base_rootfs
  local base="$IMAGES_CACHE/base-$bkey/rootfs"
  [[ -f "$IMAGES_CACHE/deps-$dkey/.complete" ]] || log "deps layer: pip install (minutes when cold)"
  build_layer deps "$dkey" "$base" env ASSAY_EXTRAS="$IMAGE_EXTRAS" sh /tmp/src/hack/images/install-assay.sh deps /tmp/src
  local deps="$IMAGES_CACHE/deps-$dkey/layer"
  build_layer package "$INPUTS_KEY" "$deps:$base" sh -euc \
    'sh /tmp/src/hack/images/install-assay.sh package /tmp/src && mkdir -p /workspace'
  log "images: writing the image archives"
  layer_blob base "$bkey" "$base"
  layer_blob deps "$dkey" "$deps"
  layer_blob package "$INPUTS_KEY" "$IMAGES_CACHE/package-$INPUTS_KEY/layer"
  local blobs="$IMAGES_CACHE/blobs"
  [[ -f "$(archive_of "$runner")" ]] ||
    oci image "$(archive_of "$runner")" "$runner" \
      --layer "$blobs/base-$bkey.json" --layer "$blobs/deps-$dkey.json" --layer "$blobs/package-$INPUTS_KEY.json" \
      $(image_config runner)
  build_operator
  # Sleeping forever is all a pod sandbox's container does; the base layer is shared with the runner.
  [[ -f "$(archive_of "$(sandbox_image)")" ]] ||
    oci image "$(archive_of "$(sandbox_image)")" "$(sandbox_image)" --layer "$blobs/base-$bkey.json" \
      "${BASE_ENV[@]}" --entrypoint '["sleep", "infinity"]'
  prune
  log "images: built $runner in $((SECONDS - start)) s"
}

# The operator's two layers over the runner's base layer (the same chroot recipe, another extra, no pip),
# on the slim base.
build_operator() {
  local operator okey=$OPERATOR_DEPS_KEY blobs="$IMAGES_CACHE/blobs"
  operator=$(operator_image)
  [[ -f "$(archive_of "$operator")" ]] && return
  local base="$IMAGES_CACHE/base-$BASE_KEY/rootfs"
  if [[ ! -f "$blobs/operator-base-$OPERATOR_BASE_KEY.json" ]]; then
    local slim="$CTX.operator-slim"
    python3 "$CTX/hack/images/slim_rootfs.py" list "$base" "$CTX/hack/images/operator-slim.txt" >"$slim"
    layer_blob operator-base "$OPERATOR_BASE_KEY" "$base" --without "$slim"
    rm -f "$slim"
  fi
  [[ -f "$IMAGES_CACHE/operator-deps-$okey/.complete" ]] || log "operator deps layer: pip install (a minute when cold)"
  build_layer operator-deps "$okey" "$base" \
    env ASSAY_EXTRAS="$OPERATOR_EXTRAS" ASSAY_VENV_PIP=no sh /tmp/src/hack/images/install-assay.sh deps /tmp/src
  local deps="$IMAGES_CACHE/operator-deps-$okey/layer"
  build_layer operator-package "$OPERATOR_KEY" "$deps:$base" \
    env ASSAY_VENV_PIP=no sh /tmp/src/hack/images/install-assay.sh package /tmp/src
  layer_blob operator-deps "$okey" "$deps"
  layer_blob operator-package "$OPERATOR_KEY" "$IMAGES_CACHE/operator-package-$OPERATOR_KEY/layer"
  oci image "$(archive_of "$operator")" "$operator" --layer "$blobs/operator-base-$OPERATOR_BASE_KEY.json" \
    --layer "$blobs/operator-deps-$okey.json" --layer "$blobs/operator-package-$OPERATOR_KEY.json" \
    $(image_config operator)
}

BASE_ENV=(--env "PATH=/opt/assay/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" --env LANG=C.UTF-8)
# image_config runner|operator: the oci_archive.py options of each image's runtime config, as the
# Dockerfile's target of the same name sets them (tests/unit/test_dockerfile.py compares the two):
# an unprivileged numeric user (runAsNonRoot), HOME writable, no .pyc written at run time (pip compiled
# them at install). Word-split by the caller: no value has a space but the JSON ones, which carry none.
image_config() {
  local common=("${BASE_ENV[@]}" --env PYTHONUNBUFFERED=1 --env PYTHONDONTWRITEBYTECODE=1 --env HOME=/tmp
    --user 65532:65532 --label "dev.assay.debian-suite=$DEBIAN_SUITE")
  case "$1" in
    runner) echo "${common[@]}" --workdir /workspace --cmd '["python","-m","assay.runner"]' \
      --label org.opencontainers.image.title=assay-runner --label "dev.assay.extras=$IMAGE_EXTRAS" \
      --label "dev.assay.inputs=${INPUTS_KEY:-}" ;;
    operator) echo "${common[@]}" --entrypoint '["assay-operator"]' \
      --label org.opencontainers.image.title=assay-operator --label "dev.assay.extras=$OPERATOR_EXTRAS" \
      --label "dev.assay.inputs=${OPERATOR_KEY:-}" ;;
    *) die "no image '$1' (runner or operator)" ;;
  esac
}

all_built() {
  local image
  for image in "$(runner_image)" "$(operator_image)" "$(sandbox_image)"; do
    [[ -f "$(archive_of "$image")" ]] || return 1
  done
}

# Keeps the cache to the current tree's layers and images plus the previous runner and operator archives.
prune() {
  local d f
  local keep=" base-$BASE_KEY deps-$DEPS_KEY package-$INPUTS_KEY operator-base-$OPERATOR_BASE_KEY"
  keep+=" operator-deps-$OPERATOR_DEPS_KEY operator-package-$OPERATOR_KEY "
  for d in "$IMAGES_CACHE"/base-* "$IMAGES_CACHE"/deps-* "$IMAGES_CACHE"/package-* "$IMAGES_CACHE"/operator-*; do
    [[ -e "$d" && "$keep" != *" ${d##*/} "* ]] && rm -rf "$d"
  done
  for f in $( (cd "$IMAGES_CACHE/archives" && ls -t runner-*.oci.tar 2>/dev/null | sed -n '3,$p'
    ls -t operator-*.oci.tar 2>/dev/null | sed -n '3,$p')); do
    rm -f "$IMAGES_CACHE/archives/$f"
  done
  for f in "$IMAGES_CACHE"/blobs/*.json; do
    [[ -f "$f" ]] || continue
    f="${f##*/}"
    [[ "$keep" == *" ${f%.json} "* ]] || rm -f "$IMAGES_CACHE/blobs/$f" "$IMAGES_CACHE/blobs/${f%.json}.tar.gz"
  done
}

# import_image NAME ALIAS: loads NAME's archive into the node's containerd unless there, and tags ALIAS.
import_image() {
  local name="$1" alias="$2"
  if ! ctr_node images ls -q "name==$name" | grep -qx "$name"; then
    ctr_node images import --local "$(archive_of "$name")" >/dev/null ||
      die "importing $name into the node's containerd failed"
  fi
  ctr_node images tag --force "$name" "$alias" >/dev/null
}

# prune_node_images KEEP...: removes every other image of ours from the node's containerd, with the
# sha256:<id> references the kubelet's image service adds, so their content can go; running containers keep
# their snapshots, and the layers shared with the kept images stay.
prune_node_images() {
  local keep_digests ref digest
  keep_digests="$(ctr_node images ls | awk -v names=" $* " 'NR > 1 && index(names, " " $1 " ") {print $3}')"
  ctr_node images ls | awk 'NR > 1 {print $1, $3}' | while read -r ref digest; do
    grep -qx "$digest" <<<"$keep_digests" && continue
    case "$ref" in "$IMAGE_PREFIX"/* | sha256:*) ctr_node images rm "$ref" >/dev/null ;; esac
  done
}

import() {
  if ! containerd_up; then
    log "images: the real node is not running; they are imported when it starts (make cluster-up)"; return
  fi
  local runner sandbox operator start=$SECONDS
  runner=$(runner_image) sandbox="$(sandbox_image)"
  [[ -f "$(archive_of "$runner")" ]] || die "$runner is not built: run make images"
  import_image "$sandbox" "$SANDBOX_IMAGE"
  import_image "$runner" "$RUNNER_IMAGE_DEV"
  # The name the examples use, as the Dockerfile path tags it (docker build -t assay-runner:dev).
  ctr_node images tag --force "$runner" "$EXAMPLE_RUNNER_IMAGE" >/dev/null
  # `make deploy` names the content-hash tag, so a rebuilt operator rolls the Deployment.
  operator=$(operator_image)
  import_image "$operator" "$OPERATOR_IMAGE_DEV"
  # The previous operator stays too: a Deployment rolling back, or still rolling, needs its image.
  local previous
  previous="$(cd "$IMAGES_CACHE/archives" && ls -t operator-*.oci.tar 2>/dev/null | grep -vx "$(basename "$(archive_of "$operator")")" | head -1)"
  previous="${previous%.oci.tar}"
  prune_node_images "$runner" "$(sandbox_image)" "$operator" ${previous:+"$IMAGE_PREFIX/operator:${previous#operator-}"}
  log "images: $runner, $operator and $sandbox in the node ($((SECONDS - start)) s; tagged ${RUNNER_IMAGE_DEV##*/}, ${OPERATOR_IMAGE_DEV##*/}, ${SANDBOX_IMAGE##*/})"
}

# The config needs no build context: tests read it without root or a cache.
if [[ "$what" == config ]]; then
  # shellcheck disable=SC2046  # image_config's words are the options
  oci config $(image_config "${2:?runner or operator}")
  exit
fi
mkdir -p "$IMAGES_CACHE/work"
stage_context
BASE_KEY="$(base_key)" DEPS_KEY="$(deps_key "$IMAGE_EXTRAS")"
INPUTS_KEY="$(inputs_key "$DEPS_KEY")"
OPERATOR_DEPS_KEY="$(deps_key "$OPERATOR_EXTRAS" no)"
OPERATOR_BASE_KEY="$( { base_key; cd "$CTX/hack/images" && cat operator-slim.txt slim_rootfs.py; } | sha)"
# ASSAY_OPERATOR_IMAGE_REVISION: another operator image from the same tree (its package layer rebuilt, a new
# tag), for the test that upgrades an installed operator (tests/integration/test_deploy.py).
OPERATOR_KEY="$(inputs_key "$OPERATOR_DEPS_KEY${ASSAY_OPERATOR_IMAGE_REVISION:+ revision $ASSAY_OPERATOR_IMAGE_REVISION}")"
case "$what" in
  build) build ;;
  import) import ;;
  all) build && import ;;
  names) echo "runner $(runner_image)"; echo "operator $(operator_image)"; echo "sandbox $(sandbox_image)" ;;
  archive)
    case "${2:-}" in
      runner | operator | sandbox) archive_of "$("${2}_image")" ;;
      *) die "archive of what? runner, operator or sandbox" ;;
    esac ;;
  *) die "unknown action '$what' (build, import, all, names, archive or config)" ;;
esac
