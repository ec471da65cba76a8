# `mtl serve` in a container: CPU torch, a non-root user, the model directory as a volume.
#   docker build -t mtl-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/demo/last:/model:ro" -e MTL_THREADS=2 mtl-serve
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 MTL_THREADS=2
# the CPU build of torch (the default index would bring several GB of CUDA libraries)
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY mtlcli ./mtlcli
RUN pip install '.[serve,onnx]' && rm -rf /src

RUN useradd --create-home --uid 1000 mtl
USER mtl
WORKDIR /home/mtl
VOLUME /model
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
# MTL_THREADS sets the inference threads; SIGTERM (docker stop) finishes the requests in flight, then exits 0
ENTRYPOINT ["mtl", "serve", "/model", "--host", "0.0.0.0", "--port", "8000"]
