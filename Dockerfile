# The operator image: `kappa run` as UID 65532, on a read-only root filesystem.
#   docker build -t kappa-operator:0.1.0 .        (make image; linted by hadolint in make lint)
#
# Base: python:3.11.16-slim-bookworm, pinned by tag and by the digest of its multi-platform index, as
# docker-library/repo-info lists it (repos/python/remote/3.11.16-slim-bookworm.md at commit 422f3cf, the build of
# 2026-09-01). The tag alone moves with each Debian or CPython rebuild; the digest does not. To update, take the
# digest from that file (or `docker buildx imagetools inspect python:3.11.16-slim-bookworm`) and change both.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

# Build: the package and its dependencies into a virtual environment at /opt/kappa, compiled to bytecode here so
# that nothing is written at runtime. Every dependency ships manylinux wheels: no compiler is needed.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/kappa
COPY pyproject.toml README.md ./
COPY operator/kappa operator/kappa
RUN /opt/kappa/bin/pip install --no-cache-dir . \
 && /opt/kappa/bin/python -m compileall -q /opt/kappa/lib

# Runtime: the same base, the virtual environment, and a user. No pip run, no build tools, no wheels left over.
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kappa-operator" \
      org.opencontainers.image.description="Kubernetes operator for Kappa-architecture streaming pipelines" \
      org.opencontainers.image.licenses="Apache-2.0"
# A passwd entry for UID 65532: Kopf names itself by getpass.getuser(), which raises KeyError for a UID with no
# entry (checked: `kappa run` exits at start) unless $USER is set, as it is below for any other UID a cluster may
# run the image with (OpenShift's arbitrary UIDs). The home is /tmp, the one path written at runtime: the Pod must
# mount an emptyDir there. The Kubernetes client's DynamicClient keeps its discovery cache in
# tempfile.gettempdir() (/tmp/osrcp-<md5 of the API URL>.json); with no writable temporary directory at all,
# gettempdir() raises "No usable temporary directory found" and Kopf's startup activities fail and retry every
# 60 s (checked: `kappa run` as UID 65532 with /tmp, /var/tmp and / read-only).
RUN groupadd --gid 65532 kappa \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kappa
COPY --from=build /opt/kappa /opt/kappa
# Read-only root filesystem: no bytecode written at import (compiled at build), unbuffered logs, and HOME and
# TMPDIR on the /tmp emptyDir.
ENV PATH=/opt/kappa/bin:$PATH \
    USER=kappa \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["kappa"]
CMD ["run", "--log-format=json", "--health-host=0.0.0.0", "--health-port=8080", "--metrics-port=9090"]
