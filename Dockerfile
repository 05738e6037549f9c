# syntax=docker/dockerfile:1
# The release server in a small non-root image; the mock IdP in an image of its own.
#
#   docker build -t mcp-oauth-server .                       # the server (default target)
#   docker build -t mcp-oauth-mock-idp --target mock-idp .   # the mock IdP, for demos and tests
#
# The server image holds only the server binary: no mock IdP, no key generation, no token minting.
#
# Base images are pinned by digest (tag for the reader, digest for the bytes): a rebuild fetches
# exactly what was reviewed, and a moved tag changes nothing until this file does. Both are the
# multi-platform index digests. To move to a newer base, read the new digest and replace it here:
#   docker buildx imagetools inspect rust:1.95-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
#
# Both images run as uid/gid 65532 (distroless's `nonroot`), given as numbers: a kubelet checks
# runAsNonRoot against the image's user only when that user is numeric.

FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mcp-oauth-server -p mock-idp \
 && mkdir -p /out \
 && cp target/release/mcp-oauth-server target/release/mock-idp /out/

# The mock IdP: listens on 0.0.0.0:9400; its admin API is off unless MOCK_IDP_ADMIN=on (never
# expose it beyond a test network). Set MOCK_IDP_ISSUER to the URL other containers use.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS mock-idp
COPY --from=build /out/mock-idp /usr/local/bin/mock-idp
ENV MOCK_IDP_HOST=0.0.0.0 MOCK_IDP_PORT=9400 MOCK_IDP_ADMIN=off
EXPOSE 9400
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mock-idp"]

# The server: listens on 0.0.0.0:8000, so MCP_RESOURCE_URL (the URL clients use) is required,
# with OAUTH_ISSUER (and OAUTH_AUDIENCE as your provider needs). Metrics on 9100 once
# MCP_METRICS_ADDR=0.0.0.0:9100 is set. CA certificates come with the distroless base.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS server
COPY --from=build /out/mcp-oauth-server /usr/local/bin/mcp-oauth-server
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000 9100
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mcp-oauth-server"]
