# syntax=docker/dockerfile:1
# capture: build wheels in one stage, run them in a slim one as a non-root user.
# Configuration comes only from environment variables (README "Configuration"; examples in
# docker-compose.yml and docs/deployment.md). tests/ship/test_dockerfile.py runs these same
# build steps in CI (no Docker engine needed) and lints this file with hadolint.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The package and every dependency as wheels: the runtime stage installs offline from them.
COPY pyproject.toml README.md LICENSE ./
COPY capture_api ./capture_api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .
# The phone client is plain ES modules (no bundler): its static files are taken as they are.
COPY web_client ./web_client

FROM ${PYTHON_IMAGE}
# MALLOC_ARENA_MAX=2: glibc gives each of the up to 40 request threads its own malloc arena,
# which keeps freed photo buffers as resident memory; two arenas keep RSS near the live data.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CAPTURE_HOST=0.0.0.0 \
    CAPTURE_PORT=8000 \
    CAPTURE_DATA_DIR=/var/lib/capture \
    CAPTURE_WEB_CLIENT_DIR=/opt/capture/web_client
# No apt packages: pillow, pillow-heif, simplejpeg and turbojpeg wheels bundle libjpeg-turbo,
# libheif and libde265; psycopg[binary] bundles libpq (checked with ldd by the test).
RUN useradd --system --create-home --uid 10001 --user-group capture \
    && mkdir -p /var/lib/capture \
    && chown capture:capture /var/lib/capture
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY --from=build /src/web_client /opt/capture/web_client
USER 10001:10001
WORKDIR /var/lib/capture
VOLUME ["/var/lib/capture"]
EXPOSE 8000
# Liveness only (/healthz): an archive outage must not get a healthy container restarted.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; port = os.environ.get('CAPTURE_PORT', '8000'); sys.exit(u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
CMD ["capture-api", "run", "--host", "0.0.0.0"]
