#!/usr/bin/env python3
"""Idle and slow connections against `driftbridge serve` under a low open-file limit.

Starts the release binary with `ulimit -n` set to --nofile (soft and hard), records its RSS,
then in one run:
  baseline  /healthz and webhook latency with no other client;
  flood     the same while --idle clients that connect and send nothing and --slow clients
            that send half a request line are held open;
  after     RSS once the flood is gone (and the server has closed their connections).

Only the standard library. Usage (docs/BENCHMARKS.md):
    cargo build --release -p driftbridge
    python3 scripts/bench-connections.py --idle 2000 --slow 200 --nofile 1024
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

VERIFY = "bench-verification-token"


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def request(port, raw, timeout=30.0):
    """Sends one request on a new connection; answers (status, seconds) or (None, seconds)."""
    started = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        w.write(raw)
        await w.drain()
        line = await asyncio.wait_for(r.readline(), timeout)
        w.close()
        status = int(line.split()[1]) if line else None
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        status = None
    return status, time.perf_counter() - started


def healthz():
    return b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


SEQ = [0]


def webhook():
    SEQ[0] += 1
    n = SEQ[0]
    body = json.dumps({"type": "new_message", "orgId": 5000883, "token": VERIFY, "data": {
        "id": n, "conversationId": 42, "createdAt": 1_700_000_000_000 + n, "body": "hi",
        "author": {"type": "contact", "id": 77, "bot": False}, "type": "chat"}}).encode()
    head = (f"POST /webhooks/drift HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


async def probe(port, n):
    """n health checks and n webhooks, one after another; answers the stats."""
    out = {}
    for name, make in (("healthz", healthz), ("webhook", webhook)):
        times, failed = [], 0
        for _ in range(n):
            status, secs = await request(port, make())
            if status == 200:
                times.append(secs * 1000)
            else:
                failed += 1
        times.sort()
        pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 2) if times else None
        out[name] = {"ok": len(times), "failed": failed, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                     "max_ms": round(times[-1], 2) if times else None}
    return out


async def flood(port, idle, slow):
    held = []
    refused = 0
    for i in range(idle + slow):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            if i >= idle:
                w.write(b"POST /webhooks/drift HT")
                await w.drain()
            held.append((r, w))
        except (OSError, asyncio.TimeoutError):
            refused += 1
    return held, refused


async def still_open(held):
    """How many of the held connections the server has not closed (a closed one reads EOF)."""
    n = 0
    for r, _ in held:
        try:
            got = await asyncio.wait_for(r.read(1), 0.002)
            if got:
                n += 1  # it answered something and stayed open
        except asyncio.TimeoutError:
            n += 1
        except OSError:
            pass
    return n


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/driftbridge")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--probes", type=int, default=100)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.idle + a.slow + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="driftbridge-conns-")
    env = dict(os.environ)
    env.update({
        "DRIFTBRIDGE_DATABASE__URL": f"sqlite:{tmp}/bench.db",
        "DRIFTBRIDGE_SERVER__LISTEN": f"127.0.0.1:{port}",
        "DRIFTBRIDGE_DRIFT__VERIFICATION_TOKENS": json.dumps([VERIFY]),
        "DRIFTBRIDGE_MASTER_KEY": os.urandom(32).hex(),
        "RUST_LOG": "warn",
    })
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, a.nofile))
    log = open(f"{tmp}/serve.log", "w")
    server = subprocess.Popen([a.binary, "serve", "--no-workers"], env=env, preexec_fn=limit,
                              stdout=log, stderr=log)
    try:
        for _ in range(200):
            status, _ = await request(port, healthz(), timeout=1)
            if status == 200:
                break
            await asyncio.sleep(0.05)
        else:
            sys.exit(f"serve did not start; see {tmp}/serve.log")
        result = {"nofile": a.nofile, "idle": a.idle, "slow": a.slow,
                  "rss_start_mb": round(rss_mb(server.pid), 1)}
        result["baseline"] = await probe(port, a.probes)
        held, refused = await flood(port, a.idle, a.slow)
        await asyncio.sleep(1)
        result["flood_connected"] = len(held)
        result["flood_refused"] = refused
        result["rss_flood_mb"] = round(rss_mb(server.pid), 1)
        result["flood"] = await probe(port, a.probes)
        result["flood_still_open"] = await still_open(held)
        for _, w in held:
            w.close()
        await asyncio.sleep(15)
        result["rss_after_mb"] = round(rss_mb(server.pid), 1)
        result["after"] = await probe(port, a.probes)
        errors = sum(1 for line in open(f"{tmp}/serve.log") if "Too many open files" in line)
        result["too_many_open_files_lines"] = errors
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
