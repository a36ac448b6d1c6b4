# syntax=docker/dockerfile:1
# Build: the whole crate in the official Rust image (librdkafka is built from source by
# rdkafka-sys, with TLS and SASL against the image's OpenSSL: make, gcc and libssl-dev,
# all in the image).
FROM rust:1.95-bookworm AS builder
# The commit for the orderflow_build_info metric (the build context has no .git).
ARG ORDERFLOW_COMMIT=unknown
ENV ORDERFLOW_COMMIT=${ORDERFLOW_COMMIT}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# rdkafka-sys with the librdkafka fix in patches/ (Cargo.toml's [patch.crates-io]).
COPY scripts/patch-librdkafka.sh ./scripts/
COPY patches ./patches
RUN bash scripts/patch-librdkafka.sh
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin orderflow

# Run: a small Debian image, a non-root user, the binary and its configuration.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home orderflow \
 && mkdir -p /var/lib/orderflow && chown orderflow /var/lib/orderflow
WORKDIR /app
COPY --from=builder /src/target/release/orderflow /usr/local/bin/orderflow
COPY config ./config
USER orderflow
# The status view's store: on a volume, so a restart resumes instead of rebuilding.
ENV ORDERFLOW_ENV=production \
    ORDERFLOW_CONFIG_DIR=/app/config \
    ORDERFLOW__STATUS_VIEW__PATH=/var/lib/orderflow/view.db
VOLUME /var/lib/orderflow
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["/usr/local/bin/orderflow"]
