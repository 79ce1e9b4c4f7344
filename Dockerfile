# srgan web API on the CPU: `docker compose up -d` (compose.yaml), or
#   docker build -t srgan . && docker run -p 8080:8080 -v srgan-data:/data srgan
# Keys are required (the server listens on 0.0.0.0): make one with
#   docker compose exec srgan srgan serve keys add me --data-dir /data
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SRGAN_CACHE=/opt/srgan/models

RUN useradd --system --create-home --uid 10001 srgan \
    && mkdir -p /data /opt/srgan/models \
    && chown srgan:srgan /data /opt/srgan/models

# PyTorch's CPU build first, from PyTorch's CPU index: from PyPI, torch brings several
# GB of CUDA libraries. constraints.txt pins torch==2.13.0, which 2.13.0+cpu satisfies.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /opt/srgan/src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install -c constraints.txt ".[serve]"

# Convert the named models once (to safetensors and ONNX in $SRGAN_CACHE), so that the
# first request does not wait for it.
USER srgan
RUN python -c "from PIL import Image; Image.new('RGB', (16, 16)).save('/tmp/warm.png')" \
    && for model in natural anime anime-video; do \
        srgan -q upscale /tmp/warm.png /tmp/warm_x4.png --model "$model" --device cpu; \
    done \
    && rm -f /tmp/warm.png /tmp/warm_x4.png

WORKDIR /data
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["srgan"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
