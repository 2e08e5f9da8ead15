"""The conformance contract (docs/CONFORMANCE.md) as a callback for the Python adapter.

Run it through the adapter, as the conformance kit does:

    python3 adapters/python/supervisor_adapter.py adapters/python/conformance_agent.py
    npx agent-supervisor conformance -- python3 adapters/python/supervisor_adapter.py \\
        adapters/python/conformance_agent.py

A task's payload is {"op": ...}:
    echo          {"op": "echo", "value": X}            returns X
    sleep         {"op": "sleep", "ms": N, "value": X}  sleeps N ms unless cancelled, returns X
    fail          {"op": "fail", "message": S}          raises ConformanceFailure(S)
    print         {"op": "print", "text": S}            print(S) to stdout, returns "printed"
    spawn         {"op": "spawn", "text": S}            runs sh -c 'echo "$1"' sh S with stdout inherited,
                                                        waits, returns "spawned"
    wasCancelled  {"op": "wasCancelled"}                whether the latest sleep was cut short by a cancel

It is written as any user's callback is, with nothing to help the adapter: `print` and the child's
stdout go where the adapter sends them. `async def`, so that a cancel reaches a sleep (the adapter
cancels an asyncio task; a `def` callback cannot be interrupted). Standard library only.
"""

import asyncio


class ConformanceFailure(Exception):
    """What `fail` raises: its name is the error response's `type`."""


_sleeps = 0  # sleeps started so far: the latest one is the one `wasCancelled` is about
_latest_cut_short = False


async def _sleep(payload):
    global _sleeps, _latest_cut_short
    _sleeps += 1
    mine = _sleeps
    _latest_cut_short = False
    try:
        await asyncio.sleep(float(payload.get("ms", 0)) / 1000)
    except asyncio.CancelledError:
        if mine == _sleeps:
            _latest_cut_short = True
        raise
    return payload.get("value")


async def _spawn(text):
    child = await asyncio.create_subprocess_exec("sh", "-c", 'echo "$1"', "sh", text)
    await child.wait()
    return "spawned"


async def handle_request(payload):
    op = payload.get("op") if isinstance(payload, dict) else None
    if op == "echo":
        return payload.get("value")
    if op == "sleep":
        return await _sleep(payload)
    if op == "fail":
        raise ConformanceFailure(str(payload.get("message")))
    if op == "print":
        print(payload.get("text"), flush=True)
        return "printed"
    if op == "spawn":
        return await _spawn(str(payload.get("text")))
    if op == "wasCancelled":
        return _latest_cut_short
    raise ValueError("unknown operation: %r" % (op,))
