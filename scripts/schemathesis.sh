#!/usr/bin/env bash
# API conformance: Schemathesis generates requests from the server's own /openapi.json
# (valid and invalid data) and checks every answer against the document: no 5xx, only
# documented statuses, content types, headers and bodies. 127.0.0.1 only, bounded in time.
#
# Usage: scripts/schemathesis.sh [SECONDS]
#   SECONDS          the time budget of the generated tests (default 60); the whole run
#                    takes this plus the build, the set-up and schemathesis's start-up
#   SEED=N           replay a run (each run prints its seed)
#   MDTOKEN_BIN=...  use this mdtoken binary instead of building one
#
# Creates a venv under the target directory with a pinned Schemathesis if missing (the
# only network access: PyPI through pip). Starts `mdtoken serve` on a free port with a
# fresh keys directory and an admin key, and runs every stateless check:
# not_a_server_error, status_code_conformance, content_type_conformance,
# response_headers_conformance, response_schema_conformance and negative_data_rejection
# (invalid data must be refused with a 4xx), in positive and negative modes. Exits 0 only
# if every check held and the server counted no 5xx; the server log is kept on failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

SCHEMATHESIS_VERSION=4.32.5
budget=${1:-60}
[[ $budget =~ ^[0-9]+$ && $budget -ge 5 ]] || { echo "schemathesis: SECONDS must be a number >= 5" >&2; exit 2; }
seed=${SEED:-$(( (RANDOM << 15) | RANDOM ))}

die() { echo "schemathesis: $*" >&2; exit 2; }

# --- Python side -----------------------------------------------------------------------
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv=$target_dir/schemathesis-venv
st=$venv/bin/schemathesis
if [[ ! -x $venv/bin/python ]]; then
    timeout 120 python3 -m venv "$venv" || die "cannot create $venv (python3 -m venv)"
fi
if [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null) != "$SCHEMATHESIS_VERSION" ]]; then
    timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" || die "cannot install schemathesis into $venv"
fi

# --- the server ------------------------------------------------------------------------
if [[ -n ${MDTOKEN_BIN:-} ]]; then
    bin=$MDTOKEN_BIN
else
    timeout 900 cargo build --quiet --bin mdtoken || die "build failed"
    bin=$target_dir/debug/mdtoken
fi
[[ -x $bin ]] || die "no binary at $bin"

work=$(mktemp -d)
pid=
cleanup() {
    local status=$?
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if (( status == 0 )); then
        rm -rf "$work"
    else
        echo "schemathesis: server log and report kept in $work" >&2
    fi
}
trap cleanup EXIT

keys=$work/keys
"$bin" --keys-dir "$keys" keys init >/dev/null 2>&1 || die "keys init failed"
MDTOKEN_ADMIN_KEY=$("$bin" --keys-dir "$keys" admin-key create 2>/dev/null) || die "admin-key create failed"
export MDTOKEN_ADMIN_KEY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$bin" --keys-dir "$keys" serve --listen "127.0.0.1:$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the server exited: $(tail -3 "$work/server.log")"
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || die "the server did not answer /healthz"

# A real token id, so POST /v1/tokens/{jti}/revoke is also tested where it succeeds.
jti=$(curl -fsS -H "Authorization: Bearer $MDTOKEN_ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"schemathesis"}' "$base/v1/tokens" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token_id"])') || die "mint failed"

# The admin key goes only where the document asks for it (the "bearer" scheme), so
# POST /v1/activations is tested without one.
cat >"$work/schemathesis.toml" <<EOF
[auth.openapi.bearer]
bearer = "\${MDTOKEN_ADMIN_KEY}"

[[operations]]
include-name = "POST /v1/tokens/{jti}/revoke"
parameters = { jti = "$jti" }
EOF

echo "schemathesis $SCHEMATHESIS_VERSION against $base/openapi.json, ${budget}s, seed $seed"
status=0
(cd "$work" && timeout $((budget + 300)) "$st" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
    --mode all \
    --phases examples,coverage,fuzzing \
    --max-time "$budget" \
    --workers 1 \
    --request-timeout 10 \
    --seed "$seed" \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$work/report") || status=$?

# The server's own count of 5xx answers, whatever schemathesis made of them.
server_errors=$(curl -fsS "$base/metrics" | awk '/^mdtoken_http_request_duration_seconds_count\{.*status="5[0-9][0-9]"/ {n += $2} END {print n + 0}')
panics=$(grep -c 'panicked' "$work/server.log" || true)
requests=$(curl -fsS "$base/metrics" | awk '/^mdtoken_http_request_duration_seconds_count\{/ {n += $2} END {print n + 0}')
echo "schemathesis: server answered $requests requests, $server_errors with a 5xx, $panics panics logged"
if (( status != 0 )); then
    echo "schemathesis: FAILED (exit $status); replay with SEED=$seed" >&2
    exit 1
fi
if (( server_errors != 0 || panics != 0 )); then
    echo "schemathesis: FAILED: the server answered 5xx; see $work/server.log" >&2
    exit 1
fi
echo "schemathesis: passed"
