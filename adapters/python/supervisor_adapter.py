#!/usr/bin/env python3
"""Run a plain Python function as a supervised agent (wire protocol v1).

Usage:
    python3 supervisor_adapter.py TARGET [--check]

TARGET names the callback:
    package.module:function   imported with importlib; the current working directory is put
                              first on sys.path.
    path/to/file.py:function  loaded from that file; its directory is put first on sys.path so
                              sibling imports work.
    Without ":function" the callback is ``handle_request``. ``function`` may be dotted
    (``module:Class.method``).

The callback takes one positional argument, the task payload, and returns a JSON-serialisable
result. It may be ``def`` (run in a thread pool, so it may block) or ``async def`` (run as an
asyncio task). Many tasks run at once; responses go out in completion order.

Protocol: newline-delimited JSON, UTF-8, one object per line.
    stdin  {"id": "...", "type": "task", "payload": ...}
           {"id": "...", "type": "ping"}
           {"id": "...", "type": "cancel"}     the task timed out upstream: no response is sent
           {"type": "shutdown"}                drain in-flight tasks, then exit 0
    stdout {"type": "ready", "protocol": 1}    once, first, when the callback is loaded
           {"id": "...", "status": "ok", "result": ...}
           {"id": "...", "status": "error", "error": {"message": ..., "type": ..., "stack": ...}}
           a ping's result is {"health": {uptime_seconds, total_requests, memory_mb, cpu_percent}}

stdout carries protocol only: user print()s, and anything child processes write to fd 1, go to
stderr. Bad input lines are reported on stderr and ignored.

stdin EOF after `shutdown` drains as `shutdown` does. stdin EOF without `shutdown` means the
supervisor is gone (killed, say) and nobody can receive a result: in-flight tasks are cancelled
(async ones get CancelledError and have 0.5 s to unwind; sync ones cannot be interrupted and are
abandoned in their threads) and the process exits within 1 s whatever its callbacks do, even
when one blocks the event loop. Responses sent before the EOF stay sent.

--check loads the callback, prints one line and exits:
    {"type":"check","ok":true,"async":<bool>}                                        exit 0
    {"type":"check","ok":false,"error":"callback_not_found","function":..,"functions":[..],
     "message":..}                                                                   exit 3
    {"type":"check","ok":false,"error":"load_failed","message":..,"traceback":..,
     "exception":<type name>[, "missing_module":<name> for ModuleNotFoundError]}     exit 2

Exit codes: 0 after shutdown, or after stdin EOF with nothing in flight; 2 the module could not
be loaded (or bad command line); 3 the callback was not found; 4 stdin EOF without shutdown
while tasks were in flight (they were cancelled: work was lost). Python standard library only,
python3 >= 3.9.
"""

import json
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

_STARTED = time.monotonic()
_LOG_PREFIX = "[supervisor_adapter]"


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


class _Output:
    """Whole-line writes to the protocol fd; one lock because threads may write too."""

    def __init__(self, fd):
        import threading

        self._fd = fd
        self._lock = threading.Lock()
        self.broken = False

    def write_line(self, data):
        # Unbuffered os.write: nothing to flush, and no buffered-IO lock left held at exit.
        view = memoryview(data + b"\n")
        with self._lock:
            if self.broken:
                return False
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError as e:  # BrokenPipeError: the supervisor is gone
                self.broken = True
                _log("stdout closed (%s); responses are dropped from now on" % e)
                return False
        return True


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
# Encoding
# --------------------------------------------------------------------------------------------


def _dumps(obj):
    # allow_nan=False: NaN/Infinity would be emitted as invalid JSON the supervisor cannot parse.
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from surrogateescape) cannot be UTF-8: escape them as \udXXX.
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


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


def _ok_line(req_id, result):
    try:
        return _dumps({"id": req_id, "status": "ok", "result": result})
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        message = "callback result is not JSON-serialisable (%s: %s)" % (type(result).__name__, _safe_str(e))
        return _error_line(req_id, message, "SerializationError", "SerializationError: %s\n" % message)


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
    """Split TARGET into (module or path, dotted function name)."""
    head, sep, tail = target.rpartition(":")
    # Only a valid (dotted) identifier counts as the function part, so odd paths still work.
    if sep and head and tail and all(part.isidentifier() for part in tail.split(".")):
        return head, tail
    return target, DEFAULT_FUNCTION


