// DPoP end to end with code we did not write: panva's `dpop` package makes every proof, and
// oidc-provider (its dPoP feature, on by default in 9.x) binds the token to the proof's key.
//
//   node dpop-client.mjs <mcp-endpoint> <issuer> <client-id> <client-secret> [resource]
//
// It makes an ES256 key pair, obtains a client-credentials token for `resource` (RFC 8707; default:
// the endpoint, for which the provider issues JWTs; its opaque resource gets introspected tokens) with
// a DPoP proof at the token endpoint (RFC 9449 §5), then, at the MCP endpoint, sends:
//
// - `accepted`: initialize, then tools/call get_me, each with a fresh proof (§4.3, §7.1);
// - `replayed`: the initialize request again, with the very proof already accepted (§11.1);
// - `other_key`: a fresh proof signed by another key than the token's `cnf.jkt` (§7.1);
// - `other_token`: a fresh proof whose `ath` hashes another string than the token (§4.3);
// - `as_bearer`: the bound token as a plain bearer token, no proof (§7.2).
//
// It prints one JSON line: the token response's type and every answer's status, challenges and,
// for `accepted`, the get_me result. It decides nothing: the Rust test asserts. Exit code 0 when
// every request got an answer, 1 otherwise (the error on stderr).

import * as DPoP from 'dpop';

const [endpoint, issuer, clientId, clientSecret, resource = endpoint] = process.argv.slice(2);
if (!endpoint || !issuer || !clientId || !clientSecret) {
  console.error(
    'usage: node dpop-client.mjs <mcp-endpoint> <issuer> <client-id> <client-secret> [resource]',
  );
  process.exit(2);
}

const ACCEPT = 'application/json, text/event-stream';

async function metadata() {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  return response.json();
}

async function token(keyPair, tokenEndpoint) {
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await DPoP.generateProof(keyPair, tokenEndpoint, 'POST'),
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope: 'mcp:tools',
      resource,
    }),
  });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`token request: ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}

/** One request to the MCP endpoint; what came back, with the JSON-RPC answer if any. */
async function send({ authorization, proof, body, session }) {
  const headers = { accept: ACCEPT, 'content-type': 'application/json', authorization };
  if (proof) headers.dpop = proof;
  if (session) headers['mcp-session-id'] = session;
  const response = await fetch(endpoint, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await response.text();
  return {
    status: response.status,
    challenges: response.headers.get('www-authenticate'),
    session: response.headers.get('mcp-session-id'),
    answer: jsonRpcAnswer(text),
  };
}

/** The JSON-RPC message of a JSON body or of an SSE stream's first `data:` line. */
function jsonRpcAnswer(text) {
  const data = text
    .split('\n')
    .find((line) => line.startsWith('data:') && line.slice(5).trim().startsWith('{'));
  try {
    return JSON.parse(data ? data.slice(5) : text);
  } catch {
    return null;
  }
}

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'conformance-dpop', version: '1.0.0' },
  },
};

try {
  const keyPair = await DPoP.generateKeyPair('ES256');
  const { token_endpoint: tokenEndpoint } = await metadata();
  const issued = await token(keyPair, tokenEndpoint);
  const accessToken = issued.access_token;
  const dpop = `DPoP ${accessToken}`;
  const proofFor = (pair, tokenValue = accessToken) =>
    DPoP.generateProof(pair, endpoint, 'POST', undefined, tokenValue);

  const firstProof = await proofFor(keyPair);
  const initialized = await send({ authorization: dpop, proof: firstProof, body: initialize });
  const session = initialized.session;
  await send({
    authorization: dpop,
    proof: await proofFor(keyPair),
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
    session,
  });
  const getMe = await send({
    authorization: dpop,
    proof: await proofFor(keyPair),
    body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_me', arguments: {} } },
    session,
  });

  const report = {
    token_type: issued.token_type,
    access_token: accessToken,
    accepted: { initialize: initialized.status, get_me: getMe.status, result: getMe.answer },
    replayed: await send({ authorization: dpop, proof: firstProof, body: initialize }),
    other_key: await send({
      authorization: dpop,
      proof: await proofFor(await DPoP.generateKeyPair('ES256')),
      body: initialize,
    }),
    other_token: await send({
      authorization: dpop,
      proof: await proofFor(keyPair, `${accessToken}x`),
      body: initialize,
    }),
    as_bearer: await send({ authorization: `Bearer ${accessToken}`, body: initialize }),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
} catch (error) {
  console.error(error?.stack || String(error));
  process.exit(1);
}
