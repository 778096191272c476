"""What an analyst's tools see in driftbridge's file exports (used by the export tests).

Usage: analyst_reads.py PARQUET_DIR JSONL_DIR

Reads the parts each DIR/_manifest.json lists, with no hints or casts, and prints one JSON
object: the Arrow types pyarrow and polars report, and the conversations per day that
`SELECT date_trunc('day', created_at), count(*)` gives in DuckDB over the Parquet files and
over the JSONL files (DuckDB's JSON reader).
"""
import json
import os
import sys

import duckdb
import polars
import pyarrow.parquet as pq


def parts(root, table):
    manifest = json.load(open(os.path.join(root, "_manifest.json")))
    return [os.path.join(root, rel) for rel in manifest["parts"].get(table, [])]


def per_day(con, relation):
    rows = con.execute(
        "SELECT date_trunc('day', created_at) AS day, count(*) FROM "
        + relation
        + " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return [[d.strftime("%Y-%m-%d"), n] for d, n in rows]


def main(parquet_dir, jsonl_dir):
    out = {}
    conversations = parts(parquet_dir, "conversations")
    messages = parts(parquet_dir, "messages")
    out["parquet_files"] = {"conversations": len(conversations), "messages": len(messages)}
    schema = pq.read_schema(conversations[0])
    out["pyarrow"] = {
        "conversations.created_at": str(schema.field("created_at").type),
        "messages.author_bot": str(pq.read_schema(messages[0]).field("author_bot").type),
        "messages.context": str(pq.read_schema(messages[0]).field("context").type),
    }
    frame = polars.read_parquet(messages)
    out["polars"] = {
        "messages.created_at": str(frame.schema["created_at"]),
        "messages.author_bot": str(frame.schema["author_bot"]),
        "rows": frame.height,
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out["duckdb_parquet"] = per_day(con, "read_parquet(" + json.dumps(conversations) + ")")
    jsonl = parts(jsonl_dir, "conversations")
    out["duckdb_jsonl"] = per_day(con, "read_json_auto(" + json.dumps(jsonl) + ")")
    # A nested document is JSON to DuckDB, not an escaped string.
    out["duckdb_jsonl_context_ip"] = con.execute(
        "SELECT count(*) FROM read_json_auto("
        + json.dumps(parts(jsonl_dir, "messages"))
        + ") WHERE context.ip IS NOT NULL"
    ).fetchone()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
