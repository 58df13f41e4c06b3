#!/usr/bin/env bash
# Supply-chain checks on the locked dependency graph (every target; dev-dependencies too,
# except for licenses, since test-only crates are not distributed):
#
#   1. cargo-deny: bans, licenses and sources (deny.toml), then advisories when the RustSec
#      database can be fetched. Without it (github.com out of reach) the advisories check
#      is skipped and the script says so and why; that alone never fails the run.
#   2. Crypto backends: jsonwebtoken (a dev-dependency) resolves to >= 10.3 with exactly
#      one crypto backend, `rust_crypto` (never `aws_lc_rs`), and ed25519-dalek to 3.x
#      without its `legacy_compatibility` feature (which accepts a non-canonical S).
#
# Usage: scripts/supply_chain.sh [--backends-only]
#   --backends-only   run check 2 alone (needs only cargo and python3)
#
# Installs cargo-deny with `cargo install cargo-deny --locked` when it is missing (from
# crates.io; an unoptimised build, to keep a cold install short). Exits 0 only if every
# check that ran passed, printing "supply-chain: N passed, 0 failed" last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

backends_only=0
for arg in "$@"; do
    case $arg in
        --backends-only) backends_only=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "supply-chain: unknown argument $arg" >&2; exit 2 ;;
    esac
done

passed=0
failed=0
skipped=()
pass() { echo "supply-chain: PASS $*"; passed=$((passed + 1)); }
fail() { echo "supply-chain: FAIL $*"; failed=$((failed + 1)); }

# --- 2. crypto backends (first: cheap, and needs no cargo-deny) --------------------------
check_backends() {
    echo "== crypto backends (cargo metadata --locked, every target and dev-dependency)"
    local meta tree err
    err=$(mktemp)
    # stdout only: on a cold cache cargo reports its downloads on stderr.
    if ! meta=$(cargo metadata --format-version 1 --locked 2>"$err"); then
        tail -5 "$err"
        rm -f "$err"
        fail "crypto backends: cargo metadata --locked failed (is Cargo.lock up to date?)"
        return
    fi
    # A second opinion from cargo tree: the features really enabled on jsonwebtoken.
    if ! tree=$(cargo tree --locked --target all -e features -i jsonwebtoken 2>"$err"); then
        # No jsonwebtoken in the graph at all is fine; anything else is not.
        if ! grep -q "did not match any packages" "$err"; then
            tail -5 "$err"
            rm -f "$err"
            fail "crypto backends: cargo tree failed"
            return
        fi
        tree=""
    fi
    rm -f "$err"
    if SUPPLY_CHAIN_TREE=$tree python3 -c '
import json, os, re, sys

meta = json.load(sys.stdin)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = [(pkgs[n["id"]], set(n["features"])) for n in meta["resolve"]["nodes"]]
problems = []

def version(p):
    m = re.match(r"(\d+)\.(\d+)\.(\d+)(-)?", p["version"])
    major, minor, patch = (int(x) for x in m.group(1, 2, 3))
    # A pre-release sorts before its release.
    return (major, minor, patch, 0 if m.group(4) else 1)

BACKENDS = {"rust_crypto", "aws_lc_rs"}
jwt = [(p, f) for p, f in nodes if p["name"] == "jsonwebtoken"]
for p, features in jwt:
    on = sorted(features & BACKENDS)
    if on != ["rust_crypto"]:
        problems.append(
            "jsonwebtoken %s has crypto backend(s) %s enabled; exactly one, rust_crypto, is "
            "allowed (features: %s)" % (p["version"], on or "none", sorted(features)))
    if version(p) < (10, 3, 0, 1):
        problems.append("jsonwebtoken resolves to %s; 10.3 or later is required" % p["version"])
    print("jsonwebtoken %s: backends %s" % (p["version"], on))
if not jwt:
    print("jsonwebtoken: not in the dependency graph (nothing to check)")

tree = os.environ.get("SUPPLY_CHAIN_TREE", "")
for backend in sorted(BACKENDS):
    in_tree = ("feature \"%s\"" % backend) in tree
    in_meta = any(backend in f for _, f in jwt)
    if in_tree != in_meta:
        problems.append("cargo tree and cargo metadata disagree on jsonwebtoken feature %s" % backend)

dalek = [(p, f) for p, f in nodes if p["name"] == "ed25519-dalek"]
for p, features in dalek:
    print("ed25519-dalek %s" % p["version"])
    if version(p)[0] != 3:
        problems.append("ed25519-dalek resolves to %s; only 3.x is allowed" % p["version"])
    # It would accept a non-canonical S, which src/key.rs relies on dalek to refuse.
    if "legacy_compatibility" in features:
        problems.append("ed25519-dalek has its legacy_compatibility feature on")
if not dalek:
    problems.append("ed25519-dalek is not in the dependency graph")

for name in ("aws-lc-rs", "aws-lc-sys"):
    for p, _ in nodes:
        if p["name"] == name:
            problems.append("%s %s is in the dependency graph" % (name, p["version"]))

for line in problems:
    print("  problem: " + line)
sys.exit(1 if problems else 0)
' <<<"$meta"; then
        pass "crypto backends: jsonwebtoken >= 10.3 with rust_crypto alone; ed25519-dalek 3.x without legacy_compatibility"
    else
        fail "crypto backends: see the problems above"
    fi
}

