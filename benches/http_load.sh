#!/usr/bin/env bash
# HTTP load benchmark, 127.0.0.1 only, every phase bounded in time. One server process on a
# fresh keys directory, default configuration (verified-token cache on, 100 000 entries),
# and in one run:
#
#   1. GET /healthz                                   the floor: routing, layers, metrics
#   2. POST /v1/activations, one token repeated       cache hits
#   3. POST /v1/activations, distinct valid tokens    cache misses: never a token twice
#
# For each: req/s, p99 latency, non-2xx and socket errors, and the server's CPU time per
# request (utime + stime from /proc/<pid>/stat over the phase, divided by the requests
# wrk completed). A bare verify_strict over the same tokens is timed just before, so the
# ratios below come from one run. Then the server's RSS after everything (the distinct
# phase fills the cache). Needs wrk (Debian package `wrk`), curl and python3.
#
#   bash benches/http_load.sh [SECONDS] [CONNECTIONS] [DISTINCT_TOKENS]
#
# SECONDS per phase (default 15), CONNECTIONS for wrk -t2 (default 64), DISTINCT_TOKENS
# minted for phase 3 (default 400000; if wrk runs out it says so, as later requests
# would be cache hits). Exits 1 if any request failed or got a non-2xx answer.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-15}
conns=${2:-64}
distinct=${3:-400000}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }

cargo build --release --quiet --bin mdtoken --example mint_many --example verify_many
bin=target/release/mdtoken
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" --keys-dir "$work/keys" keys init >/dev/null 2>&1
target/release/examples/mint_many "$work/keys" "$distinct" "$work/tokens.txt" 86400
head -1 "$work/tokens.txt" >"$work/one.txt"
# The bare verify_strict baseline, on this machine now, over the same kind of tokens.
baseline=$(head -2000 "$work/tokens.txt" >"$work/sample.txt" &&
  target/release/examples/verify_many "$work/keys/keyring.json" "$work/sample.txt" 3)
raw_us=$(sed -n 's/.*raw verify_strict: [0-9]* per second (\([0-9.]*\) us).*/\1/p' <<<"$baseline")

# The audit log goes to a file, as a service's journal would take it.
"$bin" --keys-dir "$work/keys" serve --listen "$addr" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$addr/healthz" >/dev/null

# With a step of 0 every thread sends every token of the file; with a step of 2 each of
# the two wrk threads sends its own half, in order, each token at most once;
# "wrapped" counts threads that ran out (their later requests would be cache hits).
cat >"$work/activate.lua" <<'LUA'
local threads = {}
local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end
function init(args)
  local file, step = args[1], tonumber(args[2])
  tokens = {}
  local i = 0
  for line in io.lines(file) do
    if step == 0 or i % step == id then tokens[#tokens + 1] = line end
    i = i + 1
  end
  next_token, wrapped = 1, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local t = tokens[next_token]
  next_token = next_token + 1
  if next_token > #tokens then next_token, wrapped = 1, 1 end
  return wrk.format(nil, nil, nil, '{"token":"' .. t .. '","user":"bench","device":"bench-01"}')
end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  io.write(string.format("wrapped threads: %d\n", w))
end
LUA

# The repeated token as one fixed request, built once by wrk like the /healthz request:
# no Lua runs per request, so both phases cost wrk the same and the ratio is the server's.
{
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
  printf 'wrk.body = [[{"token":"%s","user":"bench","device":"bench-01"}]]\n' "$(cat "$work/one.txt")"
} >"$work/one.lua"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# One wrk phase; prints "req/s requests non2xx errors p99 cpu_us_per_request wrapped".
run() {
  local out c0 c1
  c0=$(cpu)
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "$@" 2>&1)
  c1=$(cpu)
  echo "$out" >>"$work/wrk.log"
  awk -v c0="$c0" -v c1="$c1" -v tck="$ticks" '
    /Requests\/sec/ {rps=$2}
    / requests in / {n=$1}
    /Non-2xx or 3xx responses/ {non=$5}
    /Socket errors/ {for(i=3;i<=NF;i++){v=$i; gsub(/[^0-9]/,"",v); if(v!="") err+=v}}
    / 99%/ {p99=$2}
    /wrapped threads/ {wr=$3}
    END {printf "%s %d %d %d %s %.2f %d\n", rps, n, non+0, err+0, p99, (c1-c0)/tck*1e6/n, wr+0}
  ' <<<"$out"
}

