#!/usr/bin/env python3
"""Verify every token in a file with PyJWT (and `cryptography`), the way a Python service
would: the keys built once from keyring.json (PyJWKSet, by kid), then jwt.decode with
issuer, audience and algorithm pinned and typ checked. Prints
"verified N tokens in S seconds: R per second" on one line.

    verify_pyjwt.py KEYRING TOKENS_FILE [SECONDS]
"""

import json
import sys
import time

import jwt
from jwt import PyJWKSet


def main() -> None:
    ring_path, tokens_path = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    with open(ring_path, encoding="utf-8") as f:
        ring = json.load(f)
    with open(tokens_path, encoding="ascii") as f:
        tokens = [line.strip() for line in f if line.strip()]
    jwks = PyJWKSet([{k: j[k] for k in ("kty", "crv", "x", "kid", "alg", "use")} for j in ring["keys"]])
    keys = {k.key_id: k for k in jwks.keys}
    issuer, audience = ring["issuer"], ring["audience"]

    def verify(token: str) -> dict:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "mdt+jwt":
            raise ValueError("typ")
        key = keys[header["kid"]].key
        return jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            issuer=issuer,
            audience=audience,
            leeway=60,
            options={"require": ["iat", "nbf", "iss", "aud", "jti"]},
        )

    for t in tokens:  # every token must verify before anything is timed
        verify(t)
    n = 0
    start = time.perf_counter()
    while True:
        for t in tokens:
            verify(t)
            n += 1
        if time.perf_counter() - start > seconds:
            break
    s = time.perf_counter() - start
    print(f"verified {n} tokens in {s:.2f} seconds: {n / s:.0f} per second")


if __name__ == "__main__":
    main()
