// An MCP server on the official TypeScript SDK's Streamable HTTP transport, with sessions and no
// auth of its own: the upstream the gateway tests put the server in front of. It prints
// {"port":N} once listening, then one JSON line per request it receives (method, headers, body):
// that log is how a test proves what reached it.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const IDENTITY = ['x-mcp-subject', 'x-mcp-issuer', 'x-mcp-client-id', 'x-mcp-scopes'];
const transports = new Map();
// In the gateway's JWT identity mode: the issuer, audience and key set its tokens are checked
// against, set by the test once the gateway runs (POST /trust, straight to this server).
let trust = null;

function newServer() {
  const server = new McpServer({ name: 'ts-upstream', version: '1' });
  // A tool without an input schema gets only the request's context.
  server.registerTool('whoami', { description: 'Who the gateway says the caller is.' }, async (extra) => {
    const headers = extra.requestInfo?.headers ?? {};
    const identity = {};
    for (const name of IDENTITY) if (headers[name] !== undefined) identity[name] = headers[name];
    const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '');
    if (trust && bearer) {
      try {
        const { payload } = await jwtVerify(bearer[1], trust.jwks, { issuer: trust.issuer, audience: trust.audience });
        identity.verified = payload;
      } catch (error) {
        identity.verification_error = error.code ?? String(error);
      }
    }
    return { content: [{ type: 'text', text: JSON.stringify(identity) }] };
  });
  return server;
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8');
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  console.log(JSON.stringify({ method: req.method, headers, body }));
  const path = new URL(req.url, 'http://upstream').pathname;
  if (path === '/trust' && req.method === 'POST') {
    const { issuer, audience, jwks_url: jwksUrl } = JSON.parse(body);
    trust = { issuer, audience, jwks: createRemoteJWKSet(new URL(jwksUrl)) };
    res.writeHead(204).end();
    return;
  }
  if (path !== '/mcp') return jsonError(res, 404, -32600, 'Not found');
  let parsed;
  if (body) {
    try { parsed = JSON.parse(body); } catch { return jsonError(res, 400, -32700, 'Parse error'); }
  }
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId) return jsonError(res, 404, -32001, 'Session not found');
    if (req.method !== 'POST' || !parsed || !isInitializeRequest(parsed)) {
      return jsonError(res, 400, -32000, 'Bad Request: no valid session id');
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => { if (transport.sessionId) transports.delete(transport.sessionId); };
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, parsed);
});

server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
