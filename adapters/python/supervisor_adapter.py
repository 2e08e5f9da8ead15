#!/usr/bin/env python3
"""Run a plain Python function as a supervised agent (wire protocol v1 with the 1.1 features
"stream" and "checkpoint" and the 1.2 feature "publish"; docs/PROTOCOL.md).

Usage:
    python3 supervisor_adapter.py TARGET [--check]

TARGET names the callback:
    package.module:function   imported with importlib; the current working directory is put
                              first on sys.path.
    path/to/file.py:function  loaded from that file; its directory is put first on sys.path so
                              sibling imports work.
    Without ":function" the callback is ``handle_request``. ``function`` may be dotted
    (``module:Class.method``).

The callback takes the task payload as its first positional argument and returns a
JSON-serialisable result. It may be ``def`` (run in a thread pool, so it may block) or
``async def`` (run as an asyncio task). Many tasks run at once; responses go out in completion
order.

Protocol: newline-delimited JSON, UTF-8, one object per line.
    stdin  {"id": "...", "type": "task", "payload": ...[, "stream": true][, "key": "..."]}
           {"id": "...", "type": "ping"}
           {"id": "...", "type": "cancel"}     the task timed out upstream: no response is sent
           {"type": "restore", "data": ...[, "requests": {"<old id>": ...}]}
           {"type": "shutdown"}                drain in-flight tasks, then exit 0
           any other type is ignored (logged once per type on stderr): forward compatibility
    stdout {"type": "ready", "protocol": 1, "features": ["stream", "checkpoint", "publish"]}
                                               once, first, when the callback is loaded
           {"id": "...", "type": "chunk", "data": ...}    streamed tasks only, before the response
           {"type": "checkpoint"[, "id": "..."], "data": ...}
           {"type": "publish", "topic": "...", "payload": ...}   a task for a topic; no reply
           {"id": "...", "status": "ok", "result": ...}
           {"id": "...", "status": "error", "error": {"message": ..., "type": ..., "stack": ...}}
           a ping's result is {"health": {uptime_seconds, total_requests, memory_mb, cpu_percent}}

Protocol 1.1, the Python side. A callback module may ``import supervisor_adapter``: while the
adapter runs, that name is the running adapter itself (registered before the callback's module
is loaded), so the functions below act on the live agent.

    Streaming. A callback that returns a generator streams: ``def`` with ``yield`` (a sync
    generator, iterated in the callback's pool thread), ``async def`` with ``yield`` (an async
    generator, iterated on the event loop), or a function that returns either object.
        async def handle_request(payload):
            async for token in model(payload["prompt"]):
                yield token                        # one {"id","type":"chunk","data":token}
            yield supervisor_adapter.Final({"tokens": n})   # the result; ends the stream

        def handle_request(payload):
            for page in pages(payload):
                yield page
            return {"pages": n}                    # the result (StopIteration.value)
    For a task sent with "stream": true each yielded value is a chunk, sent as it is yielded, in
    order; then the response: the generator's return value (sync), or the value of a yielded
    ``Final(value)`` (sync or async: yielding it closes the generator, so code after it only
    runs as its ``finally``), else null (an async generator cannot return a value). An
    exception after chunks is an error response after them; a yielded value that is not
    JSON-serialisable ends the stream with a SerializationError response.
    For a task sent without "stream" (a v1 caller), nothing is sent before the response, whose
    result is the list of the yielded values; the return value (or Final) is then not used.
    Chunks share stdout with every other line: a generator is not asked for its next value while
    its chunks are blocked behind a full stdout (64 KiB queued), so a fast one cannot outrun the
    supervisor in memory.
    ``cancel`` stops the stream: an async generator is cancelled at the await it is in
    (CancelledError inside it, so its ``finally`` runs), a sync generator is closed
    (GeneratorExit at its ``yield``) when it next yields; the value yielded then is dropped, and
    nothing more is sent for the task. A sync generator that blocks between yields stops only at
    its next yield: wait on ``ctx.cancel_event`` instead of sleeping. On stdin EOF without
    shutdown streams are cancelled as other tasks are: the exit (within 1 s) does not wait for a
    sync generator's next yield.

    A context. A callback whose second positional parameter has no default, or is named ``ctx``
    or ``context``, is called ``fn(payload, ctx)``; one with a keyword-only parameter ``ctx``
    (or ``context``) is called ``fn(payload, ctx=ctx)``. Any other callback is called
    ``fn(payload)``, as before (so ``def f(payload, retries=3)`` is not given a context). The
    signature is read once, at start (inspect.signature, following functools.wraps; a plain
    function from its code object). ``ctx`` (a ``Context``, one per task) has:
        ctx.id                 the task's id
        ctx.stream             True when the caller takes chunks ("stream": true)
        ctx.key                the caller's idempotency key (the task's "key"), or None
        ctx.cancelled          True once the task was cancelled (cancel, or stdin EOF)
        ctx.cancel_event       a threading.Event set then: ``ctx.cancel_event.wait(5)`` is a
                               sleep that a cancel cuts short, in a sync callback (an async one
                               is cancelled at its await, as without a context)
        ctx.checkpoint(data)   send {"type":"checkpoint","id":<task id>,"data":data}: the
                               request's checkpoint (the supervisor keeps the latest while the
                               task is in flight). Not sent (returns False) once the task is
                               answered or cancelled. ``ctx.checkpoint(data, task=False)`` sends
                               the agent's checkpoint, as ``supervisor_adapter.checkpoint`` does.
        ctx.restored           the data of the last ``restore`` received, or None
        ctx.restored_requests  its "requests" ({old id: data} of the requests in flight when
                               the previous incarnation died), or {}
        ctx.publish(topic, payload)   protocol 1.2: hand a task to a topic of the supervision
                               tree, {"type":"publish","topic":topic,"payload":payload}, as
                               supervisor_adapter.publish does (the agent's, not the task's:
                               sent whether or not the task is still in flight).
    Module level, for code outside a task (a background thread, start-up code):
        supervisor_adapter.checkpoint(data)   send the agent's checkpoint {"type":"checkpoint",
                               "data":data}. Thread-safe; True when written (or queued: called
                               while the module loads, before `ready`, the latest such call is
                               sent right after `ready`), False once stdout is gone.
        supervisor_adapter.restored()           as ctx.restored
        supervisor_adapter.restored_requests()  as ctx.restored_requests
        supervisor_adapter.publish(topic, payload)   send {"type":"publish","topic":topic,
                               "payload":payload}: the supervisor hands the task to the topic's
                               subscribers and answers nothing. Thread-safe, from any thread,
                               at any time; True when written (or queued: called before `ready`,
                               while the module loads, each call is sent right after `ready`,
                               in order), False once stdout is gone. Written as chunks are: it
                               waits while 64 KiB are queued behind another thread's write.
    Checkpoint data that is not JSON-serialisable raises TypeError or ValueError in the caller.
    publish raises ValueError for a topic that is not a non-empty str, TypeError for a payload
    that is not JSON-serialisable (NaN, a circular reference, an object json cannot encode);
    nothing is sent then, and the agent goes on.
    (Imported outside the adapter, in the callback's own tests, the module is a plain copy:
    Final works, restored() is None, checkpoint() and publish() only queue.)
    ``restore`` comes right after `ready`, before any task: a task's callback always sees the
    restore sent before the task (messages are handled in the order they are read). Code that
    runs while the module loads runs before `ready`, so it cannot see it yet: read restored()
    in the first task, or later.

stdout carries protocol only: user print()s, and anything child processes write to fd 1, go to
stderr. Bad input lines are reported on stderr and ignored.

stdin EOF after `shutdown` drains as `shutdown` does. stdin EOF without `shutdown` means the
supervisor is gone (killed, say) and nobody can receive a result: in-flight tasks are cancelled
(async ones get CancelledError and have 0.5 s to unwind; sync ones cannot be interrupted and are
abandoned in their threads) and the process exits within 1 s whatever its callbacks do, even
when one blocks the event loop. Responses sent before the EOF stay sent.

How it runs (each choice measured with bench/python.ts against a raw Python line echo):
    `ready` is written as soon as the callback is loaded: nothing is imported or started before
    it (json, threading, asyncio come after), so spawn to `ready` is the interpreter's start, this
    script's compilation and the user's module.
    stdin is read in raw chunks of up to 64 KiB and split into lines here (a line may be of any
    length); the complete lines of a chunk are decoded from UTF-8 at once.
    `def` callback: no event loop. The thread that reads stdin answers pings and cancels itself
    and runs the tasks it reads, one after another, as a bare line echo would: handing a task to
    another thread costs a thread wake-up, more than all the rest of a short request. A watcher
    thread, awake only while callbacks are being run, checks every 2 ms: when a callback has run
    longer than that, it hands the reading to another thread of the pool, with the tasks read
    but not started (other threads run them). So pings are answered, and blocking callbacks run
    side by side (up to 32), within a few ms of their arrival. A cancel cannot stop a thread:
    when all 32 are held by callbacks whose tasks were cancelled, no task can run, and pings are
    answered with an error (type AdapterStuck) until one returns, so that the supervisor's
    heartbeat restarts the agent. While the reader works through the
    tasks of one chunk, their responses share writes: one is held back ~0.5 ms at most (a few ms
    behind a callback that blocks).
    `async def` callback: the main thread runs an asyncio event loop, to which a reader thread
    hands each chunk's messages in one call; tasks are asyncio tasks and pings are answered on
    the loop, so a loop a callback blocks shows as unanswered pings.
    A `def` callback that returns a coroutine (or an async generator) has it awaited (iterated)
    on an event loop of its own thread.
    A generator is iterated where its callback ran: a sync one in the callback's thread, one
    next() after another, each chunk written as it comes (so a stream holds a pool thread, and
    the watcher hands the reading on as for any callback that runs long); an async one by the
    task that ran the callback. A chunk goes out as a response does (one line, in the order
    handed over), so the chunks of a task are in order and interleave whole with other lines.
    Responses are written unbuffered (os.write); lines finished while another thread writes go
    out with its next write.
    Exit follows as soon as the work in flight has drained: no polling, no fixed sleeps, no thread
    joins (the threads are daemons). When a cancelled callback still runs at that point, atexit
    handlers run, stderr is flushed and the process leaves with os._exit: interpreter shutdown
    would wait for, or trip over, a thread that cannot be stopped.

--check loads the callback, prints one line and exits:
    {"type":"check","ok":true,"async":<bool>}                                        exit 0
    {"type":"check","ok":false,"error":"callback_not_found","function":..,"functions":[..],
     "message":..}                                                                   exit 3
    {"type":"check","ok":false,"error":"load_failed","message":..,"traceback":..,
     "exception":<type name>[, "missing_module":<name> for ModuleNotFoundError]}     exit 2

Exit codes: 0 after shutdown, or after stdin EOF with nothing in flight; 2 the module could not
be loaded (or bad command line); 3 the callback was not found; 4 stdin EOF without shutdown
while tasks were in flight (they were cancelled: work was lost). Python standard library only,
python3 >= 3.8.
"""

