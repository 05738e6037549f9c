// The official MCP TypeScript SDK client, machine to machine, starting with no token:
//
//   node client.mjs <mcp-endpoint> <client-id> <client-secret> <expected-issuer> [scope]
//
// It must meet the server's 401, find the RFC 9728 metadata from the challenge, find the
// authorization server's metadata, obtain a client-credentials token for the server's resource
// (RFC 8707), then call get_me. The SDK's client-credentials provider asks for the scope it is
// configured with (`scope`), not the one the challenge names. It prints one JSON line: the get_me result and the resource the
// token was requested for. Exit code 0 on success, 1 on any failure (the error on stderr).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [endpoint, clientId, clientSecret, expectedIssuer, scope] = process.argv.slice(2);
if (!endpoint || !clientId || !clientSecret || !expectedIssuer) {
  console.error(
    'usage: node client.mjs <mcp-endpoint> <client-id> <client-secret> <expected-issuer> [scope]',
  );
  process.exit(2);
}

// Record what the SDK sends to the token endpoint, to show the resource it asked for.
const requested = [];
const realFetch = globalThis.fetch;
const recordingFetch = async (input, init) => {
  if (init?.body instanceof URLSearchParams && init.body.get('grant_type')) {
    requested.push({
      grant_type: init.body.get('grant_type'),
      resource: init.body.get('resource'),
      scope: init.body.get('scope'),
    });
  }
  return realFetch(input, init);
};

try {
  const authProvider = new ClientCredentialsProvider({
    clientId,
    clientSecret,
    expectedIssuer,
    scope,
  });
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), {
    authProvider,
    fetch: recordingFetch,
  });
  const client = new Client({ name: 'conformance-ts-sdk', version: '1.0.0' });
  await client.connect(transport);
  const result = await client.callTool({ name: 'get_me', arguments: {} });
  process.stdout.write(
    `${JSON.stringify({ get_me: result.structuredContent, token_requests: requested })}\n`,
  );
  await client.close();
  process.exit(0);
} catch (error) {
  console.error(error?.stack || String(error));
  console.error(`token requests: ${JSON.stringify(requested)}`);
  process.exit(1);
}
