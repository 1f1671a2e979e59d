# syntax=docker/dockerfile:1
# The inventory service: gunicorn with uvicorn workers. Build: docker build -t inventory .

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, in their own layer: rebuilt only when the runtime lock changes.
COPY requirements.runtime.lock ./
RUN pip install -r requirements.runtime.lock
COPY pyproject.toml README.md ./
COPY inventory ./inventory
COPY graphql_schema ./graphql_schema
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INVENTORY_ENV=production \
    PORT=8000
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin inventory
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"]
CMD ["gunicorn", "-c", "python:inventory.gunicorn_conf", "inventory.main:create_app()"]
