# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as
# an unprivileged user. No libpq is needed: the PostgreSQL driver is pure Rust.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin p-chat \
    && cp target/release/p-chat /usr/local/bin/p-chat

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin p-chat
COPY --from=build /usr/local/bin/p-chat /usr/local/bin/p-chat
USER p-chat
ENV BIND_ADDRESS=0.0.0.0 \
    PORT=8080
EXPOSE 8080
# `p-chat healthcheck` asks this container's server for GET /ready (the slim
# image has no curl): healthy while the database answers.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/p-chat", "healthcheck"]
# Exec form: p-chat is PID 1 and receives SIGTERM from `docker stop` to drain.
ENTRYPOINT ["/usr/local/bin/p-chat"]
