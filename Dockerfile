# syntax=docker/dockerfile:1
# One image for every SalesFlow command: `salesflow worker`, `salesflow projection`, and the one-shot
# `salesflow topics create` / `salesflow db upgrade` jobs (docker-compose.yml, deploy/k8s/).
#
# Stage 1 builds the project and its dependencies into a virtualenv, with a compiler at hand for any
# dependency without a wheel. Stage 2 copies only that virtualenv onto a slim Python and runs as an
# unprivileged user: no compiler, no pip cache, no root.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/salesflow
WORKDIR /src
# Dependencies first, exactly as locked (versions and hashes): this layer is rebuilt only when the
# lock changes. Then the project itself, without resolving anything again.
COPY requirements.lock ./
RUN /opt/salesflow/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY services ./services
RUN /opt/salesflow/bin/pip install --no-deps . \
 && /opt/salesflow/bin/salesflow --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 salesflow \
 && useradd --system --uid 10001 --gid salesflow --home-dir /app --shell /usr/sbin/nologin salesflow
COPY --from=build /opt/salesflow /opt/salesflow
ENV PATH=/opt/salesflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SALESFLOW_WORKER_DATA_DIR=/tmp/salesflow-worker-data
WORKDIR /app
USER 10001:10001
# Prometheus metrics: the worker on 9101, the projection on 9102.
EXPOSE 9101 9102
ENTRYPOINT ["salesflow"]
CMD ["worker"]
