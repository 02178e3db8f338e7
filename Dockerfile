# PitBox Backend Engine. Not built on the development machines (no Docker engine there): kept simple.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install ".[parquet]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 pitbox && mkdir -p /data && chown pitbox /data
COPY --from=build /install /usr/local
USER pitbox
WORKDIR /home/pitbox
# A container answers on every interface (HOST); `pitbox serve` elsewhere binds loopback unless told.
ENV HOST=0.0.0.0 PORT=8080 DATA_DIR=/data PYTHONUNBUFFERED=1
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os,urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT','8080'), timeout=2); sys.exit(0)"
CMD ["pitbox", "serve"]
