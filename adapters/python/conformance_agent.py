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
  protocol 1.1 (the adapter announces "stream" and "checkpoint", and 1.2's "publish"):
    stream        {"op": "stream", "n": N, "value": X}  yields {"i": 0} .. {"i": N-1} (with "ms": M, M ms
                                                        before each), then Final(X): chunks then X for a
                                                        task sent with "stream": true, the list of the N
                                                        pieces for one without
    checkpoint    {"op": "checkpoint", "data": D}       ctx.checkpoint(D, task=False): the agent's
                                                        checkpoint {"type": "checkpoint", "data": D};
                                                        returns "checkpointed"
    restored      {"op": "restored"}                    ctx.restored: the data of the last restore, or None
  protocol 1.2 (the adapter announces "publish"):
    publish       {"op": "publish", "topic": T,         ctx.publish(T, P): {"type": "publish", "topic": T,
                   "payload": P}                        "payload": P}; returns "published" (an empty T
                                                        raises ValueError: an error response)

It is written as any user's callback is, with nothing to help the adapter: `print` and the child's
stdout go where the adapter sends them. `async def`, so that a cancel reaches a sleep (the adapter
cancels an asyncio task; a `def` callback cannot be interrupted), with a second parameter `ctx`, so
that the adapter gives it the task's context. Standard library and the adapter only: while the
adapter runs, `import supervisor_adapter` is the running adapter (for Final).
"""

import asyncio

import supervisor_adapter


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


async def _pieces(payload):
    """The stream op: an async generator, which the adapter streams (or collects, for a v1 task)."""
    pause = float(payload.get("ms", 0)) / 1000
    for i in range(int(payload.get("n", 0))):
        if pause > 0:
            await asyncio.sleep(pause)  # a cancel raises CancelledError here: the stream stops
        yield {"i": i}
    yield supervisor_adapter.Final(payload.get("value"))  # an async generator's one way to a result


async def handle_request(payload, ctx):
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
    if op == "stream":
        return _pieces(payload)
    if op == "checkpoint":
        ctx.checkpoint(payload.get("data"), task=False)
        return "checkpointed"
    if op == "restored":
        return ctx.restored
    if op == "publish":
        ctx.publish(payload.get("topic"), payload.get("payload"))
        return "published"
    raise ValueError("unknown operation: %r" % (op,))
