"""Independent reader for driftbridge's file exports (used by the export tests).

Reads every part that DIR/_manifest.json lists with a standard reader -- pyarrow for
Parquet, Python's csv module for CSV -- and writes OUT/TABLE.jsonl, one JSON object per row,
so the Rust test can compare what a third-party reader sees with the simulator's ground truth.
"""
import csv
import json
import os
import sys


def main(fmt, src, out):
    manifest = json.load(open(os.path.join(src, "_manifest.json")))
    os.makedirs(out, exist_ok=True)
    for table, parts in manifest["parts"].items():
        with open(os.path.join(out, table + ".jsonl"), "w") as w:
            for rel in parts:
                path = os.path.join(src, rel)
                if fmt == "parquet":
                    import pyarrow.parquet as pq

                    rows = pq.read_table(path).to_pylist()
                elif fmt == "csv":
                    with open(path, newline="") as f:
                        rows = list(csv.DictReader(f))
                else:
                    raise SystemExit("unknown format " + fmt)
                for r in rows:
                    w.write(json.dumps(r, default=instant) + "\n")


def instant(v):
    """A Parquet TIMESTAMP(MILLIS, UTC) as pyarrow gives it: an aware datetime."""
    if v.tzinfo is None:
        raise TypeError("a timestamp without a time zone: " + repr(v))
    return v.isoformat()


if __name__ == "__main__":
    main(*sys.argv[1:4])
