# vigil worker image: `docker build -t vigil .`
# Runs `vigil worker` by default; the same image runs any vigil command
# (docker compose uses it for `topics create` and the demo traffic).

# Build stage: the project's wheel with its Rust extension (detectors/native) compiled.
# Rust from rustup (Debian's is older than PyO3 supports), the minimal profile; the
# crates exactly as detectors/native/Cargo.lock pins them (pyproject: --locked).
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
# README.m[d]: copied when present (pyproject names it as the readme).
COPY pyproject.toml README.m[d] ./
COPY detectors ./detectors
COPY streams ./streams
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# The image: no compiler, the runtime lock and the wheel.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed numeric ids so Kubernetes can verify runAsNonRoot (deploy/k8s uses 10001).
RUN groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil \
            --shell /usr/sbin/nologin vigil \
 && mkdir -p /var/lib/vigil \
 && chown vigil:vigil /var/lib/vigil

WORKDIR /src
# The runtime lock first (exact versions and hashes, the pins CI tests; a layer that is
# rebuilt only when the pins change), then the project's wheel without resolving again.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock
COPY --from=build /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels /src

USER 10001
WORKDIR /var/lib/vigil
EXPOSE 9108
ENTRYPOINT ["vigil"]
CMD ["worker"]
