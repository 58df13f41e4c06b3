#!/usr/bin/env python3
"""Minting through the admin API as fast as one client can, 127.0.0.1 only.

Starts `target/release/mdtoken serve` on a fresh keys directory (build it first:
`cargo build --release`), takes the first admin key from its start-up message, then mints
for SECONDS (default 60) over one keep-alive connection and prints, every 10 s, the mint
rate, the ledger's size and the server's RSS: minting should not slow, nor memory grow,
as the ledger grows. Standard library only.

    python3 benches/mint_rate.py [SECONDS]
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    binary = os.path.join(root, "target", "release", "mdtoken")
    if not os.access(binary, os.X_OK):
        sys.exit("build first: cargo build --release")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tempfile.mkdtemp()
    keys = os.path.join(work, "keys")
    log = open(os.path.join(work, "server.log"), "w+")
    env = dict(os.environ, MDTOKEN_LOG="warn")
    server = subprocess.Popen(
        [binary, "--keys-dir", keys, "serve", "--listen", f"127.0.0.1:{port}"],
        stderr=log,
        env=env,
    )
    try:
        key = None
        for _ in range(200):
            log.seek(0)
            m = re.search(r"^\s+(mdt_admin_\S+)\s*$", log.read(), re.M)
            if m:
                key = m.group(1)
                break
            time.sleep(0.05)
        if not key:
            sys.exit("no admin key in the server's start-up message")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(100):
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                conn.close()
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        ledger = os.path.join(keys, "tokens.jsonl")
        start = time.monotonic()
        mark, total, window = start, 0, 0
        print(f"minting for {seconds} s through POST /v1/tokens (one client, keep-alive)")
        print(f"RSS at start: {rss_kib(server.pid)} KiB")
        while time.monotonic() - start < seconds:
            conn.request("POST", "/v1/tokens", json.dumps({"name": "rate"}), headers)
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                sys.exit(f"mint answered {r.status}")
            total += 1
            window += 1
            now = time.monotonic()
            if now - mark >= 10:
                print(
                    f"{now - start:5.0f} s  {window / (now - mark):7.1f} mints/s  "
                    f"ledger {total} lines, {os.path.getsize(ledger) // 1024} KiB  "
                    f"RSS {rss_kib(server.pid)} KiB"
                )
                mark, window = now, 0
        print(f"{total} mints in {seconds} s ({total / seconds:.1f}/s); RSS at end {rss_kib(server.pid)} KiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
