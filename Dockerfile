# syntax=docker/dockerfile:1
# Assay's images, one file, two final targets:
#
#   docker build --target operator -t assay-operator:dev .   # the controller (the default, last target)
#   docker build --target runner   -t assay-runner:dev   .   # the base that task pods run; extend it with
#                                                          # your model's dependencies (see README)
#   docker build --target runner-examples -t assay-runner:dev .  # the base + examples/' dependencies
#
# Both install the package exactly as `make venv` does: pip with `-c constraints.txt`, so an image and a test
# run resolve the same versions. Build tools stay in the `build-*` stages; the final stages get only a
# ready virtual environment in /opt/assay and run as an unprivileged numeric user (the `restricted` Pod
# Security Standard needs runAsNonRoot, which the kubelet can only verify for a numeric UID).

# Pinned by exact tag; pin by digest too where your registry allows (`python:3.11.14-slim-bookworm@sha256:…`).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build stages: compile nothing at run time ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/

FROM build-base AS build-operator
# The operator needs the core dependencies, plus the console's for `assay ui` in a pod
# (manifests/components/console); no pip inside the final venv (nothing installs at run time).
RUN python -m venv --without-pip /opt/assay \
    && pip --python /opt/assay/bin/python install -c constraints.txt '.[console]'

FROM build-base AS build-runner
# Task pods: the core plus the columnar readers and the debug-mode notebook server. pip stays in this venv
# because images built FROM the runner add their model's dependencies with it.
RUN python -m venv /opt/assay \
    && /opt/assay/bin/pip install -c constraints.txt '.[runner,debug]'

FROM build-base AS build-runner-examples
# What examples/ needs on top (scikit-learn for examples/digits), from the same pins.
RUN python -m venv /opt/assay \
    && /opt/assay/bin/pip install -c constraints.txt '.[runner,debug,examples]'

# ---- runner base image ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runner
LABEL org.opencontainers.image.title="assay-runner" \
      org.opencontainers.image.description="Base image for Assay evaluation tasks; add your model's dependencies" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-runner /opt/assay /opt/assay
# 65532 is the conventional "nonroot" UID; HOME must be writable for libraries that cache there.
ENV PATH=/opt/assay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
WORKDIR /workspace
USER 65532:65532
# The operator sets the command of every task container; by default the image runs the task its
# environment describes (the contract in assay.contract).
CMD ["python", "-m", "assay.runner"]

# ---- the examples' runner: what hack/kind-up.sh loads as assay-runner:dev ----------------------------
FROM runner AS runner-examples
COPY --from=build-runner-examples /opt/assay /opt/assay

# ---- operator image (default target) -------------------------------------------------------------------
# Distroless-style: the Python image's root filesystem less what the operator never runs, copied into an
# empty image, so nothing removed is left in a lower layer either. hack/images/operator-slim.txt says what
# goes (pip, apt and dpkg, the shells and their tools), hack/images/slim_rootfs.py removes it with the
# image's own Python; `make images` leaves the same list out of its operator image.
FROM ${PYTHON_IMAGE} AS build-operator-root
RUN --mount=type=bind,source=hack/images,target=/tmp/slim \
    python -m pip uninstall --yes --no-input --disable-pip-version-check pip setuptools wheel \
    && python /tmp/slim/slim_rootfs.py remove / /tmp/slim/operator-slim.txt

FROM scratch AS operator
LABEL org.opencontainers.image.title="assay-operator" \
      org.opencontainers.image.description="Assay: a Kubernetes operator for model evaluations" \
      org.opencontainers.image.licenses="Apache-2.0"
# The whole root filesystem on purpose (DL3067 warns of it): it is the image, less what the list removed.
# hadolint ignore=DL3067
COPY --from=build-operator-root / /
COPY --from=build-operator /opt/assay /opt/assay
# FROM scratch inherits no environment: the Python image's PATH and LANG are restated.
ENV PATH=/opt/assay/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 65532:65532
# 8080: liveness/readiness; 9090: Prometheus metrics; 9443: the validating admission webhook.
EXPOSE 8080 9090 9443
ENTRYPOINT ["assay-operator"]
