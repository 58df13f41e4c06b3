#!/usr/bin/env bash
# Interop: tokens minted by mdtoken verify with PyJWT given only keyring.json, and stop
# verifying once their key is revoked. mdtoken's own verdict is checked alongside.
#
# Usage: scripts/interop.sh [--fixture]
#   --fixture        use examples/mint_fixture.rs (the library behind a CLI-shaped
#                    front) instead of the mdtoken binary
#   MDTOKEN_BIN=...  use this mdtoken binary instead of building one
#
# Creates .venv at the repository root with PyJWT if missing (the only network access:
# PyPI through pip). Exits 0 only if every expectation held, printing
# "interop: N passed, 0 failed" last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

use_fixture=0
for arg in "$@"; do
    case $arg in
        --fixture) use_fixture=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "interop: unknown argument $arg" >&2; exit 2 ;;
    esac
done

die() { echo "interop: $*" >&2; exit 2; }

# --- Python side -----------------------------------------------------------------------
py=.venv/bin/python
if [[ ! -x $py ]]; then
    timeout 120 python3 -m venv .venv || die "cannot create .venv (python3 -m venv)"
fi
if ! "$py" -c 'import jwt, cryptography' 2>/dev/null; then
    timeout 300 "$py" -m pip install --quiet --disable-pip-version-check "pyjwt[crypto]" \
        || die "cannot install pyjwt[crypto] into .venv"
fi

# --- mdtoken side ----------------------------------------------------------------------
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [[ -n ${MDTOKEN_BIN:-} ]]; then
    bin=$MDTOKEN_BIN
elif (( use_fixture )); then
    timeout 900 cargo build --quiet --example mint_fixture || die "build failed"
    bin=$target_dir/debug/examples/mint_fixture
else
    timeout 900 cargo build --quiet || die "build failed"
    bin=$target_dir/debug/mdtoken
fi
[[ -x $bin ]] || die "no binary at $bin"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
keys=$tmp/keys
md() { timeout 60 "$bin" --keys-dir "$keys" "$@"; }
field() { "$py" -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$1"; }

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

md keys init --issuer "https://mdtoken.interop.example" --audience "mass-deployment" >/dev/null \
    || die "keys init failed"

a1=$(md mint --expires-in 30d --name "interop a1" --json) || die "mint failed"
a2=$(md mint --no-expiry --json) || die "mint failed"
in_400_days=$("$py" -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() + d.timedelta(days=400))')
a3=$(md mint --expires "$in_400_days" --name "dated" --json) || die "mint failed"
kid1=$(field key_id <<<"$a1")
md keys rotate >/dev/null || die "keys rotate failed"
b1=$(md mint --expires-in 30d --name "interop b1" --json) || die "mint failed"
b2=$(md mint --no-expiry --json) || die "mint failed"
kid2=$(field key_id <<<"$b1")
[[ $kid1 != "$kid2" && $(field key_id <<<"$a2") == "$kid1" ]] || die "rotation did not change the signing key"
[[ -z $(field expires_at <<<"$a2") ]] || fail "mint --no-expiry printed an expires_at"

tok() { field token <<<"$1"; }

# Runs the PyJWT checker over "EXPECT TOKEN" lines on stdin against ring $1, counting
# each judged line.
pyjwt() {
    local ring=$1 out status=0
    out=$(timeout 60 "$py" scripts/interop_pyjwt.py "$ring") || status=$?
    [[ -n $out ]] || die "interop_pyjwt.py printed nothing (exit $status)"
    while IFS= read -r line; do
        echo "  pyjwt $line"
        case $line in
            *'"ok":true'*) pass ;;
            *) fail "pyjwt: $line" ;;
        esac
    done <<<"$out"
    (( status <= 1 )) || die "interop_pyjwt.py failed (exit $status)"
}

# mdtoken's own verdict on the same ring: "valid" or the rejection code.
mdverdict() {
    local want=$1 token=$2 got
    got=$(md verify - --json <<<"$token" | "$py" -c \
        'import json, sys; r = json.load(sys.stdin); print("valid" if r["valid"] else r["reason"])') || true
    if [[ $got == "$want" ]]; then pass; else fail "mdtoken verify: want $want, got ${got:-nothing}"; fi
    echo "  mdtoken verify: want $want, got ${got:-nothing}"
}

echo "interop: two keys (one retired), five tokens"
cp "$keys/keyring.json" "$tmp/ring-before-revoke.json"
pyjwt "$tmp/ring-before-revoke.json" <<EOF
valid $(tok "$a1")
valid $(tok "$a2")
valid $(tok "$a3")
valid $(tok "$b1")
valid $(tok "$b2")
EOF
for t in "$a1" "$a2" "$a3" "$b1" "$b2"; do mdverdict valid "$(tok "$t")"; done

echo "interop: key $kid1 revoked"
md keys revoke "$kid1" >/dev/null || die "keys revoke failed"
"$py" - "$keys/keyring.json" "$kid1" <<'EOF' && pass || fail "revoked key still in keys"
import json, sys
ring = json.load(open(sys.argv[1]))
assert sys.argv[2] not in {k["kid"] for k in ring["keys"]}
assert sys.argv[2] in {k["kid"] for k in ring["revoked_keys"]}
EOF
pyjwt "$keys/keyring.json" <<EOF
invalid:unknown_key $(tok "$a1")
invalid:unknown_key $(tok "$a2")
invalid:unknown_key $(tok "$a3")
valid $(tok "$b1")
valid $(tok "$b2")
EOF
for t in "$a1" "$a2" "$a3"; do mdverdict key_revoked "$(tok "$t")"; done
for t in "$b1" "$b2"; do mdverdict valid "$(tok "$t")"; done

echo "interop: $passed passed, $failed failed"
(( failed == 0 ))