rss0=$(rss)
read -r h_rps h_n h_non h_err h_p99 h_cpu _ < <(run "http://$addr/healthz")
rss_h=$(rss)
read -r a_rps a_n a_non a_err a_p99 a_cpu _ < <(run -s "$work/one.lua" "http://$addr/v1/activations")
rss_a=$(rss)
read -r d_rps d_n d_non d_err d_p99 d_cpu d_wrap < <(run -s "$work/activate.lua" "http://$addr/v1/activations" -- "$work/tokens.txt" 2)
rss1=$(rss)
total=$((h_n + a_n + d_n))
accepted=$(grep -c 'outcome.\{0,20\}accepted' "$work/server.log" || true)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$conns -d${duration}s per phase, sharing the machine with the server; $distinct distinct tokens minted"
printf '%-38s %9s req/s  p99 %-8s  server CPU %7s us/req  non-2xx %s  socket errors %s\n' \
  "GET /healthz" "$h_rps" "$h_p99" "$h_cpu" "$h_non" "$h_err" \
  "POST /v1/activations, one token" "$a_rps" "$a_p99" "$a_cpu" "$a_non" "$a_err" \
  "POST /v1/activations, distinct tokens" "$d_rps" "$d_p99" "$d_cpu" "$d_non" "$d_err"
echo "bare verify_strict in this run: $raw_us us  ($baseline)"
[ "$d_wrap" = 0 ] || echo "note: $d_wrap wrk thread(s) ran out of distinct tokens; raise DISTINCT_TOKENS"
python3 - "$h_rps" "$a_rps" "$d_rps" "$h_cpu" "$a_cpu" "$d_cpu" "$raw_us" <<'PY'
import sys
h, a, d, hc, ac, dc, raw = map(float, sys.argv[1:])
def verdict(ok): return "met" if ok else "MISSED"
r = a / h
print(f"activations (one token) / healthz req/s:        {r:.3f}  (target >= 0.85: {verdict(r >= 0.85)})")
print(f"activations (distinct) / healthz req/s:         {d / h:.3f}")
r = dc / (hc + raw)
print(f"distinct CPU/req / (healthz CPU/req + verify):  {r:.3f}  ({dc:.1f} / ({hc:.1f} + {raw:.1f}) us; target <= 1.15: {verdict(r <= 1.15)})")
print(f"activation CPU/req over healthz, cache hit:     +{ac - hc:.1f} us; miss: +{dc - hc:.1f} us")
PY
echo "requests served: $total ($accepted activations accepted in the audit log)"
echo "server RSS over the one-token phase: $((rss_h / 1024)) MiB before, $((rss_a / 1024)) MiB after ($rss_h -> $rss_a KiB)"
echo "server RSS: start $((rss0 / 1024)) MiB, end $((rss1 / 1024)) MiB ($rss1 KiB)  (target <= 32 MiB: $([ "$rss1" -le 32768 ] && echo met || echo MISSED))"
echo "p99 at $conns connections: healthz $h_p99, one token $a_p99, distinct $d_p99 (target <= 5 ms)"
fail=0
[ "$a_non" = 0 ] && [ "$d_non" = 0 ] && [ "$h_non" = 0 ] || { echo "FAIL: non-2xx responses (see $work/server.log)"; fail=1; }
[ "$a_err" = 0 ] && [ "$d_err" = 0 ] && [ "$h_err" = 0 ] || { echo "FAIL: socket errors"; fail=1; }
exit $fail
