# syntax=docker/dockerfile:1.7
#
# connector-host with the Azure connector component embedded.
#
# The builder stage compiles the component for wasm32-wasip2 (connector/ is its own workspace), then the
# native host with AZURE_CONNECTOR_WASM pointing at it, which makes host/build.rs skip its nested build.
# The runtime stage holds the binary and nothing else, runs as a non-root user, and keeps its state
# (snapshots, precompiled component cache) on the data volume so the root filesystem can be read-only.
#
#   DOCKER_BUILDKIT=1 docker build -t connector-host .
#
# See docs/deployment.md.

FROM rust:1.95-bookworm AS builder
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .

# The cache mounts keep the crates.io registry and the target directories between builds; they are not part
# of any layer, so each artifact is copied out to /out within the step that built it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/connector/target \
    cd connector \
    && cargo build --release --locked --target wasm32-wasip2 \
    && mkdir -p /out \
    && cp target/wasm32-wasip2/release/azure_connector.wasm /out/azure_connector.wasm

RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    AZURE_CONNECTOR_WASM=/out/azure_connector.wasm cargo build --release --locked -p connector-host \
    && cp target/release/connector-host /out/connector-host \
    && mkdir -p /out/data

# distroless cc: glibc and libgcc for the dynamically linked host (the builder is Debian 12 too, so the glibc
# versions match); SQLite is compiled in and the TLS roots are built into the binary. No shell.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/connector-host /usr/local/bin/connector-host
# The data directory must exist, owned by the runtime user, for a volume mounted over it to be writable.
COPY --from=builder --chown=65532:65532 /out/data /var/lib/connector-host
ENV CONNECTOR_HOST_DATA_DIR=/var/lib/connector-host
VOLUME ["/var/lib/connector-host"]
# `sync` writes its default sync.db to the working directory: keep that on the volume too.
WORKDIR /var/lib/connector-host
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532
# The ops listener is loopback unless CONNECTOR_HOST_OPS_LISTEN (or --ops-listen) says otherwise.
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/connector-host"]
CMD ["serve", "--config", "/etc/connector-host/tenants.toml"]
