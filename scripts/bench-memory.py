#!/usr/bin/env python3
"""Runs `bench export` with several driftbridge binaries, alternating, and prints each run's
rows/s, peak RSS (VmHWM, as the binary reports it), and the highest anonymous and
file-backed resident memory (RssAnon, RssFile of /proc/PID/status, sampled every 20 ms).

    scripts/bench-memory.py --runs 2 --conversations 5000 \\
        /tmp/base-target/release/driftbridge ./target/release/driftbridge

Each binary is read once before each run, so its pages start equally cached
(docs/BENCHMARKS.md).
"""

import argparse
import json
import re
import subprocess
import time


def sample(binary, destination, conversations):
    with open(binary, "rb") as f:
        while f.read(1 << 20):
            pass
    p = subprocess.Popen(
        [binary, "bench", "export", "--to", destination,
         "--conversations", str(conversations), "--json"],
        stdout=subprocess.PIPE,
    )
    anon = code = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                status = f.read()
            anon = max(anon, int(re.search(r"RssAnon:\s+(\d+)", status).group(1)))
            code = max(code, int(re.search(r"RssFile:\s+(\d+)", status).group(1)))
        except (OSError, AttributeError):
            pass  # not started yet, or gone
        time.sleep(0.02)
    if p.returncode != 0:
        raise SystemExit(f"{binary} bench export --to {destination} failed")
    report = json.loads(p.stdout.read())
    return report, anon / 1024, code / 1024


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("binaries", nargs="+")
    a.add_argument("--to", default="jsonl,csv,parquet,sqlite,postgres")
    a.add_argument("--runs", type=int, default=2)
    a.add_argument("--conversations", type=int, default=5000)
    args = a.parse_args()
    for _ in range(args.runs):
        for d in args.to.split(","):
            for b in args.binaries:
                r, anon, code = sample(b, d, args.conversations)
                print(f"{d:9} {b}: {r['rows']} rows, {r['rows_per_second']:,.0f} rows/s, "
                      f"peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB, anon {anon:.1f}, "
                      f"code {code:.1f}", flush=True)


if __name__ == "__main__":
    main()
