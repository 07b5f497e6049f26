# The operator's image: built with the pinned Rust toolchain, run on a distroless
# base as a non-root user with no shell.
#
#   docker build -t ghcr.io/cxops/iwd-operator:0.1.0 .
#   docker push ghcr.io/cxops/iwd-operator:0.1.0
#
# Pin the bases by digest in your registry mirror for fully reproducible builds.
FROM docker.io/library/rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin iwd-operator \
 && install -D -m 0755 target/release/iwd-operator /out/iwd-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/iwd-operator /iwd-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/iwd-operator"]
CMD ["run"]
