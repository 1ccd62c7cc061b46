# One image for api, worker, beat, the migration and the sandbox; the command picks the role.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENV=production \
    LOG_FORMAT=json

WORKDIR /srv

# Runtime dependencies only, from the pinned lock (no embedded servers, no dev tools).
COPY requirements.lock ./
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv pip install --system --no-cache -r requirements.lock

COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app

RUN useradd --system --uid 10001 --home /srv sellerdesk
USER sellerdesk

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["python", "-m", "uvicorn", "--factory", "app.main:asgi", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
