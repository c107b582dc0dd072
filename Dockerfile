# syntax=docker/dockerfile:1
# Build: docker build -t plextuner:0.1.0 .   (the image the k8s/ manifests reference)
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
# ffmpeg/ffprobe for HLS remuxing and stream probes: shipped in the image, never assumed.
# tini as PID 1: it reaps what is re-parented to it (a helper whose worker the OOM killer took
# would stay a zombie under plextuner) and passes SIGTERM on for the graceful shutdown.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/plextuner --shell /usr/sbin/nologin plextuner \
    && mkdir -p /var/lib/plextuner /etc/plextuner \
    && chown 10001:10001 /var/lib/plextuner
ENV PLEX_TUNER_DATA_DIR=/var/lib/plextuner \
    PLEX_TUNER_CONFIG=/etc/plextuner/config.yaml \
    PLEX_TUNER_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/plextuner"]
EXPOSE 5004-5009 65001/udp 65001/tcp
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5004/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--", "plextuner"]
CMD ["serve"]
