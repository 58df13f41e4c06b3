#!/usr/bin/env bash
# Soak test: one release server on 127.0.0.1 under mixed traffic for SECONDS (default 600),
# every request loop bounded by that time. Needs wrk (Debian package `wrk`), curl and
# python3 (standard library only).
#
#   bash scripts/soak.sh [SECONDS]
#
# Traffic, all at once for the whole duration (scripts/soak_clients.py, scripts/soak.lua):
#   valid       activations with many distinct valid tokens (VALID_TOKENS, default 150000:
#               more than the verified-token cache holds, so it fills and evicts)
#   expired     activations with distinct expired tokens (20000, minted with a pinned
#               clock two days back and a one-hour lifetime)
#   garbage     junk and tampered tokens, broken JSON, wrong shapes, wrong methods/paths
#   badtype     bodies under content types other than JSON
#   oversized   bodies over 16 KiB, with a Content-Length and chunked
#   slow        32 slowloris clients (headers never finished), 8 slow bodies, 2 clients
#               that pipeline requests and never read the answers
#   admin       a mint every second through the admin API; the ledger, deployment and
#               keys read every 30 s
# Meanwhile /healthz is probed every second on a fresh connection (2 s timeout) and the
# server's RSS, file descriptors and threads are sampled every 10 s.
#
# Prints answers per class and status, 5xx counts (clients and the server's metrics),
# healthz failures and latency, RSS first/last/max with a flatness verdict (growth after
# the warm-up, min(120 s, SECONDS/5), at most 10%), and exits 1 if any of these failed:
# a 5xx, a failed probe, RSS growth, an answer outside a class's expected statuses, a slow
# client the server did not cut off, file descriptors not released.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-600}
[[ $duration =~ ^[0-9]+$ && $duration -ge 30 ]] || { echo "soak: SECONDS must be a number >= 30" >&2; exit 2; }
valid_tokens=${VALID_TOKENS:-150000}
command -v wrk >/dev/null || { echo "soak: wrk is not installed: apt-get install wrk" >&2; exit 2; }

cargo build --release --quiet --bin mdtoken --example mint_many
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/release/mdtoken
mint_many=$target_dir/release/examples/mint_many

work=$(mktemp -d)
pid=
cleanup() {
    local status=$?
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if (( status == 0 )); then
        rm -rf "$work"
    else
        rm -f "$work"/valid.txt "$work"/expired.txt
        echo "soak: server log and wrk output kept in $work" >&2
    fi
}
trap cleanup EXIT

iso() { python3 -c 'import datetime as d, sys; print((d.datetime.now(d.timezone.utc) + d.timedelta(seconds=int(sys.argv[1]))).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$1"; }

# The ring is made three days back, so tokens issued two days back are the key's own.
keys=$work/keys
MDTOKEN_NOW=$(iso -259200) "$bin" --keys-dir "$keys" keys init >/dev/null 2>&1
admin_key=$("$bin" --keys-dir "$keys" admin-key create 2>/dev/null)
"$mint_many" "$keys" "$valid_tokens" "$work/valid.txt" 86400
MDTOKEN_NOW=$(iso -172800) "$mint_many" "$keys" 20000 "$work/expired.txt" 3600
# Check the classes before relying on them.
"$bin" --keys-dir "$keys" verify - >/dev/null 2>&1 < <(head -1 "$work/valid.txt") \
    || { echo "soak: a valid token does not verify" >&2; exit 2; }
reason=$("$bin" --keys-dir "$keys" verify --json - 2>/dev/null < <(head -1 "$work/expired.txt") || true)
[[ $reason == *token_expired* ]] || { echo "soak: an expired token is not token_expired: $reason" >&2; exit 2; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The audit log goes to a file, as a service's journal would take it.
"$bin" --keys-dir "$keys" serve --listen "127.0.0.1:$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null

echo "soak: ${duration}s against 127.0.0.1:$port (pid $pid); $valid_tokens valid and 20000 expired tokens"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
status=0
python3 scripts/soak_clients.py --port "$port" --pid "$pid" --duration "$duration" \
    --admin-key "$admin_key" --valid "$work/valid.txt" --expired "$work/expired.txt" \
    --lua scripts/soak.lua --wrk-log "$work/wrk.log" || status=$?
cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
panics=$(grep -c 'panicked' "$work/server.log" || true)
echo "server CPU: $(( (cpu1 - cpu0) / ticks )) s over the run; log $(du -h "$work/server.log" | cut -f1), $(wc -l <"$work/server.log") lines, $panics panics; load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if (( panics != 0 )); then
    echo "soak: FAILED: the server log records a panic" >&2
    status=1
fi
exit "$status"
