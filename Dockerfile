# The probe image for `aksflight check --in-cluster`: the same aksflight code, run as
# `aksflight probe` in a Job on each node pool. Build, then push to a registry the nodes
# can pull from (see docs/in-cluster.md):
#
#   docker build -t <registry>/aksflight:0.1.0 .
#   docker push <registry>/aksflight:0.1.0
#   aksflight check -c env.yaml --in-cluster --image <registry>/aksflight:0.1.0
#
# Air-gapped: mirror the base image below (python:3.11-slim) into your registry and build
# with --build-arg PYTHON_IMAGE=<registry>/python:3.11-slim; the build stage also needs a
# package index (pyproject.toml, mypy included) and an apt mirror (gcc, libc6-dev).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# A C compiler for the router's data plane, compiled with mypyc (setup.py); this stage only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY aksflight ./aksflight
COPY rules ./rules
COPY preflight ./preflight
COPY reports ./reports
COPY deployer ./deployer
COPY router ./router
RUN python -m venv /opt/aksflight \
 && /opt/aksflight/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/aksflight /opt/aksflight
ENV PATH=/opt/aksflight/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The Job runs the pod as this user with a read-only root file system.
USER 10001:10001
ENTRYPOINT ["aksflight"]
CMD ["--help"]