import _thread  # built in, and imported by the interpreter's start already: costs nothing
import os
import sys
import time

PROTOCOL_VERSION = 1
DEFAULT_FUNCTION = "handle_request"
MAX_WORKERS = 32
EXIT_OK = 0
EXIT_LOAD_FAILED = 2
EXIT_NOT_FOUND = 3
EXIT_ABANDONED = 4
# After stdin EOF without shutdown: how long cancelled async callbacks may unwind, and when the
# process exits regardless of what its threads or its event loop are doing.
ABANDON_GRACE_SECONDS = 0.5
ABANDON_DEADLINE_SECONDS = 0.9
# One read takes what the pipe holds, up to this much (a pipe buffer is 64 KiB by default).
READ_SIZE = 1 << 16
# A streaming generator is not asked for its next value while this much is queued for stdout
# behind another thread's write.
STREAM_QUEUE_BYTES = 1 << 16

_STARTED = time.monotonic()
_LOG_PREFIX = "[supervisor_adapter]"
FEATURES = ("stream", "checkpoint", "publish")
_READY = ('{"type":"ready","protocol":%d,"features":[%s]}' % (
    PROTOCOL_VERSION, ",".join('"%s"' % feature for feature in FEATURES))).encode("ascii")
# inspect's code flags, without importing inspect
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


def _log(message):
    try:
        sys.stderr.write("%s %s\n" % (_LOG_PREFIX, message))
        sys.stderr.flush()
    except Exception:
        pass  # stderr gone too: nothing sensible left to do with a log line


def _abbreviate(data, limit=200):
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    return text if len(text) <= limit else text[:limit] + "... (%d chars)" % len(text)


# --------------------------------------------------------------------------------------------
# Private stdio: the protocol must not be corrupted by anything the callback (or a process it
# spawns) writes to fd 1, nor starved by something reading fd 0.
# --------------------------------------------------------------------------------------------


class _Output(object):
    """Whole lines to the protocol fd, from any thread, in the order they were handed over.

    The thread that finds nobody writing writes; a line handed over meanwhile is queued and sent
    by that thread right after its current write, batched into one: no thread waits for another's
    system call, and a burst of responses costs one write. A line may also be deferred, to go out
    with the next write. Unbuffered os.write: no buffered-IO lock left held at exit.
    A stream's chunks are written with `bounded`: past STREAM_QUEUE_BYTES queued behind another
    thread's write (stdout full, say), the generator waits for the queue to be written before it
    is asked for more, so a fast one cannot outrun the supervisor in memory.
    """

    def __init__(self, fd):
        import _thread

        self._fd = fd
        self._lock = _thread.allocate_lock()
        self._pending = []
        self._pending_bytes = 0
        self._writing = False
        self._waiters = []  # threads in wait_written(), or a bounded write_line
        self.broken = False

    def write_line(self, line, bounded=False):
        """Send (or queue) one line, without its newline; False once stdout is gone."""
        with self._lock:
            if self.broken:
                return False
            self._pending.append(line)
            if self._writing:
                self._pending_bytes += len(line)
                if not bounded or self._pending_bytes < STREAM_QUEUE_BYTES:
                    return True
                import _thread

                waiter = _thread.allocate_lock()
                waiter.acquire()
                self._waiters.append(waiter)
            else:
                self._writing = True
                waiter = None
        if waiter is not None:
            waiter.acquire()  # released once the queue is written (or stdout is gone)
            return not self.broken
        return self._write_pending()

    def _write_pending(self):
        fd = self._fd
        lock = self._lock
        while True:
            with lock:
                batch = self._pending
                if not batch or self.broken:
                    del batch[:]
                    self._writing = False
                    waiters, self._waiters = self._waiters, []
                    break
                self._pending = []
                self._pending_bytes = 0
            data = batch[0] + b"\n" if len(batch) == 1 else b"\n".join(batch) + b"\n"
            try:
                written = os.write(fd, data)
                if written < len(data):  # a signal interrupted a long write: finish it
                    view = memoryview(data)
                    while written < len(data):
                        written += os.write(fd, view[written:])
            except OSError as e:  # BrokenPipeError: the supervisor is gone
                with lock:
                    self.broken = True
                _log("stdout closed (%s); responses are dropped from now on" % e)
        for waiter in waiters:
            waiter.release()
        return not self.broken

    def defer(self, line):
        """Queue a line to go out with the next write (write_line's or flush's)."""
        with self._lock:
            if not self.broken:
                self._pending.append(line)

    def flush(self):
        """Write the lines deferred, unless another thread is writing (it takes them); False once
        stdout is gone."""
        with self._lock:
            if self._writing or not self._pending:
                return not self.broken
            self._writing = True
        return self._write_pending()

    def wait_written(self):
        """Return once every line handed over so far is written (or stdout is gone)."""
        import _thread

        self.flush()
        with self._lock:
            if not self._writing:
                return
            waiter = _thread.allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
        waiter.acquire()


def _take_over_stdio():
    """Keep private handles on fds 0/1; point fd 1 at stderr and fd 0 at /dev/null."""
    out_fd = os.dup(1)  # os.dup fds are non-inheritable: children never hold the pipes open
    in_fd = os.dup(0)
    try:
        os.dup2(2, 1)
    except OSError:
        pass  # no usable stderr: leave fd 1 alone rather than fail start-up
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:
        pass
    sys.stdout = sys.stderr
    return _Output(out_fd), in_fd


