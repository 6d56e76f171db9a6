#!/bin/sh
# Installs Assay into a Python virtual environment INSIDE an image, for `make images` (hack/images.sh runs it
# in a chroot of the Debian root filesystem). It does what the Dockerfile's build-runner stage does (a venv in
# /opt/assay, `pip install -c constraints.txt` of the package and its extras): keep the two in step. Two steps,
# so the heavy third-party layer is cached apart from the small package layer:
#   install-assay.sh deps SRC      third-party dependencies only, pinned by SRC/constraints.txt
#   install-assay.sh package SRC   the assay package itself, without dependencies
# ASSAY_VENV_PIP=no makes a venv without pip (the operator image: nothing installs at run time), filled by a
# pip that lives in /tmp during the build only (`pip --python`, as the Dockerfile's build-operator stage).
# SRC holds pyproject.toml, README.md, constraints.txt, operator/ and hack/images/. Needs python3 with venv;
# pip reaches the package index (or its cache in PIP_CACHE_DIR).
set -eu
step="$1" src="$2"
venv="${ASSAY_VENV:-/opt/assay}"
# Task pods need the runner's columnar readers, the example model's libraries and the debug notebook server.
extras="${ASSAY_EXTRAS:-runner,examples,debug}"

# Debian's ensurepip brings pip 23.0, which cannot read the metadata of current wheels: pin a newer one.
pip_version="${ASSAY_PIP_VERSION:-26.3}"
if [ "${ASSAY_VENV_PIP:-yes}" = no ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv --without-pip "$venv"
  pip_venv=/tmp/build-pip
else
  pip_venv="$venv"
fi
if [ ! -x "$pip_venv/bin/pip" ]; then
  python3 -m venv "$pip_venv"
  "$pip_venv/bin/pip" install --no-input --disable-pip-version-check -q "pip==$pip_version"
fi
pip_target="$venv/bin/python"
pip_install() {
  "$pip_venv/bin/pip" --python "$pip_target" install --no-input --disable-pip-version-check --progress-bar off \
    ${ASSAY_PIP_QUIET--q} -c "$src/constraints.txt" "$@"
}
case "$step" in
  deps)
    deps=$("$venv/bin/python" "$src/hack/images/dependencies.py" "$src/pyproject.toml" "$extras")
    printf '%s\n' "$deps" > /tmp/assay-requirements.txt
    pip_install -r /tmp/assay-requirements.txt
    rm -f /tmp/assay-requirements.txt ;;
  package)
    # A copy: building in SRC would leave egg-info/build directories behind in the caller's tree.
    build=$(mktemp -d)
    cp -r "$src/." "$build/"
    pip_install --no-deps "$build"
    rm -rf "$build" ;;
  *) echo "usage: $0 deps|package SRC" >&2; exit 2 ;;
esac
