"""The Python benchmark's baseline: a raw line echo, no adapter (see bench/python.ts).

It reads stdin lines, parses each, and answers a task with its payload, one flushed write per line: the least a
Python agent can do for the protocol. It says `ready` first, so the same client drives it and the adapter.
"""

import json
import sys


def main():
    out = sys.stdout.buffer
    out.write(b'{"type":"ready","protocol":1}\n')
    out.flush()
    for line in sys.stdin.buffer:
        msg = json.loads(line)
        if msg.get("type") == "shutdown":
            break
        reply = {"id": msg["id"], "status": "ok", "result": msg.get("payload")}
        out.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        out.flush()


main()
