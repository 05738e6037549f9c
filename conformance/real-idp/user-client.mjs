// The official MCP TypeScript SDK client signing a user in, headless:
//
//   node user-client.mjs <mcp-endpoint> <redirect-uri>
//
// It starts with no token: the 401 leads it to our RFC 9728 metadata, the authorization server's
// metadata, dynamic client registration (RFC 7591, a public client), and an authorization URL
// with PKCE. Where a real client opens a browser, this one fetches the URL without following the
// redirect (the mock IdP signs the user in at once: auto-login), takes the code from the redirect,
// and finishes. Then it calls get_me, refreshes its tokens, and calls get_me again. It prints one
// JSON line: both get_me results and the registered client id. Exit code 0 on success.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  refreshAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';

const [endpoint, redirectUri] = process.argv.slice(2);
if (!endpoint || !redirectUri) {
  console.error('usage: node user-client.mjs <mcp-endpoint> <redirect-uri>');
  process.exit(2);
}

/** An OAuthClientProvider that keeps everything in memory and "opens the browser" by fetch. */
class HeadlessProvider {
  constructor(redirectUrl) {
    this.redirectUrl = redirectUrl;
    this.redirectedTo = undefined;
  }
  get clientMetadata() {
    return {
      client_name: 'conformance (TypeScript SDK, user)',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(client) {
    this.client = client;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens) {
    this.savedTokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    const response = await fetch(url, { redirect: 'manual' });
    if (response.status !== 302) {
      throw new Error(`the authorization URL answered ${response.status}: ${await response.text()}`);
    }
    this.redirectedTo = new URL(response.headers.get('location'));
  }
}

async function callGetMe(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
  const client = new Client({ name: 'conformance-ts-user', version: '1.0.0' });
  await client.connect(transport);
  const result = await client.callTool({ name: 'get_me', arguments: {} });
  await client.close();
  return result.structuredContent;
}

try {
  const provider = new HeadlessProvider(redirectUri);
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
  const client = new Client({ name: 'conformance-ts-user', version: '1.0.0' });
  try {
    await client.connect(transport);
    throw new Error('connected without signing in');
  } catch (error) {
    if (!provider.redirectedTo) {
      throw error;
    }
  }
  const callback = provider.redirectedTo;
  if (`${callback.origin}${callback.pathname}` !== redirectUri) {
    throw new Error(`redirected to ${callback} instead of ${redirectUri}`);
  }
  await transport.finishAuth(callback.searchParams.get('code'));
  const first = await callGetMe(provider);

  const resourceMetadata = await discoverOAuthProtectedResourceMetadata(new URL(endpoint));
  const authorizationServer = resourceMetadata.authorization_servers[0];
  const metadata = await discoverAuthorizationServerMetadata(authorizationServer);
  const refreshed = await refreshAuthorization(authorizationServer, {
    metadata,
    clientInformation: provider.clientInformation(),
    refreshToken: provider.tokens().refresh_token,
    resource: new URL(resourceMetadata.resource),
  });
  if (refreshed.access_token === provider.tokens().access_token) {
    throw new Error('the refresh returned the same access token');
  }
  provider.saveTokens(refreshed);
  const second = await callGetMe(provider);
  process.stdout.write(
    `${JSON.stringify({ first, second, client_id: provider.clientInformation().client_id })}\n`,
  );
  process.exit(0);
} catch (error) {
  console.error(error?.stack || String(error));
  process.exit(1);
}
