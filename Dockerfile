# The GPU worker image: `pagedrop worker` on an NVIDIA GPU, with one GPU engine and its model
# weights baked in at build time (docs/deploy.md; infra/build-and-push.sh builds and pushes it).
#
#   docker build --build-arg ENGINE=paddleocr-vl -t pagedrop-worker .
#   docker run --gpus all --env-file worker.env pagedrop-worker
#
# ENGINE is the engine for pages that need OCR (PAGEDROP_OCR_ENGINE; born-digital pages keep
# the text layer), and it decides what the image holds:
#   paddleocr-vl  paddleocr's PaddleOCR-VL pipeline on paddlepaddle-gpu (CUDA 12.6 wheels)
#   vlm           a transformers model on torch (PyPI's torch 2.13.0: CUDA 13.0 wheels), the
#                 one named by VLM_MODEL (a profile of handler/engines/vlm/profiles.py)
# One engine per image: paddlepaddle-gpu's CUDA 12 wheels (nvidia-cudnn-cu12, -nccl-cu12,
# -cusparselt-cu12) and torch's CUDA 13 wheels (nvidia-cudnn-cu13, -nccl-cu13,
# -cusparselt-cu13) write the same files (nvidia/cudnn/lib/libcudnn.so.9, ...) into one
# environment, so the two frameworks cannot share it.
#
# Stages: runtime (CUDA base + Python; also the final image's base), build (the virtual
# environment), models (`pagedrop models download`), and the final image.

# Both frameworks bring their CUDA libraries as wheels, so the small `base` flavour is enough:
# it sets the NVIDIA container runtime's variables and NVIDIA_REQUIRE_CUDA (cuda>=13.0), so a
# host whose driver is too old for torch's CUDA 13.0 (before R580) refuses to start the
# container instead of failing at the first page. Ubuntu 24.04's Python is 3.12.
ARG CUDA_IMAGE=nvidia/cuda:13.0.3-base-ubuntu24.04
ARG ENGINE=paddleocr-vl
ARG VLM_MODEL=paddleocr-vl

FROM ${CUDA_IMAGE} AS runtime
ARG ENGINE
ARG DEBIAN_FRONTEND=noninteractive
# paddlex's OpenCV (opencv-contrib-python, not the headless build) links libGL, GLib, libSM
# and libXext; paddle links libgomp. The vlm image needs nothing beyond the base.
# Versions are not pinned: the base image tag pins the release, apt brings its security fixes.
# $libs is split into package names on purpose (SC2086).
# hadolint ignore=DL3008,SC2086
RUN case "$ENGINE" in \
      paddleocr-vl) libs="libgl1 libglib2.0-0t64 libsm6 libxext6 libgomp1" ;; \
      vlm) libs="" ;; \
      *) echo "ENGINE is paddleocr-vl or vlm, not '$ENGINE'" >&2; exit 1 ;; \
    esac \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 $libs \
    && rm -rf /var/lib/apt/lists/*


FROM runtime AS build
ARG ENGINE
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/pagedrop/venv/bin:$PATH
RUN python3 -m venv /opt/pagedrop/venv

# paddlepaddle-gpu 3.x is not on PyPI: it comes from Paddle's own index, and it carries its
# CUDA 12.6 libraries as nvidia-*-cu12 wheels. Installed before the project is copied, so a
# code change does not fetch it again.
ARG PADDLE_VERSION=3.3.1
ARG PADDLE_INDEX=https://www.paddlepaddle.org.cn/packages/stable/cu126/
RUN if [ "$ENGINE" = paddleocr-vl ]; then \
      pip install "paddlepaddle-gpu==${PADDLE_VERSION}" --index-url "${PADDLE_INDEX}"; \
    fi

WORKDIR /src
COPY pyproject.toml README.md ./
COPY handler ./handler
# paddleocr-vl: pyproject's `gpu-paddle` extra (paddleocr[doc-parser], huggingface_hub;
# paddlepaddle-gpu is already there). vlm: the `gpu-vlm` extra (torch, transformers,
# huggingface_hub, torchvision). Versions come from pyproject.toml (torch is pinned there).
# hadolint ignore=DL3013
RUN case "$ENGINE" in \
      paddleocr-vl) pip install ".[gpu-paddle]" ;; \
      vlm) pip install ".[gpu-vlm]" ;; \
    esac \
    && pip check


# The weights of the engine the image runs, fetched now so that nothing downloads at run time.
# `models check`, with the image's engine settings, is the worker's own test that the folder
# holds every model the configured engines load.
FROM build AS models
ARG ENGINE
ARG VLM_MODEL
RUN model=paddleocr-vl; if [ "$ENGINE" = vlm ]; then model="$VLM_MODEL"; fi; \
    HF_HUB_DISABLE_PROGRESS_BARS=1 \
      pagedrop models download "$model" --model-dir /opt/pagedrop/models \
    && PAGEDROP_OCR_ENGINE="$ENGINE" PAGEDROP_VLM_MODEL="$VLM_MODEL" \
      pagedrop models check --model-dir /opt/pagedrop/models


FROM runtime
ARG ENGINE
ARG VLM_MODEL
RUN groupadd --system --gid 10001 pagedrop \
    && useradd --system --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin pagedrop
COPY --from=build /opt/pagedrop/venv /opt/pagedrop/venv
COPY --from=models /opt/pagedrop/models /opt/pagedrop/models
# The stack's launch template sets the AWS resources (PAGEDROP_BUCKET, _QUEUE_URL, ...) and
# may override these. Nothing may reach a model hub at run time (DESIGN §6).
ENV PATH=/opt/pagedrop/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAGEDROP_ENGINE=auto \
    PAGEDROP_OCR_ENGINE=${ENGINE} \
    PAGEDROP_VLM_MODEL=${VLM_MODEL} \
    PAGEDROP_DEVICE=cuda \
    PAGEDROP_MODEL_DIR=/opt/pagedrop/models \
    PAGEDROP_HEALTH_FILE=/tmp/pagedrop-health.json \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK=True
USER 10001:10001
WORKDIR /home/pagedrop
# The worker stops between pages on SIGTERM and hands its message back within
# PAGEDROP_SHUTDOWN_GRACE_S; give `docker stop` a longer timeout than that.
STOPSIGNAL SIGTERM
# Loading a model onto the GPU takes a while: failures in the first 5 minutes do not count.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["pagedrop", "health"]
ENTRYPOINT ["pagedrop", "worker"]
