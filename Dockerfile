# Multi-stage build: compile in the CUDA devel image, run from the CUDA runtime image as a non-root user.
# Dependencies mirror tools/install_deps.sh (Debian/Ubuntu package names are the same); tests are not built here
# (tools/run_tests.sh runs them), so Catch2 and clang are left out.
ARG CUDA_VERSION=12.8.1
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libpcre2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCLLM_CUDA=AUTO -DLCLLM_BUILD_TESTS=OFF \
      -DCMAKE_CUDA_ARCHITECTURES=90a \
    && cmake --build build --target lcllm

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      libsentencepiece0 libspdlog1.12 libfmt9 libpcre2-8-0 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 lcllm
COPY --from=build /src/build/lcllm /usr/local/bin/lcllm
COPY --from=build /src/models/default /opt/lcllm/models/default
USER lcllm
WORKDIR /home/lcllm
# `lcllm serve` reads every flag from LCLLM_* variables: inside the container it listens on all interfaces;
# mount another model and set LCLLM_MODEL (and LCLLM_API_KEY) to serve it.
ENV LCLLM_HOST=0.0.0.0 LCLLM_PORT=8080 LCLLM_MODEL=/opt/lcllm/models/default
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${LCLLM_PORT}/health" || exit 1
ENTRYPOINT ["lcllm"]
CMD ["serve"]
