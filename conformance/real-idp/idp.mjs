// A real, OpenID Certified authorization server (panva/oidc-provider) for the conformance suite's
// real-IdP tests. Offline and self-contained:
//
// - listens on 127.0.0.1, on PORT (0 or unset: any free port), and prints one JSON line on stdout
//   once it listens: {"issuer": "http://127.0.0.1:PORT", "port": PORT};
// - signs with an RS256 key generated at every start (never the package's development key), so a
//   restart on the same port is a key rotation;
// - issues client-credentials access tokens per RFC 8707 resource: JWT (RFC 9068, typ at+jwt,
//   aud = the resource) for every URL in JWT_RESOURCES (comma-separated), opaque ones for
//   OPAQUE_RESOURCE (for introspection);
// - knows a confidential client CLIENT_ID / CLIENT_SECRET (client_secret_basic, scope mcp:tools)
//   and a resource-server client INTROSPECTOR_ID / INTROSPECTOR_SECRET for introspection, with
//   introspection (RFC 7662) and revocation (RFC 7009) enabled;
// - binds a token to the key of a DPoP proof sent with its token request (RFC 9449, no nonce).

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const jwtResources = (process.env.JWT_RESOURCES || '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);
const opaqueResource = process.env.OPAQUE_RESOURCE || 'urn:mcp:opaque';
const scope = 'mcp:tools';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = {
  ...privateKey.export({ format: 'jwk' }),
  alg: 'RS256',
  use: 'sig',
  kid: `k-${Date.now()}-${process.pid}`,
};

function resourceServer(indicator) {
  if (jwtResources.includes(indicator)) {
    return {
      scope,
      audience: indicator,
      accessTokenTTL: 300,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  }
  if (indicator === opaqueResource) {
    return { scope, audience: indicator, accessTokenTTL: 300, accessTokenFormat: 'opaque' };
  }
  return undefined;
}

// Listen first: the issuer names the port, which is only known once bound.
const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const actualPort = server.address().port;
const issuer = `http://127.0.0.1:${actualPort}`;
const provider = new Provider(issuer, {
  jwks: { keys: [signing] },
  clients: [
    {
      client_id: process.env.CLIENT_ID || 'mcp-client',
      client_secret: process.env.CLIENT_SECRET || 'mcp-client-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope,
    },
    {
      client_id: process.env.INTROSPECTOR_ID || 'mcp-server',
      client_secret: process.env.INTROSPECTOR_SECRET || 'mcp-server-secret',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: [scope],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // RFC 9449: a token request with a DPoP proof gets a token bound to its key (cnf.jkt).
    dPoP: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        const info = resourceServer(indicator);
        if (!info) {
          throw new Provider.errors.InvalidTarget();
        }
        return info;
      },
    },
  },
  ttl: { ClientCredentials: 300 },
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, port: actualPort })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
