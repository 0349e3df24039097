# Fool the Model — one image for the game server and the trainer worker (`fool-the-model trainer`;
# compose.yaml runs both). The install steps mirror the Makefile's (`make install`): upgrade pip,
# then `pip install -e '.[train,scale,…]'` — the same pyproject extras but `dev` (tests, linters),
# with torch and torchvision pinned as in pyproject and installed first from the CPU-only index.
# Keep the two in step: a dependency change goes to pyproject.toml, never here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FTM_DATA_DIR=/data \
    FTM_HOST=0.0.0.0 \
    FTM_PORT=8000

RUN useradd --create-home --uid 10001 ftm \
    && mkdir /data && chown ftm:ftm /data
WORKDIR /app

# CPU-only torch first, so the `train` extra does not pull a CUDA build: pass the PyTorch CPU
# wheel index as a build argument (`--build-arg TORCH_INDEX_URL=...`); empty means plain PyPI.
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir --quiet --upgrade pip
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
        torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY server ./server
COPY game_rules ./game_rules
COPY static ./static
RUN pip install --no-cache-dir -e '.[train,scale]'

USER ftm
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# Fetch data and train the bootstrap model on first start, then serve (as `make run` does).
CMD ["sh", "-c", "fool-the-model fetch-data && fool-the-model ensure-model && fool-the-model serve"]
