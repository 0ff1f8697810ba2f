# pikdav: a WebDAV gateway for the PikPak cloud drive.
#
#   docker build -t pikdav .
#   docker run -d -v "$PWD/data:/data" -p 8080:8080 -e PIKPAK_PASSWORD pikdav
#
# /data holds config.yaml (with server.host: 0.0.0.0 and state_dir: /data) and the token
# store; it must be writable by uid 10001. Secrets come in at run time, never in the image.
#
# The base is a build argument: any image with Python >= 3.11 and its venv module, CA certificates,
# groupadd and useradd (the README's Docker section says which are tested, and how).
ARG BASE=python:3.11-slim
FROM ${BASE}

LABEL org.opencontainers.image.title="pikdav" \
      org.opencontainers.image.description="A WebDAV gateway for the PikPak cloud drive" \
      org.opencontainers.image.licenses="MIT"

# Optional extras at build time, e.g. --build-arg 'PIKDAV_EXTRAS=[redis]' for a Redis token store.
ARG PIKDAV_EXTRAS=""

# pikdav lives in its own virtual environment, first on PATH: a distribution's Python refuses
# pip into the system (PEP 668), and the base's own packages stay as they are.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/pikdav/bin:$PATH

RUN groupadd --gid 10001 pikdav \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/pikdav \
        --shell /usr/sbin/nologin pikdav \
 && mkdir /data \
 && chown pikdav:pikdav /data \
 && chmod 0700 /data

# Only what the package build needs (see .dockerignore): never a config or a token file.
WORKDIR /usr/src/pikdav
COPY pyproject.toml setup.cfg README.md ./
COPY pikdav ./pikdav
RUN python3 -m venv /opt/pikdav \
 && /opt/pikdav/bin/pip install --no-cache-dir ".${PIKDAV_EXTRAS}" \
 && cd / \
 && rm -rf /usr/src/pikdav \
 && pikdav --version

WORKDIR /data
USER pikdav
VOLUME ["/data"]
EXPOSE 8080

# No curl in the slim image: Python's urllib fails (exit 1) on any error or non-2xx answer.
# Assumes plain HTTP on port 8080; with TLS or another port, override it at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["pikdav"]
CMD ["serve", "-c", "/data/config.yaml"]
