// An MCP server protected the way the official TypeScript SDK recommends, for the conformance
// tool to judge (`conformance check`): `requireBearerAuth` with a JWT verifier on `jose`
// (the issuer's JWKS, `iss` and `aud` checked), the SDK's RFC 9728 metadata router, and a
// stateless Streamable HTTP transport serving one tool, `whoami`.
//
//   node protected-server.mjs <port> <issuer> <resource-url> [required-scope]
//
// It prints one JSON line once it listens: {"port": PORT}. Nothing here is ours: it is what a
// user of the SDK writes, from its documentation, with no knowledge of the tool's checks.

import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
  getOAuthProtectedResourceMetadataUrl,
  mcpAuthMetadataRouter,
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const [portArg, issuer, resource, scope = 'mcp:tools'] = process.argv.slice(2);
if (!portArg || !issuer || !resource) {
  console.error('usage: node protected-server.mjs <port> <issuer> <resource-url> [required-scope]');
  process.exit(2);
}
const resourceUrl = new URL(resource);

const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));

const verifier = {
  async verifyAccessToken(token) {
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer, audience: resource });
      return {
        token,
        clientId: payload.client_id ?? payload.azp ?? payload.sub,
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ') : [],
        expiresAt: payload.exp,
        resource: new URL(resource),
      };
    } catch (error) {
      throw new InvalidTokenError(error.message);
    }
  },
};

const app = express();
app.use(express.json());
app.use(mcpAuthMetadataRouter({ oauthMetadata: metadata, resourceServerUrl: resourceUrl }));
app.post(
  resourceUrl.pathname,
  requireBearerAuth({
    verifier,
    requiredScopes: [scope],
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resourceUrl),
  }),
  async (req, res) => {
    const server = new McpServer({ name: 'ts-sdk-protected', version: '1.0.0' });
    server.registerTool('whoami', { description: 'Who the token is for' }, async (extra) => ({
      content: [{ type: 'text', text: String(extra.authInfo?.clientId) }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  },
);

const listener = app.listen(Number(portArg), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: listener.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => listener.close(() => process.exit(0)));
}
