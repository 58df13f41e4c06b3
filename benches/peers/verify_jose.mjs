// Verifies every token in a file with node `jose`, the way a node service would: the key
// imported once from keyring.json (by kid), then jwtVerify with issuer, audience, typ and
// algorithm pinned. Prints "verified N tokens in S seconds: R per second" on one line.
//
//   node verify_jose.mjs KEYRING TOKENS_FILE [SECONDS]
import { readFileSync } from "node:fs";
import { importJWK, jwtVerify, decodeProtectedHeader } from "jose";

const [keyringPath, tokensPath, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 5);
const ring = JSON.parse(readFileSync(keyringPath, "utf8"));
const tokens = readFileSync(tokensPath, "utf8").split("\n").filter(Boolean);

const keys = new Map();
for (const jwk of ring.keys) {
  const { kty, crv, x, kid } = jwk;
  keys.set(kid, await importJWK({ kty, crv, x }, "EdDSA"));
}
const options = {
  issuer: ring.issuer,
  audience: ring.audience,
  algorithms: ["EdDSA"],
  typ: "mdt+jwt",
  clockTolerance: 60,
};
const getKey = (header) => {
  const key = keys.get(header.kid);
  if (!key) throw new Error("unknown kid");
  return key;
};

// Every token must verify before anything is timed.
for (const t of tokens) await jwtVerify(t, getKey, options);
decodeProtectedHeader(tokens[0]);

let n = 0;
const start = process.hrtime.bigint();
const budget = BigInt(Math.round(seconds * 1e9));
for (;;) {
  for (const t of tokens) {
    await jwtVerify(t, getKey, options);
    n++;
  }
  if (process.hrtime.bigint() - start > budget) break;
}
const s = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`verified ${n} tokens in ${s.toFixed(2)} seconds: ${(n / s).toFixed(0)} per second`);
