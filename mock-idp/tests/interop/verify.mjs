// Verifies an access token with jose against a JWKS URL, as a resource server would.
// Usage: node verify.mjs <jwks-url> <issuer> <audience> <token>
// Exit 0 and prints {"header":..., "payload":...} when valid; exit 1 with the reason otherwise.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, issuer, audience, token] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"],
  });
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + "\n");
} catch (error) {
  process.stderr.write(`${error.code ?? "ERR"}: ${error.message}\n`);
  process.exit(1);
}