def _is_path(spec):
    return spec.endswith(".py") or "/" in spec or os.sep in spec or os.path.isfile(spec)


def _load_failed(exc, what):
    report = {
        "type": "check",
        "ok": False,
        "error": "load_failed",
        "message": "cannot load %s: %s: %s" % (what, type(exc).__name__, _safe_str(exc)),
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


def _import_target(spec):
    import importlib
    import importlib.util

    _drop_adapter_dir_from_path()
    if _is_path(spec):
        path = os.path.abspath(spec)
        if os.path.isdir(path):
            raise ImportError("%s is a directory; name the .py file that holds the callback" % spec)
        if not os.path.isfile(path):
            raise FileNotFoundError("no such file: %s" % spec)
        sys.path.insert(0, os.path.dirname(path))
        stem = os.path.splitext(os.path.basename(path))[0]
        # Registered under its own name so a sibling `import <stem>` reuses it instead of running
        # it twice, unless that would shadow a module already loaded (json.py, test.py...).
        name = stem if stem.isidentifier() and stem not in sys.modules else "_supervisor_callback_" + (
            stem if stem.isidentifier() else "module"
        )
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError("cannot load %s as a Python module" % spec)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(spec)


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
    import inspect

    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)
    return not inspect.isroutine(fn) and call is not None and inspect.iscoroutinefunction(call)


def load_callback(target):
    """Return (callable, is_async) or raise LoadError."""
    spec, function = parse_target(target)
    try:
        module = _import_target(spec)
    except BaseException as e:  # SystemExit / KeyboardInterrupt at import time are load failures too
        raise _load_failed(e, spec)

    obj = module
    for part in function.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            break
    if obj is None or not callable(obj):
        functions = public_functions(module)
        if obj is None:
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
    return obj, is_async_callable(obj)


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
# The agent loop
# --------------------------------------------------------------------------------------------


def _decode_line(line):
    """The message object on a line, or None (reported on stderr) when it is not one."""
    if not line.strip():
        return None
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError) as e:
        _log("warning: ignoring input line that is not JSON (%s): %s" % (e, _abbreviate(line)))
        return None
    except Exception as e:  # the reader thread must survive any line
        _log("warning: ignoring input line (%s: %s): %s" % (type(e).__name__, e, _abbreviate(line)))
        return None
    if not isinstance(msg, dict):
        _log("warning: ignoring input line that is not a JSON object: %s" % _abbreviate(line))
        return None
    return msg


def _is_shutdown(msg):
    return msg is not None and msg.get("type") == "shutdown"


class _Request(object):
    __slots__ = ("id", "task", "cancelled")

    def __init__(self, req_id):
        self.id = req_id
        self.task = None
        self.cancelled = False


