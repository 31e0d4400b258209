# One image for the six function groups (train, predict, batch, activate, monitoring, ingest)
# and the batch-training Cloud Run Job. The group is chosen at deploy time:
#   FUNCTION_SOURCE=functions/<group>/main.py   (FUNCTION_TARGET=app for every group)
# `python -m shared.server` serves it on $PORT: the app functions-framework would build from
# FUNCTION_TARGET in FUNCTION_SOURCE, under uvicorn with WEB_CONCURRENCY workers and the
# connection protections (header/body deadlines, keep-alive, MAX_CONNECTIONS; README).
# No HEALTHCHECK: Cloud Run and Knative probe /health and /ready themselves.
# The training job runs the same image with: python -m shared.training run

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt
WORKDIR /app
COPY shared/ shared/
COPY functions/ functions/
COPY compat/ compat/
# Byte-compile the app now (pip compiled the venv): the root filesystem is read-only at run
# time on Knative, and cold starts skip the compile.
RUN /opt/venv/bin/python -m compileall -q /app

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONHASHSEED=0 \
    HOME=/tmp \
    PORT=8080 \
    FUNCTION_TARGET=app \
    FUNCTION_SIGNATURE_TYPE=http \
    FUNCTION_USE_ASGI=true \
    WORKERS=1 \
    WEB_CONCURRENCY=1 \
    ENV=prod
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "shared.server"]
