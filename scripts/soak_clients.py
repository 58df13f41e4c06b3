#!/usr/bin/env python3
"""The traffic, probes and verdict of scripts/soak.sh (standard library only).

Runs for DURATION seconds against a server on 127.0.0.1 that soak.sh started:

* the wrk classes (valid, expired, garbage, badtype, oversized), one wrk process each,
  with scripts/soak.lua counting answers by status;
* slow clients: slowloris (headers trickled, never finished), slow bodies (a
  Content-Length the body never reaches in time), clients that pipeline requests and
  never read the answers, and chunked bodies over 16 KiB;
* a steady trickle of admin mints, with the ledger and the deployment read now and then;
* a /healthz probe every second on a fresh connection with a short timeout;
* the server's RSS, open file descriptors and threads every 10 s.

Then prints the summary and exits 1 if any verdict failed.
"""

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
import time
from collections import defaultdict

HOST = "127.0.0.1"

counts = defaultdict(lambda: defaultdict(int))  # class -> status -> count
notes = defaultdict(list)  # class -> free-form observations
health = {"sent": 0, "ok": 0, "failed": 0, "max_ms": 0.0, "latencies": [], "failures": []}
samples = []  # (seconds since start, rss KiB, fds, threads)
stop = asyncio.Event()


def proc_sample(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


async def read_response(reader):
    """Reads one HTTP/1.1 response; returns (status, headers, body)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed before a status line")
    status = int(line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed in the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def request(port, method, path, headers=None, body=b"", timeout=10.0):
    """One request on a fresh connection; returns (status, body, seconds)."""
    start = time.monotonic()

    async def go():
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
            for k, v in (headers or {}).items():
                head += f"{k}: {v}\r\n"
            if body or method == "POST":
                head += f"Content-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            await writer.drain()
            status, _, data = await read_response(reader)
            return status, data
        finally:
            writer.close()

    status, data = await asyncio.wait_for(go(), timeout)
    return status, data, time.monotonic() - start


async def until_stopped(seconds):
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    return stop.is_set()


# --- probes --------------------------------------------------------------------------


async def probe_health(port, timeout):
    while not stop.is_set():
        tick = time.monotonic()
        health["sent"] += 1
        try:
            status, _, secs = await request(port, "GET", "/healthz", timeout=timeout)
            ms = secs * 1000
            health["latencies"].append(ms)
            health["max_ms"] = max(health["max_ms"], ms)
            if status == 200:
                health["ok"] += 1
            else:
                health["failed"] += 1
                health["failures"].append(f"status {status}")
        except (OSError, asyncio.TimeoutError, ConnectionError, ValueError) as e:
            health["failed"] += 1
            health["failures"].append(type(e).__name__)
        await until_stopped(max(0.0, 1.0 - (time.monotonic() - tick)))


async def sample_process(pid, t0):
    while True:
        try:
            rss, fds, threads = proc_sample(pid)
        except OSError:
            notes["server"].append("the server process is gone")
            stop.set()
            return
        samples.append((time.monotonic() - t0, rss, fds, threads))
        if await until_stopped(10):
            return


# --- admin trickle -------------------------------------------------------------------


async def admin_trickle(port, key, every):
    auth = {"Authorization": f"Bearer {key}"}
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"name": f"soak {n}", "expires_in_days": 1}).encode()
        try:
            status, _, _ = await request(
                port, "POST", "/v1/tokens", {**auth, "Content-Type": "application/json"}, body
            )
            counts["admin-mint"][status] += 1
            if n % 30 == 0:
                for path in ("/v1/tokens", "/v1/deployment", "/v1/keys"):
                    status, _, _ = await request(port, "GET", path, auth)
                    counts["admin-read"][status] += 1
        except (OSError, asyncio.TimeoutError, ConnectionError, ValueError) as e:
            counts["admin-mint"][type(e).__name__] += 1
        await until_stopped(every)


# --- slow clients --------------------------------------------------------------------


async def wait_closed(reader, limit):
    """Reads until the server closes; returns (seconds, answered status or None), or
    (None, None) if it is still open after `limit` seconds."""
    start = time.monotonic()
    data = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), limit - (time.monotonic() - start))
            if not chunk:
                break
            data += chunk
    except asyncio.TimeoutError:
        return None, None
    except (ConnectionError, OSError):
        pass
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return time.monotonic() - start, (int(m.group(1)) if m else None)


async def slowloris(port, server_timeout):
    """Request headers that never end: one more header line every 2 s."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as e:
            counts["slowloris"][type(e).__name__] += 1
            await until_stopped(1)
            continue
        start = time.monotonic()
        writer.write(b"POST /v1/activations HTTP/1.1\r\nHost: soak\r\n")
        closed = asyncio.ensure_future(wait_closed(reader, 3 * server_timeout + 10))
        i = 0
        try:
            while not closed.done() and not stop.is_set():
                i += 1
                writer.write(f"X-Slow-{i}: {'a' * 8}\r\n".encode())
                await writer.drain()
                await asyncio.wait([closed], timeout=2)
        except (ConnectionError, OSError):
            pass
        if closed.done() or not stop.is_set():
            secs, status = await closed
            if secs is None:
                counts["slowloris"]["still open"] += 1
            else:
                counts["slowloris"]["closed" if status is None else status] += 1
                notes["slowloris-seconds"].append(time.monotonic() - start)
        else:
            closed.cancel()
        writer.close()


async def slow_body(port, server_timeout):
    """Complete headers, then a body that trickles one byte every 2 s and never
    reaches its Content-Length in time."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as e:
            counts["slow-body"][type(e).__name__] += 1
            await until_stopped(1)
            continue
        start = time.monotonic()
        writer.write(
            b"POST /v1/activations HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4096\r\n\r\n{"
        )
        answered = asyncio.ensure_future(wait_closed(reader, 3 * server_timeout + 10))
        try:
            while not answered.done() and not stop.is_set():
                writer.write(b" ")
                await writer.drain()
                await asyncio.wait([answered], timeout=2)
        except (ConnectionError, OSError):
            pass
        if answered.done() or not stop.is_set():
            secs, status = await answered
            if secs is None:
                counts["slow-body"]["still open"] += 1
            else:
                counts["slow-body"]["closed" if status is None else status] += 1
                notes["slow-body-seconds"].append(time.monotonic() - start)
        else:
            answered.cancel()
        writer.close()


async def non_reader(port, server_timeout, doc_len):
    """Pipelines many requests and reads nothing; the server must give up on it."""
    requests = max(64, (48 << 20) // max(doc_len, 1))
    while not stop.is_set():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError as e:
            counts["non-reader"][type(e).__name__] += 1
            sock.close()
            await until_stopped(1)
            continue
        writer.write(f"GET /openapi.json HTTP/1.1\r\nHost: soak\r\n\r\n".encode() * requests)
        # Read nothing for twice the server's write-stall limit, then see what is left.
        if await until_stopped(2 * server_timeout + 5):
            writer.close()
            return
        got = 0
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 16), 30)
                if not chunk:
                    break
                got += len(chunk)
        except asyncio.TimeoutError:
            counts["non-reader"]["still open"] += 1
            writer.close()
            continue
        except (ConnectionError, OSError):
            pass
        counts["non-reader"]["dropped" if got < requests * doc_len else "served all"] += 1
        writer.close()


async def chunked_oversized(port, every):
    """A chunked body (no Content-Length) that passes 16 KiB: 413 once it does."""
    chunk = b'{"token":"' + b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as e:
            counts["oversized-chunked"][type(e).__name__] += 1
            await until_stopped(every)
            continue
        try:
            writer.write(
                b"POST /v1/activations HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + body
            )
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server may refuse the rest of the body; its answer is still read
        try:
            status, _, _ = await asyncio.wait_for(read_response(reader), 10)
            counts["oversized-chunked"][status] += 1
        except (OSError, asyncio.TimeoutError, ConnectionError, ValueError) as e:
            counts["oversized-chunked"][f"socket {type(e).__name__}"] += 1
        writer.close()
        await until_stopped(every)


# --- wrk -----------------------------------------------------------------------------


async def run_wrk(cls, conns, delay_ms, duration, port, lua, tokens, out):
    args = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", "-s", lua,
            f"http://{HOST}:{port}/v1/activations", "--", cls, str(delay_ms)]
    if tokens:
        args.append(tokens)
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    text, _ = await proc.communicate()
    text = text.decode(errors="replace")
    with open(out, "a") as f:
        f.write(f"=== wrk {cls}\n{text}\n")
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["status"] and len(parts) == 4:
            counts[parts[1]][int(parts[2])] += int(parts[3])
        elif parts[:1] == ["errors"]:
            for kv in parts[2:]:
                k, v = kv.split("=")
                if int(v):
                    counts[parts[1]][f"socket {k} error"] += int(v)
        elif parts[:1] == ["latency"]:
            notes[f"{parts[1]}-latency"].append(" ".join(parts[2:]))
    if proc.returncode != 0:
        notes[cls].append(f"wrk exited {proc.returncode}")


# --- verdict -------------------------------------------------------------------------

EXPECTED = {
    "valid": {200},
    "expired": {401},
    "garbage": {400, 401, 404, 405},
    "badtype": {415},
    "oversized": {413},
    "oversized-chunked": {413},
    "slow-body": {408},
    "slowloris": {"closed"},
    "non-reader": {"dropped"},
    "admin-mint": {201},
    "admin-read": {200},
}
# Socket errors a class may see: a server that refuses a body it will not read closes
# the connection, and the client can be told so while it is still writing.
TOLERATED = {
    "oversized": {"socket read error", "socket write error"},
    "oversized-chunked": {"socket ConnectionResetError", "socket BrokenPipeError"},
}


def server_metrics(port):
    async def fetch():
        status, body, _ = await request(port, "GET", "/metrics")
        return body.decode()
    text = asyncio.run(fetch())
    by_status = defaultdict(int)
    for m in re.finditer(r'^mdtoken_http_request_duration_seconds_count\{[^}]*status="(\d+)"\} (\d+)',
                         text, re.M):
        by_status[int(m.group(1))] += int(m.group(2))
    return by_status


def median(xs):
    return statistics.median(xs) if xs else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--admin-key", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--expired", required=True)
    ap.add_argument("--lua", required=True)
    ap.add_argument("--wrk-log", required=True)
    ap.add_argument("--server-timeout", type=float, default=10)
    ap.add_argument("--health-timeout", type=float, default=2)
    ap.add_argument("--growth-limit", type=float, default=0.10)
    a = ap.parse_args()

    fds_before = proc_sample(a.pid)[1]
    t0 = time.monotonic()

    async def run():
        _, doc, _ = await request(a.port, "GET", "/openapi.json")
        d = a.duration
        # (class, connections, pause in ms before each request)
        wrk = [
            run_wrk("valid", 4, 1, d, a.port, a.lua, a.valid, a.wrk_log),
            run_wrk("expired", 2, 2, d, a.port, a.lua, a.expired, a.wrk_log),
            run_wrk("garbage", 2, 2, d, a.port, a.lua, a.valid, a.wrk_log),
            run_wrk("badtype", 1, 5, d, a.port, a.lua, None, a.wrk_log),
            run_wrk("oversized", 1, 5, d, a.port, a.lua, None, a.wrk_log),
        ]
        clients = [
            probe_health(a.port, a.health_timeout),
            sample_process(a.pid, t0),
            admin_trickle(a.port, a.admin_key, 1.0),
            chunked_oversized(a.port, 0.5),
        ]
        clients += [slowloris(a.port, a.server_timeout) for _ in range(32)]
        clients += [slow_body(a.port, a.server_timeout) for _ in range(8)]
        clients += [non_reader(a.port, a.server_timeout, len(doc)) for _ in range(2)]
        tasks = [asyncio.ensure_future(c) for c in clients]
        wrk_done = asyncio.gather(*wrk)
        await until_stopped(d)
        stop.set()
        await wrk_done
        # Slow clients finish the connection they are on (bounded by their own limits).
        await asyncio.wait(tasks, timeout=3 * a.server_timeout + 15)
        for t in tasks:
            t.cancel()

    asyncio.run(run())
    elapsed = time.monotonic() - t0
    time.sleep(2)
    rss_end, fds_after, threads_end = proc_sample(a.pid)
    by_status = server_metrics(a.port)

    failures = []
    print(f"\n== soak: {a.duration} s of mixed traffic ({elapsed:.0f} s with the slow clients' last rounds)")
    print(f"{'class':<20} {'answers by status':<58} verdict")
    total = 0
    fivexx = 0
    for cls in ["valid", "expired", "garbage", "badtype", "oversized", "oversized-chunked",
                "slow-body", "slowloris", "non-reader", "admin-mint", "admin-read"]:
        c = counts.get(cls, {})
        n = sum(v for k, v in c.items() if not str(k).startswith("socket"))
        total += n
        fivexx += sum(v for k, v in c.items() if isinstance(k, int) and k >= 500)
        unexpected = {k: v for k, v in c.items()
                      if k not in EXPECTED[cls] and k not in TOLERATED.get(cls, set())}
        ok = n > 0 and not unexpected
        if not ok:
            failures.append(f"{cls}: " + (f"unexpected {unexpected}" if unexpected else "no answers"))
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0])))
        print(f"{cls:<20} {shown:<58} {'ok' if ok else 'FAIL'}")
    for cls in ["valid", "expired", "garbage", "badtype", "oversized"]:
        for lat in notes.get(f"{cls}-latency", []):
            print(f"  wrk {cls} latency (us): {lat}")
    for cls in ["slowloris", "slow-body"]:
        secs = notes.get(f"{cls}-seconds", [])
        if secs:
            print(f"  {cls}: closed after {min(secs):.1f} to {max(secs):.1f} s (median {median(secs):.1f} s)")
    for cls, msgs in notes.items():
        if not cls.endswith("-latency") and not cls.endswith("-seconds"):
            for m in msgs:
                print(f"  note {cls}: {m}")
                failures.append(f"{cls}: {m}")

    server_5xx = sum(v for k, v in by_status.items() if k >= 500)
    print(f"requests counted by the server: {sum(by_status.values())}; by status: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items())))
    print(f"5xx: {fivexx} seen by the clients, {server_5xx} counted by the server (must be 0)")
    if fivexx or server_5xx:
        failures.append("5xx answers")

    lat = sorted(health["latencies"])
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
    print(f"healthz probes: {health['sent']} sent, {health['failed']} failed, latency median "
          f"{median(lat):.1f} ms, p99 {p99:.1f} ms, max {health['max_ms']:.1f} ms "
          f"(timeout {a.health_timeout:.0f} s)")
    if health["failed"]:
        failures.append(f"{health['failed']} healthz probes failed: {health['failures'][:5]}")

    # RSS: flat once warm (the verified-token cache fills during the warm-up).
    warm = min(120, a.duration / 5)
    after = [s for s in samples if s[0] >= warm]
    rss = [s[1] for s in samples]
    if len(after) >= 2:
        base = median([s[1] for s in after[:3]])
        last = median([s[1] for s in after[-3:]])
        growth = last / base - 1
        flat = growth <= a.growth_limit
        span = after[-1][0] - after[0][0]
        slope = (after[-1][1] - after[0][1]) / max(span / 60, 1e-9)
        print(f"RSS (KiB): first {rss[0]}, last {rss[-1]}, max {max(rss)}; after the {warm:.0f} s "
              f"warm-up {base:.0f} -> {last:.0f} ({growth * 100:+.1f}%, {slope:+.0f} KiB/min "
              f"end to end over {span:.0f} s): {'flat' if flat else 'GROWING'} "
              f"(limit {a.growth_limit * 100:.0f}%)")
        if not flat:
            failures.append(f"RSS grew {growth * 100:.1f}% after the warm-up")
    else:
        print(f"RSS (KiB): {rss}; too few samples after the warm-up for a verdict")
        failures.append("too few RSS samples")
    print("RSS samples (s: KiB): " + ", ".join(f"{t:.0f}: {r}" for t, r, _, _ in samples))
    fds = [s[2] for s in samples]
    print(f"open fds: {fds_before} before, max {max(fds)} under load, {fds_after} after; "
          f"threads at the end {threads_end}; RSS at the end {rss_end} KiB")
    if fds_after > fds_before + 8:
        failures.append(f"file descriptors not released: {fds_before} before, {fds_after} after")

    if failures:
        print("soak: FAILED")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