# --------------------------------------------------------------------------------------------
# Encoding. json is imported after `ready`. Per message, what json.loads and json.dumps do in
# Python around their C scanner and encoder is a good part of the cost: lines are decoded with
# the scanner's raw_decode (json.loads only on a line it refuses, for the error), and results are
# encoded by the C encoder directly, as JSONEncoder.iterencode would with these options.
# --------------------------------------------------------------------------------------------

_loads = None
_raw_decode = None
_encoders = None  # (C encoder factory, JSONEncoder.default, str encoder, ASCII str encoder)
_encode = None
_encode_ascii = None


def _load_json():
    global _loads, _raw_decode, _encoders, _encode, _encode_ascii
    if _loads is None:
        import json
        import json.encoder

        _loads = json.loads
        _raw_decode = json.JSONDecoder().raw_decode
        # allow_nan=False: NaN/Infinity would be emitted as invalid JSON the supervisor cannot parse.
        _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
        _encode_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
        make = json.encoder.c_make_encoder
        if make is not None and json.encoder.c_encode_basestring is not None:
            _encoders = (make, json.JSONEncoder().default, json.encoder.c_encode_basestring,
                         json.encoder.c_encode_basestring_ascii)


def _to_json(obj, ascii_only=False):
    if _encoders is None:  # an interpreter without json's C accelerator
        return (_encode_ascii if ascii_only else _encode)(obj)
    make, default, encode_str, encode_ascii = _encoders
    # A new markers dict per call: it is how the encoder finds circular references.
    encoder = make({}, default, encode_ascii if ascii_only else encode_str, None, ":", ",", False, False, False)
    return "".join(encoder(obj, 0))


def _dumps(obj):
    """One protocol line, without its newline."""
    try:
        return _to_json(obj).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from surrogateescape) cannot be UTF-8: escape them as \udXXX.
        return _to_json(obj, True).encode("ascii")


def _safe_str(value):
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return "<unprintable %s>" % type(value).__name__


def _format_exception(exc):
    """Traceback text without the adapter's (and importlib's) own leading frames."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == _THIS_FILE
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        return "%s: %s\n" % (type(exc).__name__, _safe_str(exc))


def _error_line(req_id, message, type_name, stack):
    return _dumps({"id": req_id, "status": "error", "error": {"message": message, "type": type_name, "stack": stack}})


def _exception_line(req_id, exc):
    return _error_line(req_id, _safe_str(exc), type(exc).__name__, _format_exception(exc))


_UNSERIALISABLE = (TypeError, ValueError, OverflowError, RecursionError)


def _serialisation_error_line(req_id, what, value, exc):
    message = "%s is not JSON-serialisable (%s: %s)" % (what, type(value).__name__, _safe_str(exc))
    return _error_line(req_id, message, "SerializationError", "SerializationError: %s\n" % message)


def _ok_line(req_id, result):
    try:
        return _dumps({"id": req_id, "status": "ok", "result": result})
    except _UNSERIALISABLE as e:
        return _serialisation_error_line(req_id, "callback result", result, e)


def _checkpoint_line(data, req_id=None):
    """A checkpoint line; raises TypeError/ValueError (to the callback) when data cannot be sent."""
    _load_json()
    message = {"type": "checkpoint", "data": data} if req_id is None else {"type": "checkpoint", "id": req_id, "data": data}
    try:
        return _dumps(message)
    except _UNSERIALISABLE as e:
        error = TypeError if isinstance(e, TypeError) else ValueError
        raise error("checkpoint data is not JSON-serialisable (%s: %s)" % (type(data).__name__, _safe_str(e)))


def _publish_line(topic, payload):
    """A publish line; raises ValueError (bad topic) or TypeError (payload) to the caller."""
    if not isinstance(topic, str) or not topic:
        raise ValueError("publish topic must be a non-empty str, not %s" % _abbreviate(repr(topic), 60))
    _load_json()
    try:
        return _dumps({"type": "publish", "topic": topic, "payload": payload})
    except _UNSERIALISABLE as e:
        raise TypeError("publish payload is not JSON-serialisable (%s: %s)" % (type(payload).__name__, _safe_str(e)))


def _refusal_line(req_id):
    message = "agent is shutting down; task not accepted"
    return _error_line(req_id, message, "AdapterShuttingDown", "AdapterShuttingDown: %s\n" % message)


_STUCK_MESSAGE = (
    "all %d worker threads are held by def callbacks whose tasks were cancelled (timed out upstream) and that "
    "have not returned: a thread cannot be interrupted, so no task can run until one returns; answering pings "
    "with this error so that the supervisor's heartbeat restarts the agent"
)


_FREED_MESSAGE = "a cancelled callback returned: a worker thread is free again, and pings are answered"


def _stuck_line(req_id):
    message = _STUCK_MESSAGE % MAX_WORKERS
    return _error_line(req_id, message, "AdapterStuck", "AdapterStuck: %s\n" % message)


# --------------------------------------------------------------------------------------------
# Protocol 1.1 and 1.2 for callbacks: Final, Context, checkpoint(), restored(), publish(). A
# callback module that does `import supervisor_adapter` gets this very module (main() registers it
# under that name).
# --------------------------------------------------------------------------------------------

_state_lock = _thread.allocate_lock()  # guards the hand-over to serving, and lazy cancel events
_serving_output = None  # the protocol's _Output, once `ready` is written
_early_checkpoint = None  # the line of an agent checkpoint made before `ready`
_early_publishes = []  # the lines of publishes made before `ready`, in order
_restore = (None, {})  # (data, requests) of the last `restore`; replaced whole, never mutated


class Final(object):
    """Yield ``Final(value)`` from a streaming callback to end the stream with ``value`` as its
    result: the generator is closed (its ``finally`` runs), and nothing it would yield after is
    asked for. The one way for an async generator to have a result."""

    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value

    def __repr__(self):
        return "Final(%r)" % (self.value,)


def checkpoint(data):
    """Send the agent's checkpoint ``{"type":"checkpoint","data":data}``, from any thread.

    True when written, or queued: while the callback's module loads, before `ready`, the latest
    call's checkpoint is sent right after `ready`. False once stdout is gone. Raises TypeError or
    ValueError when ``data`` is not JSON-serialisable.
    """
    global _early_checkpoint
    line = _checkpoint_line(data)
    with _state_lock:
        output = _serving_output
        if output is None:
            _early_checkpoint = line
            return True
    return output.write_line(line)


def publish(topic, payload):
    """Hand a task to a topic of the supervision tree: ``{"type":"publish","topic":topic,
    "payload":payload}`` (protocol 1.2). The supervisor sends no reply. From any thread.

    True when written, or queued: while the callback's module loads, before `ready`, each call is
    sent right after `ready`, in order. False once stdout is gone. Raises ValueError when
    ``topic`` is not a non-empty str, TypeError when ``payload`` is not JSON-serialisable (nothing
    is sent then). Like a chunk, it waits while 64 KiB are queued behind another thread's write.
    """
    line = _publish_line(topic, payload)
    with _state_lock:
        output = _serving_output
        if output is None:
            _early_publishes.append(line)
            return True
    return output.write_line(line, True)


def restored():
    """The ``data`` of the last ``restore`` message (the checkpoint this incarnation starts from),
    or None. ``restore`` comes after `ready`, so it is None while the callback's module loads."""
    return _restore[0]


def restored_requests():
    """The ``requests`` of the last ``restore`` message, ``{old id: data}`` (a copy), or {}."""
    return dict(_restore[1])


def _start_serving(output):
    """After `ready`: checkpoints and publishes go straight out; those made before go now."""
    global _serving_output, _early_checkpoint
    with _state_lock:
        _serving_output = output
        line, _early_checkpoint = _early_checkpoint, None
        # Queued under the lock, so that a publish another thread makes now goes out after them.
        for early in _early_publishes:
            output.defer(early)
        del _early_publishes[:]
    if line is not None:
        output.write_line(line)
    else:
        output.flush()


def _on_restore(msg):
    global _restore
    requests = msg.get("requests")
    _restore = (msg.get("data"), dict(requests) if type(requests) is dict else {})


