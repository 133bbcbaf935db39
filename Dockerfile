# Kizuna: one image for the API (`kizuna serve`, the default) and for workers (`kizuna worker`).
# Configured by environment variables only (KIZUNA_*; see "Configuration" in README.md).
#
#   docker build -t kizuna .
#   docker run -p 8000:8000 -v kizuna-data:/app/data kizuna            # SQLite in a volume
#   docker run -p 8000:8000 -e KIZUNA_DATABASE_URL=postgresql://… kizuna
#
# The application runs from its source directory (/app) rather than as an installed wheel:
# the Alembic scripts (alembic/, alembic.ini) are not package data, and `kizuna migrate` /
# `kizuna serve` find them next to the code.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the dependencies only ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies change far less often than code: install them from pyproject.toml alone, in
# their own layer, so a code change does not reinstall OR-Tools and numpy.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --upgrade pip \
 && pip install -r /tmp/requirements.txt

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="kizuna" \
      org.opencontainers.image.description="Mentor–mentee matching service" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 kizuna \
 && useradd --system --uid 10001 --gid kizuna --home-dir /app --no-create-home --shell /usr/sbin/nologin kizuna

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root alembic.ini pyproject.toml ./
COPY --chown=root:root alembic ./alembic
COPY --chown=root:root schemas ./schemas
COPY --chown=root:root matching ./matching
COPY --chown=root:root app ./app
# `kizuna …` on the PATH, the same entry point the package declares (app.cli:main).
RUN printf '#!/bin/sh\nexec python -m app.cli "$@"\n' > /usr/local/bin/kizuna \
 && chmod 0755 /usr/local/bin/kizuna \
 && python -m compileall -q /app/app /app/matching /app/schemas /app/alembic \
 && mkdir -p /app/data \
 && chown kizuna:kizuna /app/data
# The matching engine's numba kernels, compiled once here into a cache the service user may
# also write (numba only uses a cache directory it can write to).
ENV NUMBA_CACHE_DIR=/opt/numba-cache
RUN PYTHONPATH=/app /opt/venv/bin/python -c "import matching; matching.warm_up()" \
 && chown -R kizuna:kizuna /opt/numba-cache

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KIZUNA_HOST=0.0.0.0 \
    KIZUNA_PORT=8000 \
    KIZUNA_LOG_FORMAT=json

# The default database is a SQLite file here; mount a volume, or point KIZUNA_DATABASE_URL at PostgreSQL.
VOLUME ["/app/data"]
USER kizuna:kizuna
EXPOSE 8000

# No curl in a slim image: ask /healthz with the Python that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KIZUNA_PORT', '8000'), timeout=4)"]

# Migrations (under a PostgreSQL advisory lock, so replicas may start together), then uvicorn.
# `docker stop` sends SIGTERM: in-flight requests get KIZUNA_GRACEFUL_TIMEOUT seconds.
CMD ["kizuna", "serve"]
