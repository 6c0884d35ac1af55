# serin-loadtester with the tools Flagger's loadtester image carries, for hooks that need them
# under --allow-shell: bash, bats, curl, hey, wrk (Debian packages), ghz (built from its Go module,
# verified by Go's checksum database), kubectl and helm (official release binaries, checked
# against their published SHA-256 sums). Deployed by deploy/tester-tools.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p serin-loadtester

FROM golang:1.24-bookworm AS ghz
RUN GOBIN=/out go install github.com/bojand/ghz/cmd/ghz@v0.120.0

FROM debian:bookworm-slim AS tools
ARG TARGETARCH=amd64
ARG KUBECTL_VERSION=v1.33.4
ARG HELM_VERSION=v3.18.6
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSLo /kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" \
 && echo "$(curl -fsSL "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256")  /kubectl" | sha256sum -c - \
 && curl -fsSLo /helm.tgz "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" \
 && echo "$(curl -fsSL "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz.sha256sum" | cut -d' ' -f1)  /helm.tgz" | sha256sum -c - \
 && tar -xzf /helm.tgz -C / "linux-${TARGETARCH}/helm" \
 && mv "/linux-${TARGETARCH}/helm" /helm \
 && chmod 0755 /kubectl /helm

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash bats ca-certificates curl hey wrk \
 && rm -rf /var/lib/apt/lists/*
COPY --from=tools /kubectl /helm /usr/local/bin/
COPY --from=ghz /out/ghz /usr/local/bin/ghz
COPY --from=build /src/target/release/serin-loadtester /usr/local/bin/serin-loadtester
# helm and kubectl keep caches under $HOME; the overlay mounts a writable /tmp.
ENV HOME=/tmp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/serin-loadtester"]