class Context(object):
    """What a callback that takes a second parameter is given: one per task (see the module's
    docstring for which callbacks are)."""

    __slots__ = ("_req", "_output")

    def __init__(self, req, output):
        self._req = req
        self._output = output

    @property
    def id(self):
        """The task's id."""
        return self._req.id

    @property
    def stream(self):
        """True when the task came with "stream": true: the caller takes the yielded chunks."""
        return self._req.stream

    @property
    def key(self):
        """The caller's idempotency key (the task's "key"), the same on every delivery of one task, or
        None: a cluster delivers at least once, so a callback with side effects skips work already
        done for a key."""
        return self._req.key

    @property
    def cancelled(self):
        """True once the task was cancelled (``cancel``, or stdin EOF without shutdown)."""
        return self._req.cancelled

    @property
    def cancel_event(self):
        """A threading.Event set when the task is cancelled: ``ctx.cancel_event.wait(seconds)``
        is a sleep that the cancel cuts short."""
        req = self._req
        event = req.event
        if event is None:
            import threading

            with _state_lock:
                event = req.event
                if event is None:
                    event = req.event = threading.Event()
            # The canceller sets `cancelled` then reads `event`; this wrote `event`, now reads `cancelled`.
            if req.cancelled:
                event.set()
        return event

    @property
    def restored(self):
        """As supervisor_adapter.restored(): the data of the last ``restore``, or None."""
        return _restore[0]

    @property
    def restored_requests(self):
        """As supervisor_adapter.restored_requests(): {old id: data}, or {}."""
        return dict(_restore[1])

    def checkpoint(self, data, task=True):
        """Send this request's checkpoint ``{"type":"checkpoint","id":ctx.id,"data":data}``, or
        with ``task=False`` the agent's (``{"type":"checkpoint","data":data}``, as
        supervisor_adapter.checkpoint). True when written; False once the task was answered or
        cancelled (nothing is sent then), or stdout is gone. Raises TypeError or ValueError when
        ``data`` is not JSON-serialisable."""
        if not task:
            return checkpoint(data)
        req = self._req
        line = _checkpoint_line(data, req.id)
        if req.cancelled or req.done:
            return False
        return self._output.write_line(line)

    def publish(self, topic, payload):
        """As supervisor_adapter.publish: send ``{"type":"publish","topic":topic,
        "payload":payload}``, a task for the topic's subscribers (protocol 1.2); no reply comes.
        Sent whether or not this task is still in flight (a publish is the agent's). True when
        written, False once stdout is gone. Raises ValueError for a topic that is not a non-empty
        str, TypeError for a payload that is not JSON-serialisable."""
        return self._output.write_line(_publish_line(topic, payload), True)

    def __repr__(self):
        return "<supervisor_adapter.Context id=%r%s>" % (self._req.id, " cancelled" if self._req.cancelled else "")


def _mark_cancelled(req):
    req.cancelled = True
    event = req.event  # read after the flag: see Context.cancel_event
    if event is not None:
        event.set()


def _context_parameter(fn):
    """How the callback takes a Context: None (``fn(payload)``), 1 (``fn(payload, ctx)``), or the
    name of the keyword-only parameter it takes it as (``fn(payload, ctx=ctx)``)."""
    if type(fn) is _FUNCTION_TYPE and not hasattr(fn, "__wrapped__"):
        # A plain function, from its code object (inspect costs a few ms to import).
        code = fn.__code__
        names = code.co_varnames
        count = code.co_argcount
        with_default = count - len(fn.__defaults__ or ())
        positional = [(names[i], i >= with_default) for i in range(count)]
        keyword_only = names[count : count + code.co_kwonlyargcount]
    else:
        import inspect

        try:
            signature = inspect.signature(fn)  # follows __wrapped__; drops a bound method's self
        except (TypeError, ValueError):  # no signature to read (some builtins): as before
            return None
        positional = []
        keyword_only = []
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                positional.append((parameter.name, parameter.default is not parameter.empty))
            elif parameter.kind == parameter.KEYWORD_ONLY:
                keyword_only.append(parameter.name)
    if len(positional) >= 2:
        name, has_default = positional[1]
        if not has_default or name in ("ctx", "context"):
            return 1
    for name in ("ctx", "context"):
        if name in keyword_only:
            return name
    return None


# --------------------------------------------------------------------------------------------
# Loading the callback
# --------------------------------------------------------------------------------------------


class LoadError(Exception):
    def __init__(self, exit_code, report, text):
        Exception.__init__(self, text)
        self.exit_code = exit_code
        self.report = report  # the --check JSON object
        self.text = text  # what normal mode prints on stderr


def parse_target(target):
    """Split TARGET into (module or path, dotted function name); the name is "" when TARGET ends
    in ':' (find_callback says so)."""
    head, sep, tail = target.rpartition(":")
    # Only a valid (dotted) identifier counts as the function part, so odd paths still work.
    if sep and head and tail and all(part.isidentifier() for part in tail.split(".")):
        return head, tail
    if sep and head and not tail:
        return head, ""
    return target, DEFAULT_FUNCTION


def _is_path(spec):
    # A directory without __init__.py would import as an empty namespace package: no callback in it.
    return spec.endswith(".py") or "/" in spec or os.sep in spec or os.path.isfile(spec) or (
        os.path.isdir(spec) and not os.path.isfile(os.path.join(spec, "__init__.py"))
    )


def _load_failed(exc, what):
    if isinstance(exc, SystemExit):
        # Said as what it is: the adapter's exit code is a load failure's (2), not the module's own
        message = "cannot load %s: it called sys.exit(%s) while it loaded (the adapter exits %d for a load that " \
            "fails)" % (
            what,
            _safe_str(repr(exc.code)) if exc.code is not None else "",
            EXIT_LOAD_FAILED,
        )
    else:
        message = "cannot load %s: %s: %s" % (what, type(exc).__name__, _safe_str(exc))
    report = {
        "type": "check",
        "ok": False,
        "error": "load_failed",
        "message": message,
        "traceback": _format_exception(exc),
        "exception": type(exc).__name__,
    }
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        report["missing_module"] = exc.name
    return LoadError(EXIT_LOAD_FAILED, report, report["traceback"].rstrip("\n") + "\n" + report["message"])


def _drop_adapter_dir_from_path():
    # Python put the adapter's own directory first; user modules should not resolve against it.
    here = os.path.dirname(os.path.abspath(_THIS_FILE))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]


def _importlib_function(bootstrap, name):
    # importlib.util's own functions, taken from the import system's bootstrap modules (always
    # loaded): importing importlib.util costs ~3 ms (contextlib, collections...) before `ready`.
    fn = getattr(sys.modules.get(bootstrap), name, None)
    if fn is None:
        import importlib.util

        fn = getattr(importlib.util, name)
    return fn


def _import_target(spec):
    _drop_adapter_dir_from_path()
    if _is_path(spec):
        path = os.path.abspath(spec)
        shown = spec if spec == path else "%s (%s)" % (spec, path)
        if os.path.isdir(path):
            raise ImportError("%s is a directory; name the .py file that holds the callback" % shown)
        if not os.path.isfile(path):
            raise FileNotFoundError("no such file: %s" % shown)
        sys.path.insert(0, os.path.dirname(path))
        stem = os.path.splitext(os.path.basename(path))[0]
        # Registered under its own name so a sibling `import <stem>` reuses it instead of running
        # it twice, unless that would shadow a module already loaded (json.py, test.py...).
        name = stem if stem.isidentifier() and stem not in sys.modules else "_supervisor_callback_" + (
            stem if stem.isidentifier() else "module"
        )
        module_spec = _importlib_function("_frozen_importlib_external", "spec_from_file_location")(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError("cannot load %s as a Python module" % spec)
        module = _importlib_function("_frozen_importlib", "module_from_spec")(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    sys.path.insert(0, os.getcwd())
    __import__(spec)  # as importlib.import_module does for an absolute name, without importing importlib
    return sys.modules[spec]


def public_functions(module):
    """Public top-level callables defined in the module itself (not imported into it)."""
    names = []
    for name, value in list(vars(module).items()):
        if name.startswith("_") or not callable(value):
            continue
        if getattr(value, "__module__", None) == module.__name__:
            names.append(name)
    return sorted(names)


def is_async_callable(fn):
    """True for ``async def`` callbacks, async generators included: they run on an event loop."""
    # A plain function is answered from its code flags, as inspect.iscoroutinefunction does, without
    # importing inspect (a few ms); anything else (partials, methods, callable objects, functions
    # marked with inspect.markcoroutinefunction) asks inspect.
    if type(fn) is _FUNCTION_TYPE and not hasattr(fn, "_is_coroutine_marker"):
        return bool(fn.__code__.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR))
    import inspect

    def is_async(f):
        return inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)

    if is_async(fn):
        return True
    call = getattr(fn, "__call__", None)
    return not inspect.isroutine(fn) and call is not None and is_async(call)


