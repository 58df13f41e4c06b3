#!/usr/bin/env python3
"""Verify mdtoken tokens with PyJWT, given only an mdtoken keyring.json.

Usage:
    interop_pyjwt.py KEYRING [SPEC ...]
    interop_pyjwt.py KEYRING < specs.txt        (one SPEC per line)

A SPEC is a token, optionally preceded by an expectation and a space: "valid TOKEN",
"invalid TOKEN", "invalid:unknown_key TOKEN", or just "TOKEN" (reported, not judged). Error categories: unknown_key, bad_signature,
bad_header, expired, not_yet_valid, wrong_issuer, wrong_audience, missing_claim,
malformed, other.

The key is chosen by the header's kid from PyJWKSet built from the ring's "keys" (which
holds only active and retired keys; revoked ones live in "revoked_keys", so a standard
library never trusts them). The ring's own members beyond the JWK fields (status,
created_at, retired_at, verify_until) are ignored by PyJWT. The expected issuer and
audience come from the ring's top-level "issuer" and "audience".

For every token expected and found valid the script also checks two forgeries of it:
a payload changed under the original signature, and a flipped signature bit. Both must
be rejected as bad_signature.

Prints one JSON line per check on stdout and a summary on stderr. Exits 0 only if every
expectation held, 1 if any failed, 2 on usage or key ring errors. Tokens are never
printed.
"""

from __future__ import annotations

import base64
import json
import sys

import jwt
from jwt import PyJWKSet

LEEWAY = 60
TYP = "mdt+jwt"


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def categorise(exc: Exception) -> str:
    # Order matters: PyJWT's exception classes form a hierarchy.
    for cls, name in [
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not_yet_valid"),
        (jwt.InvalidIssuerError, "wrong_issuer"),
        (jwt.InvalidAudienceError, "wrong_audience"),
        (jwt.MissingRequiredClaimError, "missing_claim"),
        (jwt.InvalidSignatureError, "bad_signature"),
        (jwt.InvalidAlgorithmError, "bad_header"),
        (jwt.DecodeError, "malformed"),
    ]:
        if isinstance(exc, cls):
            return name
    return "other"


class Ring:
    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.issuer = doc["issuer"]
        self.audience = doc["audience"]
        self.keys = PyJWKSet.from_dict(doc)
        kids = {k.key_id for k in self.keys.keys}
        self.revoked = {r["kid"] for r in doc.get("revoked_keys", [])}
        if len(self.keys.keys) != len(doc["keys"]):
            raise ValueError("PyJWT could not use every key in the ring")
        if kids & self.revoked:
            raise ValueError("a revoked key is still listed in keys")
        for k in self.keys.keys:
            if k.algorithm_name != "EdDSA":
                raise ValueError(f"key {k.key_id} is not an EdDSA key to PyJWT")

    def verify(self, token: str) -> dict:
        """Verifies one token; returns the JSON report without expectations."""
        kid = None
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            try:
                key = self.keys[kid]
            except KeyError:
                return {"valid": False, "error": "unknown_key", "kid": kid,
                        "message": "no key in keyring.json keys has this kid"}
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["iat", "nbf", "jti"], "strict_aud": True},
            )
            # PyJWT does not enforce explicit typing (RFC 8725 section 3.11); a strict
            # consumer must, or any other JWT signed by the same key would pass.
            if header.get("typ") != TYP:
                return {"valid": False, "error": "bad_header", "kid": kid,
                        "message": f"typ is not {TYP}"}
        except jwt.PyJWTError as exc:
            return {"valid": False, "error": categorise(exc), "kid": kid,
                    "message": str(exc)}
        return {
            "valid": True,
            "kid": kid,
            "jti": claims.get("jti"),
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "iat": claims.get("iat"),
            "exp": claims.get("exp"),
            "name": claims.get("name"),
        }


def forgeries(token: str) -> list[tuple[str, str]]:
    """Two tampered copies of a token: changed claims, and a flipped signature bit."""
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["name"] = (claims.get("name") or "") + "!"
    changed = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    sig = bytearray(b64url_decode(signature))
    sig[0] ^= 0x01
    return [
        ("tampered_payload", f"{header}.{changed}.{signature}"),
        ("tampered_signature", f"{header}.{payload}.{b64url_encode(bytes(sig))}"),
    ]


def parse_spec(spec: str) -> tuple[str | None, str]:
    parts = spec.split()
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2 and (parts[0] == "valid" or parts[0].startswith("invalid")):
        return parts[0], parts[1]
    raise ValueError("a spec is TOKEN or EXPECT TOKEN")


def meets(expect: str | None, report: dict) -> bool:
    if expect is None:
        return True
    if expect == "valid":
        return report["valid"]
    if report["valid"]:
        return False
    _, _, category = expect.partition(":")
    return not category or category == report["error"]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        ring = Ring(argv[1])
    except (OSError, ValueError, KeyError, jwt.PyJWTError) as exc:
        print(f"interop_pyjwt: cannot use key ring {argv[1]}: {exc}", file=sys.stderr)
        return 2
    specs = argv[2:] or [line for line in sys.stdin.read().splitlines() if line.strip()]
    passed = failed = 0

    def record(index: int, check: str, expect: str | None, report: dict) -> None:
        nonlocal passed, failed
        ok = meets(expect, report)
        if expect is not None:
            passed, failed = passed + ok, failed + (not ok)
        line = {"index": index, "check": check, "expect": expect, "ok": ok, **report}
        print(json.dumps(line, separators=(",", ":")), flush=True)

    for index, spec in enumerate(specs):
        try:
            expect, token = parse_spec(spec)
        except ValueError as exc:
            print(f"interop_pyjwt: spec {index}: {exc}", file=sys.stderr)
            return 2
        report = ring.verify(token)
        record(index, "token", expect, report)
        if expect == "valid" and report["valid"]:
            for check, forged in forgeries(token):
                record(index, check, "invalid:bad_signature", ring.verify(forged))

    print(f"pyjwt {jwt.__version__}: {passed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