class Adapter(object):
    def __init__(self, fn, is_async, output, in_fd):
        import threading

        self.fn = fn
        self.is_async = is_async
        self.output = output
        self.in_fd = in_fd
        self.loop = None
        self.executor = None
        self.inflight = {}  # id -> _Request, not yet answered and not cancelled
        self.tasks = set()  # strong refs: the loop itself only keeps weak ones
        self.closing = False
        self.closed = None
        self.abandoning = False  # stdin EOF without shutdown: cancel everything, exit within the deadline
        # Read by the deadline timer too: a loop that never handles the EOF is stuck in a callback.
        self.exit_code = EXIT_ABANDONED
        self.total_requests = 0
        self._busy = 0  # sync callbacks currently running in a worker thread
        self._busy_lock = threading.Lock()
        self._last_wall = _STARTED
        self._last_cpu = 0.0

    # -- input ------------------------------------------------------------------------------

    def _read_stdin(self):
        """Reader thread: raw reads, so lines of any length work (StreamReader caps at 64 KiB).

        Lines are decoded here, so this thread knows whether `shutdown` came before EOF without
        asking the event loop, which a callback may be blocking.
        """
        import threading

        buf = bytearray()
        saw_shutdown = False
        while True:
            try:
                chunk = os.read(self.in_fd, 1 << 20)
            except OSError as e:
                _log("stdin read failed (%s); treating it as EOF" % e)
                chunk = b""
            if not chunk:
                break
            scan = len(buf)
            buf += chunk
            while True:
                nl = buf.find(b"\n", scan)
                if nl < 0:
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                scan = 0
                msg = _decode_line(line)
                saw_shutdown = saw_shutdown or _is_shutdown(msg)
                if msg is not None and not self._post(self._on_message, msg, line):
                    return
        if buf.strip():
            line = bytes(buf)
            msg = _decode_line(line)
            saw_shutdown = saw_shutdown or _is_shutdown(msg)
            if msg is not None:
                self._post(self._on_message, msg, line)
        if not saw_shutdown:
            # Armed before anything else can block (even a log write): the exit must not depend
            # on the event loop, the worker threads, or stderr.
            deadline = threading.Timer(ABANDON_DEADLINE_SECONDS, self._exit_at_deadline)
            deadline.daemon = True
            deadline.start()
            _log("stdin closed without shutdown: nobody can receive results; exiting within 1 s")
        self._post(self._on_eof, saw_shutdown)

    def _exit_at_deadline(self):
        os._exit(self.exit_code)

    def _post(self, callback, *args):
        try:
            self.loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:  # loop already closed: we are exiting anyway
            return False

    def _on_message(self, msg, line):
        try:
            self._dispatch(msg, line)
        except Exception as e:  # a bad line must never take the agent down
            _log("warning: error handling input line %s: %s: %s" % (_abbreviate(line), type(e).__name__, e))

    def _dispatch(self, msg, line):
        kind = msg.get("type")
        if kind == "shutdown":
            self._begin_close("shutdown")
            return
        if kind not in ("task", "ping", "cancel"):
            _log("warning: ignoring message of unknown type %r: %s" % (kind, _abbreviate(line)))
            return
        req_id = msg.get("id")
        if not isinstance(req_id, str):
            _log("warning: ignoring %s message without a string id: %s" % (kind, _abbreviate(line)))
            return
        if kind == "task":
            # A missing payload is null: JSON.stringify drops `payload: undefined`.
            self._on_task(req_id, msg.get("payload"))
        elif kind == "ping":
            self._send(_dumps({"id": req_id, "status": "ok", "result": {"health": self._health()}}))
        else:
            self._on_cancel(req_id)

    # -- tasks ------------------------------------------------------------------------------

    def _on_task(self, req_id, payload):
        self.total_requests += 1
        if self.closing:
            # Answer rather than drop, so the caller fails fast instead of waiting for a timeout.
            message = "agent is shutting down; task not accepted"
            self._send(_error_line(req_id, message, "AdapterShuttingDown", "AdapterShuttingDown: %s\n" % message))
            return
        if req_id in self.inflight:
            _log("warning: ignoring task with duplicate in-flight id %r" % req_id)
            return
        req = _Request(req_id)
        coro = self._run_async(req, payload) if self.is_async else self._run_sync(req, payload)
        req.task = self.loop.create_task(coro)
        self.inflight[req_id] = req
        self.tasks.add(req.task)
        req.task.add_done_callback(self.tasks.discard)

    def _on_cancel(self, req_id):
        req = self.inflight.pop(req_id, None)
        if req is None:
            return  # already answered: the response crossed the cancel on the wire
        req.cancelled = True
        # For a sync callback this only stops waiting: a running thread cannot be interrupted.
        req.task.cancel()

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

    def _finish(self, req, line):
        if self.inflight.get(req.id) is req:
            del self.inflight[req.id]
        if line is not None and not req.cancelled:
            self._send(line)

    async def _settle(self, req, result):
        """Await what the callback returned, if awaitable; return the response line."""
        import asyncio
        import inspect

        try:
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            if req.cancelled:
                return None
            return _error_line(req.id, "the callback was cancelled", "CancelledError", "CancelledError\n")
        except BaseException as e:  # SystemExit & co. from a callback must not stop the agent
            return _exception_line(req.id, e)
        return _ok_line(req.id, result)

    async def _run_async(self, req, payload):
        line = None
        try:
            try:
                result = self.fn(payload)
            except BaseException as e:
                line = _exception_line(req.id, e)
            else:
                line = await self._settle(req, result)
        finally:
            self._finish(req, line)

    def _call_in_thread(self, req, payload):
        with self._busy_lock:
            self._busy += 1
        try:
            if req.cancelled:
                return None, None
            try:
                result = self.fn(payload)
            except BaseException as e:
                return _exception_line(req.id, e), None
            if hasattr(result, "__await__"):
                return None, result  # a sync function returned a coroutine: await it on the loop
            # Encoding here keeps big results from stalling the event loop (and pings).
            return _ok_line(req.id, result), None
        finally:
            with self._busy_lock:
                self._busy -= 1

    async def _run_sync(self, req, payload):
        import asyncio

        line = None
        try:
            try:
                line, awaitable = await self.loop.run_in_executor(self.executor, self._call_in_thread, req, payload)
            except asyncio.CancelledError:
                return
            if awaitable is not None:
                line = await self._settle(req, awaitable)
        finally:
            self._finish(req, line)

    # -- output and health ------------------------------------------------------------------

    def _send(self, line):
        if not self.output.write_line(line):
            self._begin_close("stdout closed")

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

    # -- lifecycle --------------------------------------------------------------------------

    def _begin_close(self, reason):
        if self.closing:
            return
        self.closing = True
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)

    async def run(self):
        """Serve until shutdown/EOF, drain; return True if cancelled work is still running."""
        import asyncio
        import threading

        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        self._last_wall, self._last_cpu = time.monotonic(), time.process_time()
        if not self.is_async:
            from concurrent.futures import ThreadPoolExecutor

            self.executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="callback")
        # Written before the first await, so it always precedes any response.
        self._send(_dumps({"type": "ready", "protocol": PROTOCOL_VERSION}))
        threading.Thread(target=self._read_stdin, name="stdin-reader", daemon=True).start()

        await self.closed
        # Drain. Polling, because a late cancel can remove a request from the set being awaited,
        # and stdin EOF without shutdown cancels them all.
        while self.inflight and not self.abandoning:
            pending = [req.task for req in self.inflight.values()]
            await asyncio.wait(pending, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        if not self.abandoning:
            self.exit_code = EXIT_OK
        leftover = [t for t in self.tasks if not t.done()]
        if leftover:  # cancelled async callbacks still unwinding
            await asyncio.wait(leftover, timeout=ABANDON_GRACE_SECONDS if self.abandoning else 1.0)
        with self._busy_lock:
            busy = self._busy
        return busy > 0 or any(not t.done() for t in self.tasks)


def _run(fn, is_async, output, in_fd):
    import asyncio

    adapter = Adapter(fn, is_async, output, in_fd)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        lingering = loop.run_until_complete(adapter.run())
    except KeyboardInterrupt:
        return 130
    if lingering:
        # Cancelled sync callbacks cannot be stopped and would block interpreter exit (the pool
        # joins its threads), so exit without them; atexit handlers still run.
        _log("exiting with cancelled callbacks still running")
        import atexit

        try:
            atexit._run_exitfuncs()
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(adapter.exit_code)
    if adapter.executor is not None:
        adapter.executor.shutdown(wait=True)
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    return adapter.exit_code


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
    try:
        fn, is_async = load_callback(targets[0])
    except LoadError as e:
        if check:
            output.write_line(_dumps(e.report))
        else:
            sys.stderr.write(e.text.rstrip("\n") + "\n")
            sys.stderr.flush()
        return e.exit_code
    if check:
        output.write_line(_dumps({"type": "check", "ok": True, "async": is_async}))
        return EXIT_OK
    return _run(fn, is_async, output, in_fd)


_THIS_FILE = main.__code__.co_filename

if __name__ == "__main__":
    sys.exit(main())