def find_callback(target):
    """Import TARGET's module and return its callback, or raise LoadError."""
    spec, function = parse_target(target)
    try:
        module = _import_target(spec)
    except BaseException as e:  # SystemExit / KeyboardInterrupt at import time are load failures too
        raise _load_failed(e, spec)

    obj = module
    for part in function.split("."):
        obj = getattr(obj, part, None) if part else None
        if obj is None:
            break
    if obj is None or not callable(obj):
        functions = public_functions(module)
        if not function:
            message = "%r names no function after its ':' (leave the ':' out for %s)" % (target, DEFAULT_FUNCTION)
        elif obj is None:
            message = "%s has no function %r" % (spec, function)
        else:
            message = "%s.%s is not callable (it is a %s)" % (spec, function, type(obj).__name__)
        report = {
            "type": "check",
            "ok": False,
            "error": "callback_not_found",
            "function": function,
            "functions": functions,
            "message": message,
        }
        text = "%s\navailable functions: %s" % (message, ", ".join(functions) if functions else "(none)")
        raise LoadError(EXIT_NOT_FOUND, report, text)
    return obj


def load_callback(target):
    """Return (callable, is_async) or raise LoadError."""
    fn = find_callback(target)
    return fn, is_async_callable(fn)


# --------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------


def _rss_mb():
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak, the best available here
        return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
    except Exception:
        return 0.0


# --------------------------------------------------------------------------------------------
# Input: lines to messages
# --------------------------------------------------------------------------------------------


def _decode_lines(lines):
    """[(message, line)] for the lines that hold a message; the others are reported on stderr."""
    raw_decode = _raw_decode
    batch = []
    for line in lines:
        try:
            msg, end = raw_decode(line)
            if end != len(line) and not line[end:].isspace():
                raise ValueError("extra data")
        except Exception:  # json.loads says what is wrong, or accepts it (leading spaces)
            msg = _decode_slowly(line)
            if msg is None:
                continue
        if type(msg) is dict:
            batch.append((msg, line))
        else:
            _log("warning: ignoring input line that is not a JSON object: %s" % _abbreviate(line))
    return batch


def _decode_slowly(line):
    try:
        return _loads(line)
    except (ValueError, RecursionError) as e:
        if line and not line.isspace():
            _log("warning: ignoring input line that is not JSON (%s): %s" % (e, _abbreviate(line)))
    except Exception as e:  # the reader must survive any line
        _log("warning: ignoring input line (%s: %s): %s" % (type(e).__name__, e, _abbreviate(line)))
    return None


def _has_shutdown(batch):
    for msg, _ in batch:
        if msg.get("type") == "shutdown":
            return True
    return False


class _Request(object):
    __slots__ = ("id", "payload", "stream", "key", "cancelled", "done", "event", "task", "future", "running")

    def __init__(self, req_id, payload, stream, key=None):
        self.id = req_id
        self.payload = payload
        self.stream = stream  # the task came with "stream": true: chunks may be sent
        self.key = key  # the caller's idempotency key, or None
        self.cancelled = False
        self.done = False  # its response is made: no checkpoint of it is sent any more
        self.event = None  # Context.cancel_event, once a callback asked for it
        self.task = None  # the asyncio task running it (async callbacks)
        self.future = None  # the background loop's future awaiting what a sync callback returned
        # def callbacks: 0 not in its callback, 1 in it, 2 in it though cancelled (counted as stuck)
        self.running = 0


# The kinds of object a callback may return to stream (set by _run, after `ready`).
_GeneratorType = None
_AsyncGeneratorType = None


def _stream_sync(agent, req, gen):
    """Run a sync generator a callback returned, in this thread, sending its chunks (or collecting
    them, for a v1 task); return the response line, None when the task was cancelled."""
    chunks = None if req.stream else []
    result = None
    line = None
    try:
        while not req.cancelled:
            try:
                item = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if type(item) is Final:
                result = item.value
                break
            if req.cancelled:  # the cancel came while the generator ran: what it yielded is dropped
                break
            if chunks is not None:
                chunks.append(item)
                continue
            try:
                chunk = _dumps({"id": req.id, "type": "chunk", "data": item})
            except _UNSERIALISABLE as e:
                line = _serialisation_error_line(req.id, "a streamed chunk", item, e)
                break
            agent._send(chunk, True)
    except BaseException as e:  # the generator raised: an error response (after its chunks)
        line = _exception_line(req.id, e)
    try:
        gen.close()  # GeneratorExit at its yield, unless it is finished already
    except BaseException as e:
        if line is None and not req.cancelled:
            line = _exception_line(req.id, e)
        else:
            _log("warning: closing the generator of %r raised %s: %s" % (req.id, type(e).__name__, _safe_str(e)))
    if req.cancelled:
        return None
    return line if line is not None else _ok_line(req.id, result if chunks is None else chunks)


async def _stream_async(agent, req, agen):
    """_stream_sync for an async generator, on the running loop. A cancel cancels the task that
    runs this: CancelledError comes out of the generator's await."""
    chunks = None if req.stream else []
    result = None
    line = None
    try:
        while not req.cancelled:
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                break
            if type(item) is Final:
                result = item.value
                break
            if req.cancelled:
                break
            if chunks is not None:
                chunks.append(item)
                continue
            try:
                chunk = _dumps({"id": req.id, "type": "chunk", "data": item})
            except _UNSERIALISABLE as e:
                line = _serialisation_error_line(req.id, "a streamed chunk", item, e)
                break
            agent._send(chunk, True)
    finally:
        try:
            await agen.aclose()  # GeneratorExit at its yield, unless it is finished already
        except BaseException as e:
            if req.cancelled or isinstance(e, _cancelled_error()):
                pass  # a cancel that came in while it closed: nothing is sent for the task anyway
            elif line is None:
                line = _exception_line(req.id, e)
            else:
                _log("warning: closing the generator of %r raised %s: %s" % (req.id, type(e).__name__, _safe_str(e)))
    if req.cancelled:
        return None
    return line if line is not None else _ok_line(req.id, result if chunks is None else chunks)


def _cancelled_error():
    import asyncio

    return asyncio.CancelledError


async def _settle(agent, req, obj):
    """Await (or stream) what a callback returned; return the response line (None when cancelled
    upstream)."""
    import asyncio

    try:
        if type(obj) is _AsyncGeneratorType:
            return await _stream_async(agent, req, obj)
        result = await obj
        if type(result) is _AsyncGeneratorType:  # a coroutine that returned an async generator
            return await _stream_async(agent, req, result)
    except asyncio.CancelledError:
        if req.cancelled:
            return None
        return _error_line(req.id, "the callback was cancelled", "CancelledError", "CancelledError\n")
    except BaseException as e:  # SystemExit & co. from a callback must not stop the agent
        return _exception_line(req.id, e)
    return _ok_line(req.id, result)


# --------------------------------------------------------------------------------------------
# The agent: the reader thread and what both kinds of callback share
# --------------------------------------------------------------------------------------------


