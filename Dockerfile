# Production image: `api-assistant run` serves Slack and/or Discord, whichever has credentials.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    ENVIRONMENT=production \
    DATA_DIR=/data \
    PORT=3000

# PyTorch's default Linux wheel is a multi-GB CUDA build; point this at a CPU wheel index to keep the
# image small (e.g. --build-arg TORCH_INDEX_URL=<your PyTorch CPU wheel index>).
ARG TORCH_INDEX_URL=""

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY bot ./bot
COPY slack ./slack

RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0; fi \
    && pip install --no-cache-dir torch==2.13.0 . \
    && useradd --create-home --uid 10001 assistant \
    && mkdir -p /data && chown assistant /data

USER assistant
VOLUME ["/data"]
EXPOSE 3000
CMD ["api-assistant", "run"]
