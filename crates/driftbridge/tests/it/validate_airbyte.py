"""Validates driftbridge's Airbyte output with Airbyte's own protocol models.

Reads protocol messages (one JSON object per line) on stdin, parses each with
airbyte_protocol.models.AirbyteMessage (the pydantic models Airbyte generates from its
protocol schema), checks that each message carries the field its type names, and prints a
JSON summary: message counts per type, record counts per stream, the last state per stream.
"""
import json
import sys

from airbyte_protocol.models import AirbyteMessage

FIELD = {
    "RECORD": "record",
    "STATE": "state",
    "LOG": "log",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog",
    "TRACE": "trace",
}

types, records, states = {}, {}, {}
for n, line in enumerate(sys.stdin, 1):
    raw = json.loads(line)
    msg = AirbyteMessage.parse_obj(raw)
    t = msg.type.value
    field = FIELD[t]
    if getattr(msg, field) is None:
        raise SystemExit(f"line {n}: a {t} message without {field}")
    types[t] = types.get(t, 0) + 1
    if t == "RECORD":
        records[msg.record.stream] = records.get(msg.record.stream, 0) + 1
    if t == "STATE":
        if msg.state.type is None or msg.state.type.value != "STREAM":
            raise SystemExit(f"line {n}: state is not per-stream")
        states[msg.state.stream.stream_descriptor.name] = raw["state"]
print(json.dumps({"types": types, "records": records, "states": states}))