check_backends

if [ "$backends_only" = 1 ]; then
    echo "supply-chain: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
fi

# --- 1. cargo-deny ------------------------------------------------------------------------
# deny.toml is written for the 0.20 series; another series may read it differently.
deny_series='0.20'
have=$(cargo deny --version 2>/dev/null || true)
if [[ $have != "cargo-deny $deny_series."* ]]; then
    echo "== installing cargo-deny $deny_series.x (cargo install cargo-deny --locked)${have:+; found $have}"
    start=$SECONDS
    # An unoptimised build without debug info: half the CPU time of a release build (fat
    # LTO, one codegen unit) on two cores, and the checks still take seconds.
    CARGO_PROFILE_DEV_DEBUG=0 \
        cargo install cargo-deny --locked --quiet --debug --version "~$deny_series"
    echo "cargo-deny installed in $((SECONDS - start)) s"
fi
echo "== $(cargo deny --version)"

echo "== cargo deny check bans licenses sources"
if cargo deny --locked --color never check --hide-inclusion-graph bans licenses sources; then
    pass "cargo-deny: bans, licenses, sources"
else
    # Once more with only the errors, each with the dependency path that brings it in.
    cargo deny --locked --color never --log-level error check bans licenses sources || true
    fail "cargo-deny: bans, licenses or sources (see above)"
fi

echo "== cargo deny check advisories"
# Fetch the advisory database first, so that failing to reach it is told apart from
# advisories found in it.
if fetch_log=$(timeout 300 cargo deny --color never fetch db 2>&1); then
    if cargo deny --locked --color never check advisories; then
        pass "cargo-deny: advisories"
    else
        fail "cargo-deny: advisories (see above)"
    fi
else
    why=$(grep -iE "resolve|connect|network|timed? ?out|unable to access|could not" <<<"$fetch_log" |
        head -1 | sed 's/^[[:space:]]*//' || true)
    [ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' <<<"$fetch_log" | tail -1 || true)
    [ -n "$why" ] || why="cargo deny fetch db timed out"
    echo "supply-chain: SKIPPED advisories: the RustSec advisory database could not be fetched"
    echo "supply-chain:   reason: $why"
    echo "supply-chain:   run 'cargo deny check advisories' where github.com is reachable"
    skipped+=(advisories)
fi

summary="supply-chain: $passed passed, $failed failed"
if [ ${#skipped[@]} -gt 0 ]; then
    summary+=", ${#skipped[@]} skipped"
    echo "supply-chain: skipped (no network): ${skipped[*]}"
fi
echo "$summary"
[ "$failed" = 0 ]