class _Agent(object):
    def __init__(self, fn, output, in_fd):
        self.fn = fn
        self.context = _context_parameter(fn)  # None: fn(payload); 1: fn(payload, ctx); a name: by keyword
        self.output = output
        self.in_fd = in_fd
        self.inflight = {}  # id -> _Request, not yet answered and not cancelled
        self.closing = False
        self.abandoning = False  # stdin EOF without shutdown: cancel everything, exit within the deadline
        # Read by the deadline timer too: a loop that never handles the EOF is stuck in a callback.
        self.exit_code = EXIT_ABANDONED
        self.total_requests = 0
        self._partial = []  # the chunks of a line not yet ended (only the reading thread touches it)
        self._saw_shutdown = False
        self._unknown_types = set()  # logged once each
        self._last_wall = time.monotonic()
        self._last_cpu = time.process_time()

    # -- input: whichever thread reads ------------------------------------------------------

    def _read_chunk(self):
        """Read what stdin holds and deliver its messages; False at EOF (the EOF delivered too).

        Raw reads, so lines of any length work (StreamReader caps at 64 KiB), of at most 64 KiB:
        a larger buffer costs more to allocate than it saves. Lines are decoded here, so the
        reader knows whether `shutdown` came before EOF without asking the event loop, which a
        callback may be blocking.
        """
        try:
            chunk = os.read(self.in_fd, READ_SIZE)
        except OSError as e:
            _log("stdin read failed (%s); treating it as EOF" % e)
            chunk = b""
        if not chunk:
            self._end_of_input()
            return False
        complete, newline, rest = chunk.rpartition(b"\n")
        partial = self._partial
        if not newline:
            partial.append(chunk)
            return True
        if partial:
            partial.append(complete)
            complete = b"".join(partial)
            del partial[:]
        if rest:
            partial.append(rest)
        try:
            # One decode for all the lines (a newline byte is never part of a UTF-8 sequence).
            lines = complete.decode("utf-8", "surrogatepass").split("\n")
        except UnicodeDecodeError:
            lines = complete.split(b"\n")  # json.loads tells which line is not UTF-8
        batch = _decode_lines(lines)
        if batch:
            self._deliver(batch)
        return True

    def _end_of_input(self):
        import threading

        batch = _decode_lines([b"".join(self._partial)]) if self._partial else None
        if batch:
            self._deliver(batch)
        if not self._saw_shutdown:
            # Armed before anything else can block (even a log write): the exit must not depend
            # on the event loop, the worker threads, or stderr.
            deadline = threading.Timer(ABANDON_DEADLINE_SECONDS, self._exit_at_deadline)
            deadline.daemon = True
            deadline.start()
            _log("stdin closed without shutdown: nobody can receive results; exiting within 1 s")
        self._deliver_eof(self._saw_shutdown)

    def _exit_at_deadline(self):
        os._exit(self.exit_code)

    def _handle(self, batch):
        for msg, line in batch:
            try:
                self._dispatch(msg, line)
            except Exception as e:  # a bad line must never take the agent down
                _log("warning: error handling input line %s: %s: %s" % (_abbreviate(line), type(e).__name__, e))

    def _dispatch(self, msg, line):
        kind = msg.get("type")
        req_id = msg.get("id")
        if kind == "task" and type(req_id) is str:  # the common case first
            self.total_requests += 1
            # A missing payload is null: JSON.stringify drops `payload: undefined`.
            key = msg.get("key")
            self._on_task(req_id, msg.get("payload"), msg.get("stream") is True, key if type(key) is str else None)
            return
        if kind == "shutdown":
            self._saw_shutdown = True
            self._begin_close("shutdown")
            return
        if kind == "restore":
            # Stored here, in the reader, before it hands over any task read after it: the
            # callback of the first task sees it.
            _on_restore(msg)
            return
        if kind not in ("task", "ping", "cancel"):
            # A later protocol's message: ignored (said once per type, not once per message).
            key = _abbreviate(repr(kind), 60)
            if key not in self._unknown_types:
                self._unknown_types.add(key)
                _log("warning: ignoring message of unknown type %s (and any more of it): %s" % (key, _abbreviate(line)))
            return
        if type(req_id) is not str:
            _log("warning: ignoring %s message without a string id: %s" % (kind, _abbreviate(line)))
            return
        if kind == "ping":
            self._send(self._pong(req_id))
        else:
            self._on_cancel(req_id)

    def _call_callback(self, req):
        """Call the callback for a task, with a Context if it takes one."""
        context = self.context
        if context is None:
            return self.fn(req.payload)
        if context == 1:
            return self.fn(req.payload, Context(req, self.output))
        return self.fn(req.payload, **{context: Context(req, self.output)})

    # -- output and health ------------------------------------------------------------------

    def _send(self, line, bounded=False):
        if not self.output.write_line(line, bounded):
            self._begin_close("stdout closed")

    def _flush(self):
        if not self.output.flush():
            self._begin_close("stdout closed")

    def _pong(self, req_id):
        return _dumps({"id": req_id, "status": "ok", "result": {"health": self._health()}})

    def _health(self):
        now = time.monotonic()
        cpu = time.process_time()
        wall = now - self._last_wall
        percent = (cpu - self._last_cpu) / wall * 100.0 if wall > 0 else 0.0
        self._last_wall, self._last_cpu = now, cpu
        return {
            "uptime_seconds": round(now - _STARTED, 3),
            "total_requests": self.total_requests,
            "memory_mb": round(_rss_mb(), 3),
            "cpu_percent": round(max(percent, 0.0), 2),
        }


# --------------------------------------------------------------------------------------------
# `def` callbacks: no event loop, a pool of threads.
#
# One pool thread holds the reader's role: it reads stdin, answers pings and cancels, and runs
# the tasks it reads itself, one after another, as a bare line echo would: handing each to
# another thread costs a thread wake-up (~20 us on a 2-core machine, more than the rest of the
# request). A watcher thread keeps stdin read while callbacks run: while the reader runs
# callbacks it checks every WATCH_SECONDS, and when one has run longer than that it hands the
# reader's role to another pool thread (waking or starting one) together with the tasks the
# reader had not started, which go to the pool; the slow callback's thread joins the pool when
# it returns. So pings are answered, and blocking callbacks run side by side, within a few ms.
# The watcher sleeps without a timeout once callbacks stop for COLD_AFTER_CHECKS checks.
# --------------------------------------------------------------------------------------------

WATCH_SECONDS = 0.002
COLD_AFTER_CHECKS = 50
# While the reader runs the tasks of one chunk, a response waits for the next one's to share its
# write, for at most about this long (or WATCH_SECONDS behind a callback that blocks).
FLUSH_SECONDS = 0.0005
_READ = object()  # the reader's role, passed through the queue like a task: there is one


