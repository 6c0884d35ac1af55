# Multi-stage build of serin-controller: build with the Rust toolchain, run on distroless (non-root).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p serin-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/serin-controller /usr/local/bin/serin-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/serin-controller"]
