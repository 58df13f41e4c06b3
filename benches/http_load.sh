#!/usr/bin/env bash
# HTTP load benchmark on 127.0.0.1 only, bounded in time: wrk against /healthz and against
# POST /v1/activations with one repeated token, in the same run, on a fresh keys directory.
# Prints req/s of each, their ratio, errors and non-2xx counts, and the server's RSS before
# and after. Needs wrk (Debian package `wrk`).
#
#   bash benches/http_load.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-30}
conns=${2:-64}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }

cargo build --release --quiet
bin=target/release/mdtoken
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" --keys-dir "$work/keys" keys init >/dev/null
"$bin" --keys-dir "$work/keys" serve --listen "$addr" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$addr/healthz" >/dev/null

token=$("$bin" --keys-dir "$work/keys" mint --expires-in 1d)
cat >"$work/activate.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"$token","user":"bench","device":"bench-01"}'
LUA

rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# One run of wrk; prints "req/s non2xx errors".
run() {
  local out
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "$@" 2>&1)
  echo "$out" >>"$work/wrk.log"
  local rps non2xx errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  errors=$(awk '/Socket errors/ {s=0; for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}' <<<"$out")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  echo "${rps:-0} ${non2xx:-0} ${errors:-0} ${p99:-?}"
}

rss0=$(rss)
read -r h_rps h_non2xx h_err h_p99 < <(run "http://$addr/healthz")
rss1=$(rss)
read -r a_rps a_non2xx a_err a_p99 < <(run -s "$work/activate.lua" "http://$addr/v1/activations")
rss2=$(rss)
read -r a2_rps a2_non2xx a2_err a2_p99 < <(run -s "$work/activate.lua" "http://$addr/v1/activations")
rss3=$(rss)

ratio=$(python3 -c "print(f'{$a_rps/$h_rps:.2f}')")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk -t2 -c$conns -d${duration}s"
printf '%-34s %10s req/s  p99 %-8s non-2xx %-6s socket errors %s\n' \
  "/healthz" "$h_rps" "$h_p99" "$h_non2xx" "$h_err" \
  "/v1/activations (one token)" "$a_rps" "$a_p99" "$a_non2xx" "$a_err" \
  "/v1/activations (again)" "$a2_rps" "$a2_p99" "$a2_non2xx" "$a2_err"
echo "activations / healthz ratio: $ratio"
echo "server RSS KiB: start $rss0, after healthz $rss1, after activations $rss2, after second run $rss3"
fail=0
[ "$a_non2xx" = 0 ] && [ "$a2_non2xx" = 0 ] || { echo "FAIL: non-2xx responses"; fail=1; }
[ "$a_err" = 0 ] && [ "$a2_err" = 0 ] && [ "$h_err" = 0 ] || { echo "FAIL: socket errors"; fail=1; }
exit $fail