class _ThreadedAgent(_Agent):
    def __init__(self, fn, output, in_fd):
        import threading
        import _thread

        try:
            from _queue import SimpleQueue  # the C queue itself: `queue` imports more than it needs
        except ImportError:
            from queue import SimpleQueue

        _Agent.__init__(self, fn, output, in_fd)
        self._lock = _thread.allocate_lock()  # guards inflight, closing and the state below
        self._queue = SimpleQueue()  # tasks for the pool, and _READ when the role changes hands
        self._threads = 0  # pool threads: at most MAX_WORKERS running callbacks, and the reader
        self._idle = 0  # pool threads waiting on the queue (or about to)
        self._queued = 0  # items in the queue, not yet taken
        self._busy = 0  # threads inside the callback
        # Of those, the ones whose task was cancelled upstream (a thread cannot be interrupted): when
        # they are all MAX_WORKERS, no task can run, and pings are answered with an error (_pong).
        self._stuck = 0
        self._stuck_logged = False
        self._background = 0  # coroutines returned by the callback, being awaited on the background loop
        self._tasks = []  # the tasks of the chunk being read
        # The reader's own tasks: the role's generation (bumped when the watcher hands the role
        # on), the tasks it has read but not started (reversed), when its callback started.
        self._role = 0
        self._backlog = []
        self._since = None
        self._runs = 0  # callbacks the reader has started: the watcher goes cold when it stops moving
        self._watching = False
        self._watcher_started = False
        self._wake_watcher = _thread.allocate_lock()
        self._wake_watcher.acquire()  # released to wake a cold watcher
        self._done = threading.Event()  # set when the process may exit
        self._loop = None  # the background event loop for coroutines that sync callbacks return
        self._loop_lock = _thread.allocate_lock()

    def serve(self):
        """Serve until shutdown/EOF and drained; return True if cancelled work is still running."""
        with self._lock:
            spawn = self._enqueue([_READ])
        self._start_threads([_READ], spawn)
        self._done.wait()
        if self.abandoning and self._background:
            self._unwind_background()
        # The lines of the last tasks may still be in another thread's write.
        self.output.wait_written()
        with self._lock:
            if not self.abandoning:
                self.exit_code = EXIT_OK
            return self._busy > 0 or self._background > 0

    # the pool

    def _enqueue(self, items):
        """Count items in (the lock held); return how many threads to start so that each has one."""
        self._queued += len(items)
        spawn = 0
        while self._queued > self._idle and self._threads <= MAX_WORKERS:
            self._threads += 1
            self._idle += 1  # the new thread's first act is to wait on the queue
            spawn += 1
        return spawn

    def _start_threads(self, items, spawn):
        put = self._queue.put
        for item in items:
            put(item)
        if spawn:
            import threading

            for started in range(spawn):
                try:
                    threading.Thread(target=self._serve_thread, name="callback", daemon=True).start()
                except RuntimeError as e:  # "can't start new thread": the threads there take the items in turn
                    with self._lock:
                        self._threads -= spawn - started
                        self._idle -= spawn - started
                    _log("warning: could not start a thread (%s); %d run callbacks" % (e, self._threads))
                    break

    def _serve_thread(self):
        get = self._queue.get
        lock = self._lock
        while True:
            item = get()
            with lock:
                self._idle -= 1
                self._queued -= 1
            if item is _READ:
                self._read()
            else:
                self._call(item)
            with lock:
                self._idle += 1

    def _read(self):
        """Hold the reader's role until stdin ends or the watcher hands the role on."""
        lock = self._lock
        with lock:
            role = self._role
        while self._read_chunk():
            tasks = self._tasks
            if not tasks:
                continue
            self._tasks = []
            with lock:
                queue_them = self._queued or self._busy >= MAX_WORKERS
                if queue_them:
                    # Tasks wait already, or the pool is full: these queue behind them.
                    spawn = self._enqueue(tasks)
                else:
                    tasks.reverse()
                    self._backlog = tasks
            if queue_them:
                self._start_threads(tasks, spawn)
            elif not self._run_backlog(role):
                return

    def _run_backlog(self, role):
        """Run the tasks just read, here, in order; False once the role went to another thread."""
        lock = self._lock
        inflight = self.inflight
        invoke = self._invoke
        monotonic = time.monotonic
        req = None
        deferred = None  # when the oldest response held back for one write was held back
        while True:
            drained = freed = False
            with lock:  # one lock section per task: the end of one, the start of the next
                if req is not None:
                    if running and self._leave(req):
                        freed = True
                    if not handed_off and inflight.get(req.id) is req:
                        del inflight[req.id]
                    drained = self.closing and not inflight
                lost = self._role != role  # the watcher handed the role on, with the backlog
                backlog = self._backlog
                if lost or not backlog:
                    if not lost:
                        self._since = None
                    req = None
                else:
                    req = backlog.pop()
                    more = bool(backlog)
                    now = self._since = monotonic()
                    self._runs += 1
                    running = not req.cancelled
                    if running:
                        self._busy += 1
                        req.running = 1
                    wake = not self._watching
                    self._watching = True
            if drained:
                self._done.set()
            if freed:
                _log(_FREED_MESSAGE)
            if req is None:
                # Lines held back and not yet written with a later one (the last task sent none, or the
                # role was handed on while a callback ran: the watcher's flush may have come first).
                if deferred is not None:
                    self._flush()
                return not lost
            if wake:
                self._start_watching()
            if deferred is not None and now - deferred >= FLUSH_SECONDS:
                self._flush()
                deferred = None
            handed_off = running and invoke(req, more)
            if not more:
                deferred = None  # written with this task's line
            elif deferred is None and running:
                deferred = now

    def _start_watching(self):
        if self._watcher_started:
            self._wake_watcher.release()
        else:
            import threading

            self._watcher_started = True
            threading.Thread(target=self._watch, name="watcher", daemon=True).start()

    def _watch(self):
        lock = self._lock
        monotonic = time.monotonic
        sleep = time.sleep
        quiet = 0
        runs = -1
        while True:
            sleep(WATCH_SECONDS)
            items = None
            with lock:
                since = self._since
                if since is not None and monotonic() - since >= WATCH_SECONDS:
                    # The reader is stuck in a callback: the role, and the tasks it has not
                    # started, go to the pool.
                    self._role += 1
                    self._since = None
                    items = [_READ]
                    items.extend(reversed(self._backlog))
                    self._backlog = []
                    spawn = self._enqueue(items)
                    quiet = 0
                elif since is None and self._runs == runs:
                    quiet += 1
                    if quiet >= COLD_AFTER_CHECKS:
                        self._watching = False
                else:
                    quiet = 0
                runs = self._runs
                cold = not self._watching
            if items is not None:
                self._start_threads(items, spawn)
                self._flush()  # what the stuck reader held back for one write
            if cold:
                self._wake_watcher.acquire()  # until a reader starts a callback
                quiet = 0

    def _call(self, req):
        """Run a task from the queue (a pool thread that is not reading)."""
        lock = self._lock
        with lock:  # decided under the lock, so that a cancel finds it running (stuck) or not started
            running = not req.cancelled
            if running:
                self._busy += 1
                req.running = 1
        handed_off = running and self._invoke(req)
        freed = False
        with lock:
            if running:
                freed = self._leave(req)
            if not handed_off and self.inflight.get(req.id) is req:
                del self.inflight[req.id]
            drained = self.closing and not self.inflight
        if freed:
            _log(_FREED_MESSAGE)
        if drained:
            self._done.set()

    def _leave(self, req):
        """A thread is out of req's callback (the lock held); True when that ended a stuck pool
        that was logged (the caller logs its end, out of the lock)."""
        self._busy -= 1
        freed = req.running == 2
        req.running = 0
        if freed:
            self._stuck -= 1
            if self._stuck_logged:
                self._stuck_logged = False
                return True
        return False

    def _pong(self, req_id):
        if self._stuck >= MAX_WORKERS:  # read without the lock: one int, and the next ping reads again
            return _stuck_line(req_id)
        return _Agent._pong(self, req_id)

    def _invoke(self, req, defer=False):
        """Call the callback and send the response (or defer it, to go out with the next write);
        True when a coroutine it returned is awaited elsewhere (the task stays in flight until
        then)."""
        try:
            result = self._call_callback(req)
        except BaseException as e:  # SystemExit & co. from a callback must not stop the agent
            line = _exception_line(req.id, e)
        else:
            if type(result) is _GeneratorType:  # a generator: iterated here, its chunks sent as they come
                line = _stream_sync(self, req, result)
            elif hasattr(result, "__await__") or type(result) is _AsyncGeneratorType:
                # A coroutine, or an async generator: awaited (iterated) on a loop.
                self._await_in_background(req, result)
                return True
            else:
                line = _ok_line(req.id, result)
        req.done = True
        # Sent before the task leaves `inflight`: the drain must not end before its line is out
        # (a deferred line is written at the latest by the exit's wait_written).
        if line is not None and not req.cancelled:
            if defer:
                self.output.defer(line)
            else:
                self._send(line)
        return False

    # reader side: these run in the thread that holds the reader's role

    def _deliver(self, batch):
        self._handle(batch)

    def _deliver_eof(self, saw_shutdown):
        if saw_shutdown:
            return  # the drain `shutdown` began goes on
        # Nobody can receive a result any more: cancel instead of draining.
        with self._lock:
            cancelled = list(self.inflight.values())
            self.inflight.clear()
            for req in cancelled:
                _mark_cancelled(req)
            self.abandoning = self.closing = True
            self.exit_code = EXIT_ABANDONED if cancelled else EXIT_OK
            futures = [req.future for req in cancelled if req.future is not None]
        for future in futures:
            future.cancel()
        if cancelled:
            _log("cancelling %d task(s) in flight" % len(cancelled))
        self._done.set()

    def _on_task(self, req_id, payload, stream, key=None):
        # No lock: only the reader adds to `inflight`, and others remove only what they run.
        if self.closing:
            # Answer rather than drop, so the caller fails fast instead of waiting for a timeout.
            self._send(_refusal_line(req_id))
        elif req_id in self.inflight:
            _log("warning: ignoring task with duplicate in-flight id %r" % req_id)
        else:
            req = self.inflight[req_id] = _Request(req_id, payload, stream, key)
            self._tasks.append(req)

    def _on_cancel(self, req_id):
        with self._lock:
            req = self.inflight.pop(req_id, None)
            if req is None:
                return  # already answered: the response crossed the cancel on the wire
            # A running callback cannot be interrupted: this drops its response, stops a generator
            # at its next yield, and sets the context's cancel_event.
            _mark_cancelled(req)
            stuck = False
            if req.running == 1:
                req.running = 2
                self._stuck += 1
                stuck = self._stuck >= MAX_WORKERS and not self._stuck_logged
                if stuck:
                    self._stuck_logged = True
            drained = self.closing and not self.inflight
        if req.future is not None:
            req.future.cancel()
        if stuck:
            _log("warning: " + _STUCK_MESSAGE % MAX_WORKERS)
        if drained:
            self._done.set()

    def _begin_close(self, reason):
        with self._lock:
            if self.closing:
                return
            self.closing = True
            drained = not self.inflight
        if drained:
            self._done.set()

    # coroutines returned by sync callbacks

    def _await_in_background(self, req, obj):
        import asyncio

        with self._loop_lock:
            if self._loop is None:
                import threading

                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="coroutines", daemon=True).start()
        req.future = asyncio.run_coroutine_threadsafe(self._settle_background(req, obj), self._loop)
        if req.cancelled:
            req.future.cancel()

    async def _settle_background(self, req, obj):
        with self._lock:
            self._background += 1
        line = None
        try:
            line = await _settle(self, req, obj)
        finally:
            req.done = True
            with self._lock:
                self._background -= 1
            if line is not None and not req.cancelled:
                self._send(line)
            with self._lock:
                if self.inflight.get(req.id) is req:
                    del self.inflight[req.id]
                drained = self.closing and not self.inflight
            if drained:
                self._done.set()

    def _unwind_background(self):
        """After an abandon: give the cancelled coroutines of the background loop their grace."""
        import asyncio

        async def unwind():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                await asyncio.wait(tasks, timeout=ABANDON_GRACE_SECONDS)

        try:
            asyncio.run_coroutine_threadsafe(unwind(), self._loop).result(ABANDON_GRACE_SECONDS + 0.1)
        except Exception:
            pass  # the deadline timer still bounds the exit


