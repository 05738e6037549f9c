# syntax=docker/dockerfile:1
# The release server in a small non-root image; the mock IdP in an image of its own.
#
#   docker build -t mcp-oauth-server .                       # the server (default target)
#   docker build -t mcp-oauth-mock-idp --target mock-idp .   # the mock IdP, for demos and tests
#
# The server image holds only the server binary: no mock IdP, no key generation, no token minting.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mcp-oauth-server -p mock-idp \
 && mkdir -p /out \
 && cp target/release/mcp-oauth-server target/release/mock-idp /out/

# The mock IdP: listens on 0.0.0.0:9400; its admin API is off unless MOCK_IDP_ADMIN=on (never
# expose it beyond a test network). Set MOCK_IDP_ISSUER to the URL other containers use.
FROM gcr.io/distroless/cc-debian12:nonroot AS mock-idp
COPY --from=build /out/mock-idp /usr/local/bin/mock-idp
ENV MOCK_IDP_HOST=0.0.0.0 MOCK_IDP_PORT=9400 MOCK_IDP_ADMIN=off
EXPOSE 9400
USER nonroot
ENTRYPOINT ["/usr/local/bin/mock-idp"]

# The server: listens on 0.0.0.0:8000, so MCP_RESOURCE_URL (the URL clients use) is required,
# with OAUTH_ISSUER (and OAUTH_AUDIENCE as your provider needs). Metrics on 9100 once
# MCP_METRICS_ADDR=0.0.0.0:9100 is set. CA certificates come with the distroless base.
FROM gcr.io/distroless/cc-debian12:nonroot AS server
COPY --from=build /out/mcp-oauth-server /usr/local/bin/mcp-oauth-server
ENV HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
EXPOSE 8000 9100
USER nonroot
ENTRYPOINT ["/usr/local/bin/mcp-oauth-server"]
