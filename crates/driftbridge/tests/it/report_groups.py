"""Independent recomputation of `driftbridge report --by day` from a Parquet export.

Reads the parts that DIR/_manifest.json lists for conversation_facts and meetings with
pyarrow, and computes each day's numbers from the definitions in docs/ANALYTICS.md, written
afresh here: the Rust test compares them with the report the store gives.
"""
import json
import math
import os
import sys
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq


def rows(src, table):
    manifest = json.load(open(os.path.join(src, "_manifest.json")))
    out = []
    for rel in manifest["parts"].get(table, []):
        out.extend(pq.read_table(os.path.join(src, rel)).to_pylist())
    # Instants arrive as aware datetimes (TIMESTAMP(MILLIS, UTC)); the definitions count in
    # epoch milliseconds.
    for r in out:
        for k, v in r.items():
            if isinstance(v, datetime):
                r[k] = (v - EPOCH) // timedelta(milliseconds=1)
    return out


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def nearest_rank(values, p):
    if not values:
        return None
    values = sorted(values)
    rank = max(1, math.ceil(p * len(values) / 100))
    return values[rank - 1]


def main(src, since, until):
    facts = [f for f in rows(src, "conversation_facts")
             if f["created_at"] is not None and since <= f["created_at"] < until]
    booked = {m["conversation_id"] for m in rows(src, "meetings") if m["conversation_id"] is not None}
    # The facts' own outcome column agrees with the meetings exported beside them.
    for f in facts:
        if (f["meetings_booked"] > 0) != (f["conversation_id"] in booked):
            sys.exit(f"conversation {f['conversation_id']}: meetings_booked {f['meetings_booked']} "
                     f"but booked in meetings: {f['conversation_id'] in booked}")
    days = {}
    for f in facts:
        day = datetime.fromtimestamp(f["created_at"] / 1000, tz=timezone.utc).date().isoformat()
        days.setdefault(day, []).append(f)
    out = []
    for day in sorted(days):
        fs = days[day]
        n = len(fs)
        handed = sum(1 for f in fs if f["handed_to_agent"])
        reply = [f["time_to_first_agent_reply_ms"] for f in fs if f["time_to_first_agent_reply_ms"] is not None]
        close = [f["time_to_close_ms"] for f in fs if f["time_to_close_ms"] is not None]
        out.append({
            "key": day,
            "conversations": n,
            "handed_to_agent": handed,
            "handoff_rate": handed / n,
            "bot_only": sum(1 for f in fs if f["bot_only"]),
            "closed": sum(1 for f in fs if f["status"] == "closed"),
            "reply_p50_ms": nearest_rank(reply, 50),
            "reply_p90_ms": nearest_rank(reply, 90),
            "close_p50_ms": nearest_rank(close, 50),
            "goal_rate": sum(1 for f in fs if f["goal_met"]) / n,
            "meeting_rate": sum(1 for f in fs if f["conversation_id"] in booked) / n,
            "contact_messages": sum(f["contact_messages"] for f in fs),
            "agent_messages": sum(f["agent_messages"] for f in fs),
            "bot_messages": sum(f["bot_messages"] for f in fs),
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