# --------------------------------------------------------------------------------------------
# `async def` callbacks: an event loop in the main thread, fed one call per chunk read
# --------------------------------------------------------------------------------------------


class _AsyncAgent(_Agent):
    def __init__(self, fn, output, in_fd):
        _Agent.__init__(self, fn, output, in_fd)
        self.loop = None
        self.tasks = set()  # strong refs: the loop itself only keeps weak ones
        self.closed = None
        self.drained = None
        self._loop_closed = False

    def serve(self):
        """Serve until shutdown/EOF, drain; return True if cancelled work is still running."""
        import asyncio

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        lingering = loop.run_until_complete(self._run())
        if not lingering:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
        return lingering

    async def _run(self):
        import asyncio
        import threading

        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        threading.Thread(target=self._read_input, name="stdin-reader", daemon=True).start()
        await self.closed
        if self.inflight and not self.abandoning:
            self.drained = self.loop.create_future()
            await self.drained
        if not self.abandoning:
            self.exit_code = EXIT_OK
        leftover = [t for t in self.tasks if not t.done()]
        if leftover:  # cancelled callbacks still unwinding
            await asyncio.wait(leftover, timeout=ABANDON_GRACE_SECONDS if self.abandoning else 1.0)
        self.output.wait_written()
        return any(not t.done() for t in self.tasks)

    # reader thread side: one hand-over per chunk

    def _read_input(self):
        while self._read_chunk() and not self._loop_closed:
            pass

    def _deliver(self, batch):
        # Known here, in the reader, so that an EOF after `shutdown` drains even when the loop is stuck.
        if not self._saw_shutdown and _has_shutdown(batch):
            self._saw_shutdown = True
        self._post(self._handle, batch)

    def _deliver_eof(self, saw_shutdown):
        self._post(self._on_eof, saw_shutdown)

    def _post(self, callback, *args):
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # loop already closed: we are exiting anyway
            self._loop_closed = True

    # loop side

    def _on_task(self, req_id, payload, stream, key=None):
        if self.closing:
            # Answer rather than drop, so the caller fails fast instead of waiting for a timeout.
            self._send(_refusal_line(req_id))
            return
        if req_id in self.inflight:
            _log("warning: ignoring task with duplicate in-flight id %r" % req_id)
            return
        req = _Request(req_id, payload, stream, key)
        req.task = task = self.loop.create_task(self._run_async(req))
        self.inflight[req_id] = req
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_async(self, req):
        line = None
        try:
            try:
                result = self._call_callback(req)
            except BaseException as e:
                line = _exception_line(req.id, e)
            else:
                if hasattr(result, "__await__") or type(result) is _AsyncGeneratorType:
                    line = await _settle(self, req, result)
                elif type(result) is _GeneratorType:
                    # A sync generator from an async callback (a callable that only claims to be
                    # async): iterated on the loop, which it blocks between its yields.
                    line = _stream_sync(self, req, result)
                else:
                    line = _ok_line(req.id, result)
        finally:
            req.done = True
            if self.inflight.get(req.id) is req:
                del self.inflight[req.id]
            if line is not None and not req.cancelled:
                self._send(line)
            self._check_drained()

    def _on_cancel(self, req_id):
        req = self.inflight.pop(req_id, None)
        if req is None:
            return  # already answered: the response crossed the cancel on the wire
        _mark_cancelled(req)
        req.task.cancel()
        self._check_drained()

    def _on_eof(self, saw_shutdown):
        if saw_shutdown:
            self._begin_close("stdin EOF")  # the drain `shutdown` began goes on
            return
        # Nobody can receive a result any more: cancel instead of draining.
        self.abandoning = True
        cancelled = list(self.inflight.values())
        self.exit_code = EXIT_ABANDONED if cancelled else EXIT_OK
        for req in cancelled:
            self._on_cancel(req.id)
        if cancelled:
            _log("cancelling %d task(s) in flight" % len(cancelled))
        self._begin_close("stdin EOF without shutdown")

    def _check_drained(self):
        if self.drained is not None and not self.inflight and not self.drained.done():
            self.drained.set_result(None)

    def _begin_close(self, reason):
        if self.closing:
            return
        self.closing = True
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _run(fn, output, in_fd):
    global _GeneratorType, _AsyncGeneratorType
    # After `ready`: what only serving needs.
    _load_json()
    import types

    _GeneratorType = types.GeneratorType
    _AsyncGeneratorType = types.AsyncGeneratorType
    _start_serving(output)
    agent = (_AsyncAgent if is_async_callable(fn) else _ThreadedAgent)(fn, output, in_fd)
    try:
        lingering = agent.serve()
    except KeyboardInterrupt:
        return 130
    if lingering:
        # Cancelled callbacks cannot be stopped and would block (or crash) interpreter exit, so
        # exit without them; atexit handlers still run.
        _log("exiting with cancelled callbacks still running")
        import atexit

        try:
            atexit._run_exitfuncs()
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(agent.exit_code)
    return agent.exit_code


_USAGE = "usage: python3 supervisor_adapter.py TARGET [--check]\n" "  TARGET: package.module[:function] or path/to/file.py[:function]\n"


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    check = False
    targets = []
    for arg in args:
        if arg == "--check":
            check = True
        elif arg in ("-h", "--help"):
            sys.stdout.write(__doc__ or _USAGE)
            return EXIT_OK
        elif arg.startswith("--"):
            sys.stderr.write("unknown option %s\n%s" % (arg, _USAGE))
            return EXIT_LOAD_FAILED
        else:
            targets.append(arg)
    if len(targets) != 1:
        sys.stderr.write(_USAGE)
        return EXIT_LOAD_FAILED

    output, in_fd = _take_over_stdio()
    # `import supervisor_adapter` in the callback's module: this running module, not a second copy
    # (Final, checkpoint(), restored(), publish() act on the live agent).
    this = sys.modules.get(__name__)
    if this is not None:
        sys.modules.setdefault("supervisor_adapter", this)
    try:
        fn = find_callback(targets[0])
    except LoadError as e:
        if check:
            _load_json()
            output.write_line(_dumps(e.report))
        else:
            sys.stderr.write(e.text.rstrip("\n") + "\n")
            sys.stderr.flush()
        return e.exit_code
    if check:
        _load_json()
        output.write_line(_dumps({"type": "check", "ok": True, "async": is_async_callable(fn)}))
        return EXIT_OK
    # Nothing but the callback's loading comes before `ready`; it always precedes any response.
    output.write_line(_READY)
    return _run(fn, output, in_fd)


_THIS_FILE = main.__code__.co_filename
_FUNCTION_TYPE = type(main)

if __name__ == "__main__":
    sys.exit(main())
