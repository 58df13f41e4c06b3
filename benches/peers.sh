#!/usr/bin/env bash
# Per-core verification throughput against peers, on the same distinct tokens and the
# same keyring.json: mdtoken's Verifier (no cache) and a bare verify_strict, PyJWT with
# `cryptography`, and node `jose`. Each runs on one thread for SECONDS; prints the rates
# and ours/theirs.
#
#   bash benches/peers.sh [SECONDS] [TOKENS]
#
# Installs PyJWT and cryptography into benches/peers/.venv and jose into
# benches/peers/node_modules on first use (the only network access: PyPI and the npm
# registry through pip and npm). Needs python3 with venv, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
count=${2:-2000}
peers=benches/peers

command -v node >/dev/null || { echo "peers: node is not installed" >&2; exit 2; }
if [ ! -x "$peers/.venv/bin/python" ]; then
  python3 -m venv "$peers/.venv"
  "$peers/.venv/bin/pip" install --quiet 'PyJWT[crypto]==2.10.1'
fi
if [ ! -d "$peers/node_modules/jose" ]; then
  (cd "$peers" && npm install --silent --no-audit --no-fund)
fi

cargo build --release --quiet --bin mdtoken --example mint_many --example verify_many
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/mdtoken --keys-dir "$work/keys" keys init --issuer https://mdm.example.com >/dev/null 2>&1
target/release/examples/mint_many "$work/keys" "$count" "$work/tokens.txt"
ring="$work/keys/keyring.json"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$count distinct tokens of $(head -c 2000 "$work/tokens.txt" | head -1 | tr -d '\n' | wc -c) bytes; $seconds s a side, one thread each"
ours=$(target/release/examples/verify_many "$ring" "$work/tokens.txt" "$seconds")
py=$("$peers/.venv/bin/python" "$peers/verify_pyjwt.py" "$ring" "$work/tokens.txt" "$seconds")
js=$(node "$peers/verify_jose.mjs" "$ring" "$work/tokens.txt" "$seconds")
echo "mdtoken  $ours"
echo "PyJWT    $py ($("$peers/.venv/bin/python" -c 'import jwt, cryptography; print(f"PyJWT {jwt.__version__}, cryptography {cryptography.__version__}")'))"
echo "jose     $js (jose $(node -p 'require("./'"$peers"'/node_modules/jose/package.json").version'), node $(node --version))"
r_ours=$(sed -n 's/^mdtoken verify: \([0-9]*\) per second.*/\1/p' <<<"$ours")
rate() { sed -n 's/.*seconds: \([0-9]*\) per second.*/\1/p' <<<"$1"; }
r_py=$(rate "$py"); r_js=$(rate "$js")
python3 - "$r_ours" "$r_py" "$r_js" <<'PY'
import sys
ours, py, js = map(float, sys.argv[1:])
for name, theirs in (("PyJWT", py), ("jose", js)):
    r = ours / theirs
    print(f"ours/{name}: {r:.1f}x  (target >= 5: {'met' if r >= 5 else 'MISSED'})")
PY
