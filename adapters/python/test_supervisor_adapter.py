"""Tests for supervisor_adapter.py: each test drives the adapter as a real subprocess.

Run from anywhere:
    python3 -m unittest adapters/python/test_supervisor_adapter.py -v   (from the repo root)
    python3 path/to/test_supervisor_adapter.py -v

Every read has a timeout, so a broken adapter fails a test instead of hanging the suite.
"""

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER = os.path.join(HERE, "supervisor_adapter.py")
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "test", "fixtures", "python"))
READ_TIMEOUT = 10.0
READY = {"type": "ready", "protocol": 1, "features": ["stream", "checkpoint", "publish"]}

# No __pycache__ litter in the fixture folder.
ENV = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")


def fixture(name):
    return os.path.join(FIXTURES, name)


class AgentProcess:
    """The adapter under test, with stdout/stderr drained by threads into thread-safe buffers."""

    def __init__(self, target, *args, cwd=None, new_session=False):
        self.proc = subprocess.Popen(
            [sys.executable, ADAPTER, target] + list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=ENV,
            start_new_session=new_session,  # its own process group, as the supervisor runs it
        )
        self.lines = queue.Queue()
        self._stderr = []
        self._stderr_lock = threading.Condition()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_pump.start()

    def _pump_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw)
        self.lines.put(None)  # EOF marker

    def _pump_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._stderr_lock:
                self._stderr.append(raw.decode("utf-8", "replace"))
                self._stderr_lock.notify_all()

    @property
    def stderr(self):
        with self._stderr_lock:
            return "".join(self._stderr)

    def wait_for_stderr(self, text, timeout=READ_TIMEOUT):
        """stderr is read by its own thread: wait (bounded) for `text` rather than racing it."""
        with self._stderr_lock:
            found = self._stderr_lock.wait_for(lambda: text in "".join(self._stderr), timeout)
        if not found:
            raise AssertionError("%r not on stderr within %.1fs; stderr:\n%s" % (text, timeout, self.stderr))

    def send(self, message):
        data = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout=READ_TIMEOUT):
        try:
            raw = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no stdout line within %.1fs; stderr:\n%s" % (timeout, self.stderr))
        if raw is None:
            self.lines.put(None)  # keep reporting EOF to later reads
            raise AssertionError("stdout closed (exit %r); stderr:\n%s" % (self.proc.poll(), self.stderr))
        try:
            message = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise AssertionError("stdout line is not protocol JSON: %r" % raw[:200])
        if not isinstance(message, dict):
            raise AssertionError("stdout line is not a JSON object: %r" % raw[:200])
        return message

    def recv_nothing_for(self, seconds):
        """Assert no protocol line arrives during `seconds`."""
        try:
            raw = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        if raw is None:
            self.lines.put(None)
            return
        raise AssertionError("unexpected stdout line: %r" % raw[:300])

    def expect_ready(self):
        message = self.recv()
        if message != READY:
            raise AssertionError("first line is not ready: %r" % (message,))
        return self

    def task(self, req_id, payload, stream=False):
        message = {"id": req_id, "type": "task", "payload": payload}
        if stream:
            message["stream"] = True
        self.send(message)

    def until_response(self, req_id, timeout=READ_TIMEOUT):
        """Read up to the response to req_id: (its chunks' data, the response, the other lines read meanwhile)."""
        chunks, others = [], []
        while True:
            message = self.recv(timeout)
            if message.get("id") == req_id and message.get("type") == "chunk":
                chunks.append(message["data"])
            elif message.get("id") == req_id and "status" in message:
                return chunks, message, others
            else:
                others.append(message)

    def call(self, req_id, payload, timeout=READ_TIMEOUT):
        self.task(req_id, payload)
        response = self.recv(timeout)
        if response.get("id") != req_id:
            raise AssertionError("expected a response to %r, got %r" % (req_id, response))
        return response

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout=READ_TIMEOUT):
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("adapter did not exit within %.1fs; stderr:\n%s" % (timeout, self.stderr))
        # The exit may come before the stderr thread has read the last lines: wait (bounded) for it to reach the
        # pipe's end, so that `stderr` holds everything the adapter wrote (a loaded machine lost the last line).
        self._stderr_pump.join(READ_TIMEOUT)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def group_members(pgid):
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(name))
    return members


def run_once(target, *args, cwd=None, stdin=b""):
    """Run the adapter to completion (load-failure and --check cases)."""
    return subprocess.run(
        [sys.executable, ADAPTER, target] + list(args),
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=ENV,
        timeout=READ_TIMEOUT,
    )


class AdapterTestCase(unittest.TestCase):
    def start(self, target, *args, cwd=None, new_session=False):
        agent = AgentProcess(target, *args, cwd=cwd, new_session=new_session)
        self.addCleanup(agent.kill)
        return agent.expect_ready()

    def shutdown(self, agent):
        agent.send({"type": "shutdown"})
        agent.close_stdin()
        self.assertEqual(agent.wait(), 0, agent.stderr)


class ProtocolTests(AdapterTestCase):
    def test_ready_is_the_first_line(self):
        agent = self.start(fixture("echo_agent.py"))  # start() asserts it
        self.shutdown(agent)

    def test_sync_echo(self):
        agent = self.start(fixture("echo_agent.py"))
        payload = {"text": "héllo ✓ 你好", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
        self.assertEqual(agent.call("r1", payload), {"id": "r1", "status": "ok", "result": payload})
        self.assertEqual(agent.call("r2", None)["result"], None)  # null payload is fine
        self.shutdown(agent)

    def test_missing_payload_is_null(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send({"id": "r1", "type": "task"})
        self.assertEqual(agent.recv(), {"id": "r1", "status": "ok", "result": None})

    def test_async_echo(self):
        agent = self.start(fixture("async_agent.py"))
        payload = {"sleep": 0.01, "text": "async ✓"}
        self.assertEqual(agent.call("a1", payload), {"id": "a1", "status": "ok", "result": payload})
        self.shutdown(agent)

    def test_async_tasks_run_concurrently(self):
        agent = self.start(fixture("async_agent.py"))
        started = time.monotonic()
        for i in range(5):
            agent.task("c%d" % i, {"sleep": 0.3, "i": i})
        ids = {agent.recv()["id"] for _ in range(5)}
        elapsed = time.monotonic() - started
        self.assertEqual(ids, {"c%d" % i for i in range(5)})
        self.assertLess(elapsed, 1.5, "5 x 0.3 s async tasks took %.2fs: not concurrent" % elapsed)

    def test_sync_tasks_run_concurrently(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        started = time.monotonic()
        for i in range(5):
            agent.task("s%d" % i, {"sleep": 0.3})
        ids = {agent.recv()["id"] for _ in range(5)}
        elapsed = time.monotonic() - started
        self.assertEqual(ids, {"s%d" % i for i in range(5)})
        self.assertLess(elapsed, 1.5, "5 x 0.3 s sync tasks took %.2fs: not concurrent" % elapsed)

    def test_responses_in_completion_order(self):
        agent = self.start(fixture("async_agent.py"))
        agent.task("slow", {"sleep": 0.5})
        agent.task("fast", {"sleep": 0.05})
        self.assertEqual(agent.recv()["id"], "fast")
        self.assertEqual(agent.recv()["id"], "slow")

    def test_ping_reports_health(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.call("t1", 1)
        agent.call("t2", 2)
        agent.send({"id": "p1", "type": "ping"})
        response = agent.recv()
        self.assertEqual(response["id"], "p1")
        self.assertEqual(response["status"], "ok")
        health = response["result"]["health"]
        self.assertEqual(set(health), {"uptime_seconds", "total_requests", "memory_mb", "cpu_percent"})
        self.assertEqual(health["total_requests"], 2)  # tasks only, not pings
        self.assertIsInstance(health["uptime_seconds"], float)
        self.assertGreater(health["uptime_seconds"], 0.0)
        self.assertIsInstance(health["memory_mb"], float)
        self.assertGreater(health["memory_mb"], 1.0)
        self.assertIsInstance(health["cpu_percent"], float)
        self.assertGreaterEqual(health["cpu_percent"], 0.0)

    def test_ping_answered_while_blocking_sync_task_runs(self):
        agent = self.start(fixture("echo_agent.py:busy_echo"))
        agent.task("busy", {"busy": 2.0})  # holds the GIL, in slices, for 2 s
        time.sleep(0.2)
        for n in range(3):
            sent = time.monotonic()
            agent.send({"id": "p%d" % n, "type": "ping"})
            response = agent.recv(timeout=1.5)
            latency = time.monotonic() - sent
            self.assertEqual(response["id"], "p%d" % n)
            self.assertLess(latency, 0.5, "ping took %.3fs while a sync task ran" % latency)
            time.sleep(0.1)
        response = agent.recv(timeout=5)
        self.assertEqual((response["id"], response["status"]), ("busy", "ok"))

    def test_ping_answered_while_sleeping_sync_tasks_fill_the_pool(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        for i in range(40):  # more than the pool has workers
            agent.task("s%d" % i, {"sleep": 1.0})
        time.sleep(0.1)
        agent.send({"id": "ping", "type": "ping"})
        # Answered before any task: not queued behind the pool (an order, not a latency a busy machine stretches).
        self.assertEqual(agent.recv(timeout=5)["id"], "ping")
        ids = {agent.recv()["id"] for _ in range(40)}
        self.assertEqual(len(ids), 40)

    def test_cancel_suppresses_async_response(self):
        agent = self.start(fixture("async_agent.py"))
        agent.task("doomed", {"sleep": 0.6, "tag": "doomed"})
        agent.task("kept", {"sleep": 0.3, "tag": "kept"})
        # Not a sleep: on a loaded machine the tasks and the cancel could be read at once, and a task cancelled
        # before its first step never runs its except clause. The tasks' first steps are queued on the loop before
        # this ping is answered, so a cancel sent after the answer comes after them.
        agent.send({"id": "started", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "started")
        agent.send({"id": "doomed", "type": "cancel"})
        self.assertEqual(agent.recv()["id"], "kept")
        agent.recv_nothing_for(1.0)  # "doomed" would have answered at ~0.6 s
        agent.wait_for_stderr("fixture: cancelled 'doomed'")  # the asyncio task really was cancelled
        agent.send({"id": "p", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "p")
        self.assertEqual(agent.call("after", {"x": 1})["result"], {"x": 1})
        self.shutdown(agent)

    def test_cancel_suppresses_sync_response(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        agent.task("doomed", {"sleep": 0.4})
        time.sleep(0.1)
        agent.send({"id": "doomed", "type": "cancel"})
        agent.recv_nothing_for(0.8)
        self.assertEqual(agent.call("after", {"sleep": 0})["result"], {"sleep": 0})
        self.shutdown(agent)

    def test_pings_fail_while_cancelled_callbacks_hold_every_thread(self):
        # A def callback cannot be interrupted: cancelled ones that never return would leave no thread
        # for any task, while pings were answered and the supervisor saw a healthy agent.
        release = os.path.join(tempfile.mkdtemp(), "release")
        self.addCleanup(shutil.rmtree, os.path.dirname(release))
        agent = self.start(fixture("stuck_agent.py:until_file"))
        workers = 32
        for n in range(workers):
            agent.task("t%d" % n, {"tag": "t%d" % n, "file": release})
        for n in range(workers):
            agent.wait_for_stderr("fixture: started t%d\n" % n)
        agent.send({"id": "full", "type": "ping"})
        self.assertEqual(agent.recv()["status"], "ok")  # busy is not stuck
        for n in range(workers - 1):
            agent.send({"id": "t%d" % n, "type": "cancel"})
        agent.send({"id": "one-left", "type": "ping"})
        self.assertEqual(agent.recv()["status"], "ok")  # one thread's task still has a caller
        agent.send({"id": "t%d" % (workers - 1), "type": "cancel"})
        agent.send({"id": "stuck", "type": "ping"})
        stuck = agent.recv()
        self.assertEqual((stuck["id"], stuck["status"], stuck["error"]["type"]), ("stuck", "error", "AdapterStuck"))
        self.assertIn("all 32 worker threads are held by def callbacks whose tasks were cancelled", stuck["error"]["message"])
        agent.wait_for_stderr("warning: all 32 worker threads are held")
        agent.task("after", {"tag": "after", "hang": False})
        agent.recv_nothing_for(0.3)  # no thread takes it
        with open(release, "w"):
            pass
        # The cancelled callbacks return (their answers dropped); a freed thread runs the waiting task.
        self.assertEqual(agent.recv()["id"], "after")
        agent.send({"id": "freed", "type": "ping"})
        self.assertEqual(agent.recv()["status"], "ok")
        agent.wait_for_stderr("a cancelled callback returned: a worker thread is free again")
        self.shutdown(agent)

    def test_cancel_of_unknown_id_is_harmless(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send({"id": "never-sent", "type": "cancel"})
        self.assertEqual(agent.call("r", 5)["result"], 5)

    def test_exception_becomes_error_response(self):
        agent = self.start(fixture("raising_agent.py"))
        response = agent.call("e1", {"k": 1})
        self.assertEqual(response["status"], "error")
        error = response["error"]
        self.assertEqual(error["type"], "ValueError")
        self.assertEqual(error["message"], "bad payload: {'k': 1}")
        self.assertIn("Traceback", error["stack"])
        self.assertIn("raising_agent.py", error["stack"])
        self.assertIn("_validate", error["stack"])
        self.assertNotIn("supervisor_adapter.py", error["stack"])  # only the user's frames
        self.assertEqual(agent.call("e2", 2)["status"], "error")  # still serving
        self.shutdown(agent)

    def test_async_exception_becomes_error_response(self):
        agent = self.start(fixture("raising_agent.py:async_raise"))
        error = agent.call("e1", "missing")["error"]
        self.assertEqual(error["type"], "KeyError")
        self.assertIn("async_raise", error["stack"])

    def test_sys_exit_in_callback_does_not_stop_the_agent(self):
        agent = self.start(fixture("raising_agent.py:exit_now"))
        error = agent.call("x", None)["error"]
        self.assertEqual(error["type"], "SystemExit")
        self.assertEqual(error["message"], "7")
        agent.send({"id": "p", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "p")

    def test_user_output_goes_to_stderr(self):
        agent = self.start(fixture("printing_agent.py"))  # it prints at import time too
        self.assertEqual(agent.call("p1", "hi")["result"], {"printed": True})
        self.shutdown(agent)
        # Every stdout line parsed as protocol (recv would have failed); nothing else is left.
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT))
        for text in (
            "fixture: print at import",
            "fixture: print in callback hi",
            "fixture: sys.stdout.write",
            "fixture: raw write to fd 1",
        ):
            agent.wait_for_stderr(text)

    def test_five_mib_payload_round_trips(self):
        agent = self.start(fixture("echo_agent.py"))
        big = "x" * (5 * 1024 * 1024) + "é✓"
        response = agent.call("big", {"data": big}, timeout=30)
        self.assertEqual(response["status"], "ok")
        self.assertEqual(response["result"]["data"], big)
        self.shutdown(agent)

    def test_bad_lines_are_ignored(self):
        agent = self.start(fixture("echo_agent.py"))
        for line in (
            b"this is not json",
            b"[1, 2, 3]",
            b'"a string"',
            b'{"type": "bogus", "id": "z"}',
            b'{"type": "task", "payload": 1}',  # no id
            b'{"type": "ping", "id": 42}',  # id not a string
            b"\xff\xfe invalid utf-8",
            b"{" * 100000,  # deep nesting
            b"",
            b"   ",
        ):
            agent.send(line)
        self.assertEqual(agent.call("ok", {"still": "alive"})["result"], {"still": "alive"})
        self.assertIsNone(agent.proc.poll())
        agent.wait_for_stderr("not JSON")
        agent.wait_for_stderr("unknown type")
        self.shutdown(agent)

    def test_crlf_line_endings_are_accepted(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send(b'{"id":"w","type":"task","payload":"crlf"}\r')
        self.assertEqual(agent.recv()["result"], "crlf")

    def test_unserialisable_result(self):
        for function in ("handle_request", "not_a_number", "circular"):
            with self.subTest(function=function):
                agent = self.start(fixture("unserialisable_agent.py:" + function))
                response = agent.call("u", None)
                self.assertEqual(response["status"], "error")
                self.assertEqual(response["error"]["type"], "SerializationError")
                self.assertIn("not JSON-serialisable", response["error"]["message"])
                self.assertEqual(agent.call("again", None)["error"]["type"], "SerializationError")
                self.shutdown(agent)

    def test_lone_surrogate_in_result_is_escaped(self):
        agent = self.start(fixture("unserialisable_agent.py:lone_surrogate"))
        self.assertEqual(agent.call("s", None)["result"], "bad \udc80 byte")

    def test_sync_callback_returning_a_coroutine_is_awaited(self):
        agent = self.start(fixture("echo_agent.py:returns_coroutine"))
        self.assertEqual(agent.call("c", 3)["result"], {"awaited": 3})

    def test_callable_objects(self):
        agent = self.start(fixture("echo_agent.py:Greeter"))  # the class takes no argument
        error = agent.call("g", None)["error"]
        self.assertEqual(error["type"], "TypeError")  # a wrong signature is an error response, not a crash
        self.assertIn("Greeter", error["message"])
        agent = self.start(fixture("async_agent.py:async_callable"))
        self.assertEqual(agent.call("a", 1)["result"], {"from": "AsyncCallable", "payload": 1})


class LifecycleTests(AdapterTestCase):
    def test_shutdown_drains_in_flight_tasks(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        agent.task("inflight", {"sleep": 0.5})
        time.sleep(0.05)
        agent.send({"type": "shutdown"})
        agent.close_stdin()
        response = agent.recv(timeout=5)
        self.assertEqual((response["id"], response["status"]), ("inflight", "ok"))
        self.assertEqual(agent.wait(), 0)

    def test_shutdown_drains_async_tasks(self):
        agent = self.start(fixture("async_agent.py"))
        for i in range(3):
            agent.task("a%d" % i, {"sleep": 0.3})
        agent.send({"type": "shutdown"})
        agent.close_stdin()
        self.assertEqual({agent.recv()["id"] for _ in range(3)}, {"a0", "a1", "a2"})
        self.assertEqual(agent.wait(), 0)

    def test_shutdown_without_stdin_eof_exits(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        agent.task("inflight", {"sleep": 0.3})
        agent.send({"type": "shutdown"})
        agent.task("late", {"sleep": 0})  # stdin still open: refused, not dropped
        responses = {}
        for _ in range(2):
            response = agent.recv(timeout=5)
            responses[response["id"]] = response
        self.assertEqual(responses["late"]["error"]["type"], "AdapterShuttingDown")
        self.assertEqual(responses["inflight"]["status"], "ok")
        self.assertEqual(agent.wait(), 0)

    def test_stdin_eof_exits_zero(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.close_stdin()
        self.assertEqual(agent.wait(), 0)

    def test_shutdown_then_eof_drains_a_running_task(self):
        for function in ("sleep_sync", "sleep_async"):
            with self.subTest(function=function):
                agent = self.start(fixture("stuck_agent.py:" + function))
                agent.task("inflight", {"sleep": 0.5, "tag": "inflight"})
                agent.wait_for_stderr("fixture: started inflight")
                agent.send({"type": "shutdown"})
                agent.close_stdin()
                response = agent.recv(timeout=5)
                self.assertEqual((response["id"], response["status"]), ("inflight", "ok"))
                self.assertEqual(response["result"], {"sleep": 0.5, "tag": "inflight"})
                self.assertEqual(agent.wait(), 0)

    def test_unterminated_last_line_before_eof_is_handled(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.proc.stdin.write(b'{"id":"tail","type":"ping"}')
        agent.close_stdin()
        self.assertEqual(agent.recv()["id"], "tail")
        self.assertEqual(agent.wait(), 0)

    def test_unterminated_shutdown_before_eof_still_drains(self):
        agent = self.start(fixture("stuck_agent.py:sleep_sync"))
        agent.task("inflight", {"sleep": 0.3, "tag": "inflight"})
        agent.wait_for_stderr("fixture: started inflight")
        agent.proc.stdin.write(b'{"type":"shutdown"}')
        agent.close_stdin()
        self.assertEqual(agent.recv(timeout=5)["status"], "ok")
        self.assertEqual(agent.wait(), 0)

    def test_shutdown_does_not_wait_for_cancelled_blocking_callback(self):
        agent = self.start(fixture("echo_agent.py:sleep_echo"))
        agent.task("stuck", {"sleep": 30})
        time.sleep(0.1)
        agent.send({"id": "stuck", "type": "cancel"})
        started = time.monotonic()
        agent.send({"type": "shutdown"})
        agent.close_stdin()
        self.assertEqual(agent.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT))  # no response for "stuck"

    def test_exits_when_stdout_reader_is_gone(self):
        # A raw pipe the test owns outright: closing a pumped proc.stdout would deadlock on its lock.
        read_end, write_end = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, ADAPTER, fixture("echo_agent.py")],
            stdin=subprocess.PIPE,
            stdout=write_end,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        os.close(write_end)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait(), proc.stdin.close()))
        ready = b""
        deadline = time.monotonic() + READ_TIMEOUT
        while not ready.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            ready += chunk
        self.assertEqual(json.loads(ready), READY)
        os.close(read_end)  # the supervisor's reader is gone
        try:
            proc.stdin.write(b'{"id":"r","type":"task","payload":1}\n')
            proc.stdin.flush()
        except OSError:
            pass
        # The failed write alone must end the agent: stdin stays open here.
        try:
            self.assertEqual(proc.wait(timeout=READ_TIMEOUT), 0)
        except subprocess.TimeoutExpired:
            self.fail("adapter kept running after its stdout reader went away")


class EofWithoutShutdownTests(AdapterTestCase):
    """stdin EOF without `shutdown`: nobody can receive results (the supervisor was killed), so the adapter cancels
    what runs and exits within 1 s, even when a callback cannot be interrupted. The bound asserted is 3 s, room for
    a loaded machine; every task would take 60 s."""

    BOUND = 3.0

    def abandon(self, function, payload=None, tag="t1"):
        """Start a task, wait until it runs, close stdin; return (agent, exit code, seconds to exit)."""
        agent = self.start(fixture("stuck_agent.py:" + function), new_session=True)
        agent.task(tag, dict({"tag": tag}, **(payload or {})))
        agent.wait_for_stderr("fixture: started %s" % tag)
        started = time.monotonic()
        agent.close_stdin()
        code = agent.wait(timeout=10)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, self.BOUND, "exit took %.2fs after stdin EOF; stderr:\n%s" % (elapsed, agent.stderr))
        self.assertEqual(group_members(agent.proc.pid), [], "processes of the agent's group are left")
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT), "a cancelled task must send nothing")
        return agent, code, elapsed

    def test_sync_callback_sleeping(self):
        agent, code, _ = self.abandon("sleep_sync")
        self.assertEqual(code, 4, agent.stderr)
        self.assertIn("without shutdown", agent.stderr)

    def test_sync_callback_in_a_blocking_read(self):
        agent, code, _ = self.abandon("read_sync")
        self.assertEqual(code, 4, agent.stderr)

    def test_many_sync_callbacks(self):
        agent = self.start(fixture("stuck_agent.py:sleep_sync"), new_session=True)
        for i in range(5):
            agent.task("s%d" % i, {"tag": "s%d" % i})
        for i in range(5):
            agent.wait_for_stderr("fixture: started s%d" % i)
        started = time.monotonic()
        agent.close_stdin()
        self.assertEqual(agent.wait(timeout=10), 4, agent.stderr)
        self.assertLess(time.monotonic() - started, self.BOUND)

    def test_async_callback_is_cancelled(self):
        agent, code, _ = self.abandon("sleep_async")
        self.assertEqual(code, 4, agent.stderr)
        agent.wait_for_stderr("fixture: cancelled t1")  # the asyncio task really was cancelled, and unwound

    def test_async_callback_that_ignores_cancellation(self):
        agent, code, _ = self.abandon("ignore_cancel")
        self.assertEqual(code, 4, agent.stderr)
        agent.wait_for_stderr("fixture: ignored a cancel of t1")

    def test_async_callback_that_blocks_the_event_loop(self):
        agent, code, _ = self.abandon("block_loop")
        self.assertEqual(code, 4, agent.stderr)

    def test_answers_sent_before_eof_are_kept(self):
        agent = self.start(fixture("stuck_agent.py:sleep_async"), new_session=True)
        agent.task("quick", {"sleep": 0, "tag": "quick"})
        self.assertEqual(agent.recv()["id"], "quick")
        agent.task("slow", {"tag": "slow"})
        agent.wait_for_stderr("fixture: started slow")
        agent.send({"id": "p", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "p")
        agent.close_stdin()
        self.assertEqual(agent.wait(timeout=10), 4, agent.stderr)
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT))


# Callbacks written to a temporary directory for the tests below. A "gate" is a FIFO: a callback that opens it for
# reading blocks until the test (or another callback) opens it for writing, so tests order events without timing them.
GATES = """
import os
import sys


def handle_request(payload):
    if isinstance(payload, dict) and "wait" in payload:
        sys.stderr.write("gate: waiting %s\\n" % payload["tag"])
        sys.stderr.flush()
        with open(payload["wait"], "rb") as gate:
            gate.read()
        return {"released": payload["tag"]}
    if isinstance(payload, dict) and "open" in payload:
        with open(payload["open"], "wb") as gate:
            gate.write(b"go")
        return {"opened": payload["tag"]}
    return payload


def returns_a_coroutine(payload):
    import asyncio

    async def later():
        try:
            await asyncio.sleep(payload["sleep"])
        except asyncio.CancelledError:
            sys.stderr.write("gate: coroutine cancelled\\n")
            sys.stderr.flush()
            raise
        return payload

    return later()
"""

# Records, as it is imported (before `ready`), which modules the interpreter has loaded.
IMPORTS_SEEN = """
import sys

SEEN = sorted(sys.modules)


def handle_request(payload):
    return SEEN
"""


class ReaderTests(AdapterTestCase):
    """A `def` callback runs in the thread that read its task; these check that stdin is read, and other tasks run,
    while it blocks, and that responses held back to share a write are not held back behind it."""

    def module(self, source, name="gates"):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, name + ".py")
        with open(path, "w") as f:
            f.write(source)
        return path

    def gate(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "gate")
        os.mkfifo(path)
        return path

    def release(self, gate):
        with open(gate, "wb") as f:  # blocks until the callback has the gate open
            f.write(b"go")

    @staticmethod
    def task_line(req_id, payload):
        return json.dumps({"id": req_id, "type": "task", "payload": payload}, ensure_ascii=False).encode("utf-8")

    def test_ping_answered_while_a_sync_callback_blocks(self):
        agent = self.start(self.module(GATES))
        gate = self.gate()
        agent.task("blocked", {"wait": gate, "tag": "blocked"})
        agent.wait_for_stderr("gate: waiting blocked")
        for n in range(3):
            agent.send({"id": "p%d" % n, "type": "ping"})
            # The task cannot answer before its gate opens: each ping's answer is the next line.
            self.assertEqual(agent.recv()["id"], "p%d" % n)
        agent.task("echo", {"x": 1})
        self.assertEqual(agent.recv()["id"], "echo")  # and other tasks run
        self.release(gate)
        self.assertEqual(agent.recv(), {"id": "blocked", "status": "ok", "result": {"released": "blocked"}})
        self.shutdown(agent)

    def test_tasks_read_with_a_blocking_one_run_beside_it(self):
        # One write, so most likely one read: the reader starts the first task itself, and the task that opens its
        # gate comes after ten others in the same chunk. It must reach another thread while the first one blocks,
        # or neither ever answers.
        agent = self.start(self.module(GATES))
        gate = self.gate()
        lines = [self.task_line("waits", {"wait": gate, "tag": "waits"})]
        lines += [self.task_line("e%d" % i, i) for i in range(10)]
        lines.append(self.task_line("opens", {"open": gate, "tag": "opens"}))
        agent.send(b"\n".join(lines))
        responses = {}
        for _ in range(12):
            response = agent.recv()
            responses[response["id"]] = response
        self.assertEqual(set(responses), {"waits", "opens"} | {"e%d" % i for i in range(10)})
        self.assertEqual(responses["waits"]["result"], {"released": "waits"})
        self.assertEqual([responses["e%d" % i]["result"] for i in range(10)], list(range(10)))
        self.shutdown(agent)

    def test_a_response_held_back_for_a_shared_write_is_not_held_behind_a_blocking_callback(self):
        agent = self.start(self.module(GATES))
        gate = self.gate()
        agent.send(self.task_line("first", "fast") + b"\n" + self.task_line("waits", {"wait": gate, "tag": "waits"}))
        self.assertEqual(agent.recv(), {"id": "first", "status": "ok", "result": "fast"})  # while "waits" blocks
        self.release(gate)
        self.assertEqual(agent.recv()["id"], "waits")
        self.shutdown(agent)

    def test_a_burst_in_one_write_is_answered_once_each(self):
        agent = self.start(fixture("echo_agent.py"))
        lines = [self.task_line("b%d" % i, {"i": i, "text": "é✓"}) for i in range(500)]
        lines.insert(250, json.dumps({"id": "ping", "type": "ping"}).encode())
        agent.send(b"\n".join(lines))
        seen = {}
        for _ in range(501):
            response = agent.recv()
            self.assertNotIn(response["id"], seen)
            seen[response["id"]] = response
        self.assertEqual(seen["ping"]["result"]["health"]["total_requests"], 250)  # answered in its place
        self.assertEqual([seen["b%d" % i]["result"]["i"] for i in range(500)], list(range(500)))
        self.shutdown(agent)

    def test_async_burst_in_one_write(self):
        agent = self.start(fixture("async_agent.py"))
        agent.send(b"\n".join(self.task_line("a%d" % i, {"i": i}) for i in range(200)))
        self.assertEqual({agent.recv()["id"] for _ in range(200)}, {"a%d" % i for i in range(200)})
        self.shutdown(agent)

    def test_shutdown_after_a_burst_exits_without_stdin_eof(self):
        # Threads the burst started (the pool, the watcher) must not hold the exit: stdin stays open here.
        agent = self.start(self.module(GATES))
        gate = self.gate()
        agent.task("waits", {"wait": gate, "tag": "waits"})
        agent.wait_for_stderr("gate: waiting waits")
        agent.send(b"\n".join(self.task_line("e%d" % i, i) for i in range(100)))
        self.assertEqual({agent.recv()["id"] for _ in range(100)}, {"e%d" % i for i in range(100)})
        self.release(gate)
        self.assertEqual(agent.recv()["id"], "waits")
        agent.send({"type": "shutdown"})
        self.assertEqual(agent.wait(), 0, agent.stderr)
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT))

    def test_idle_shutdown_exits_without_stdin_eof(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send({"type": "shutdown"})
        self.assertEqual(agent.wait(), 0, agent.stderr)

    def test_cancelled_coroutine_of_a_sync_callback(self):
        agent = self.start(self.module(GATES) + ":returns_a_coroutine")
        agent.task("doomed", {"sleep": 60})
        agent.task("kept", {"sleep": 0})
        self.assertEqual(agent.recv()["id"], "kept")
        agent.send({"id": "doomed", "type": "cancel"})
        agent.wait_for_stderr("gate: coroutine cancelled")
        agent.send({"type": "shutdown"})
        self.assertEqual(agent.wait(), 0, agent.stderr)
        self.assertIsNone(agent.lines.get(timeout=READ_TIMEOUT))  # nothing for "doomed"

    def test_multibyte_character_split_across_writes(self):
        agent = self.start(fixture("echo_agent.py"))
        line = self.task_line("u", "café ✓ 你好") + b"\n"
        cut = line.index("é".encode("utf-8")) + 1  # inside the two bytes of "é"
        agent.proc.stdin.write(line[:cut])
        agent.proc.stdin.flush()
        time.sleep(0.05)  # most likely two reads; the answer is the same either way
        agent.proc.stdin.write(line[cut:])
        agent.proc.stdin.flush()
        self.assertEqual(agent.recv()["result"], "café ✓ 你好")

    def test_bad_utf8_line_among_good_lines_in_one_write(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send(self.task_line("a", "é") + b"\n\xff\xfe not utf-8\n" + self.task_line("b", "✓"))
        self.assertEqual({agent.recv()["id"], agent.recv()["id"]}, {"a", "b"})
        agent.wait_for_stderr("not JSON")

    def test_spaces_around_a_message_and_text_after_it(self):
        agent = self.start(fixture("echo_agent.py"))
        agent.send(b'  {"id":"spaced","type":"ping"}  ')
        self.assertEqual(agent.recv()["id"], "spaced")
        agent.send(b'{"id":"trailing","type":"ping"} and more')
        agent.send({"id": "after", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "after")  # the line with text after its message was ignored
        agent.wait_for_stderr("not JSON")

    def test_nothing_heavy_is_imported_before_the_callback_loads(self):
        # Spawn to `ready` should cost the interpreter's start and the user's module, nothing of the adapter's.
        bare = subprocess.run(
            [sys.executable, "-c", "import sys; print(' '.join(sorted(sys.modules)))"],
            capture_output=True, env=ENV, timeout=READ_TIMEOUT,
        ).stdout.decode().split()
        agent = self.start(self.module(IMPORTS_SEEN, "imports_seen"))
        added = set(agent.call("m", None)["result"]) - set(bare)
        heavy = {"json", "asyncio", "threading", "inspect", "traceback", "concurrent.futures", "importlib.util", "queue"}
        self.assertEqual(added & heavy, set(), "imported before the callback: %s" % sorted(added))


STREAM = fixture("stream_agent.py")


class ProtocolV11Tests(AdapterTestCase):
    """Protocol 1.1: features in ready, streaming generators, the context, checkpoint and restore."""

    def stream(self, agent, req_id, payload):
        agent.task(req_id, payload, stream=True)
        return agent.until_response(req_id)

    def test_ready_announces_the_features(self):
        agent = AgentProcess(fixture("echo_agent.py"))
        self.addCleanup(agent.kill)
        message = agent.recv()
        self.assertEqual(message, {"type": "ready", "protocol": 1, "features": ["stream", "checkpoint", "publish"]})

    def test_sync_generator_streams_its_chunks_then_its_return_value(self):
        agent = self.start(STREAM + ":tokens_sync")
        chunks, response, others = self.stream(agent, "s", {"tokens": ["Hel", "lo", {"n": 1}, None], "tag": "s"})
        self.assertEqual(chunks, ["Hel", "lo", {"n": 1}, None])
        self.assertEqual(response, {"id": "s", "status": "ok", "result": {"count": 4}})
        self.assertEqual(others, [])
        # A stream in flight is drained by shutdown, as any task.
        agent.task("drained", {"tokens": [1, 2, 3], "delay": 0.05}, stream=True)
        agent.send({"type": "shutdown"})
        chunks, response, _ = agent.until_response("drained")
        self.assertEqual((chunks, response["result"]), ([1, 2, 3], {"count": 3}))
        self.assertEqual(agent.wait(), 0, agent.stderr)

    def test_async_generator_streams_its_chunks_then_the_final_value(self):
        agent = self.start(STREAM + ":tokens_async")
        chunks, response, others = self.stream(agent, "a", {"tokens": ["Hel", "lo", "!"], "delay": 0.01, "tag": "a"})
        self.assertEqual(chunks, ["Hel", "lo", "!"])
        self.assertEqual(response, {"id": "a", "status": "ok", "result": {"count": 3}})
        self.assertEqual(others, [])
        agent.wait_for_stderr("stream: closed a after 3")  # Final closed the generator...
        self.assertNotIn("stream: after Final", agent.stderr)  # ...without asking it for more
        # Without Final an async generator's result is null.
        chunks, response, _ = self.stream(agent, "b", {"tokens": ["x"], "no_final": True, "tag": "b"})
        self.assertEqual((chunks, response["result"]), (["x"], None))
        self.shutdown(agent)

    def test_a_generator_for_a_task_without_stream_returns_the_list(self):
        for function in ("tokens_sync", "tokens_async"):
            with self.subTest(function=function):
                agent = self.start(STREAM + ":" + function)
                response = agent.call("v1", {"tokens": ["a", "b", "c"], "delay": 0.01})
                self.assertEqual(response, {"id": "v1", "status": "ok", "result": ["a", "b", "c"]})  # no chunk before
                self.assertEqual(agent.call("empty", {"tokens": []})["result"], [])
                self.shutdown(agent)

    def test_cancel_mid_stream_stops_the_generator_and_sends_nothing_more(self):
        forever = {"delay": 0.02, "tag": "doomed"}  # yields 0, 1, 2... forever
        for function, payload, is_async in (
            ("tokens_sync", forever, False),
            ("tokens_async", forever, True),
            # A `def` that returns an async generator, iterated on the background loop: the cancel reaches it as
            # CancelledError, or first as the flag checked between its yields (it is then closed): either stops it.
            ("dispatch", {"agen": forever}, False),
        ):
            with self.subTest(function=function):
                agent = self.start(STREAM + ":" + function)
                agent.task("doomed", payload, stream=True)
                received = [agent.recv() for _ in range(3)]
                self.assertEqual([(m["id"], m["type"], m["data"]) for m in received], [("doomed", "chunk", i) for i in range(3)])
                agent.send({"id": "doomed", "type": "cancel"})
                agent.wait_for_stderr("stream: closed doomed after")  # its finally ran: closed (or cancelled)
                yielded = int(agent.stderr.split("stream: closed doomed after ")[1].split()[0])
                if is_async:
                    self.assertIn("stream: cancelled doomed", agent.stderr)  # CancelledError at its await
                # Sent after the generator closed, so answered after any chunk it wrote before.
                agent.send({"id": "p", "type": "ping"})
                chunks, _, others = agent.until_response("p")
                late = [m for m in others if m.get("id") == "doomed"]
                self.assertTrue(all(m.get("type") == "chunk" for m in late), late)  # no response for it
                self.assertLessEqual(len(received) + len(late), yielded)
                agent.recv_nothing_for(0.1)  # and nothing after the generator closed
                after = {"tokens": [1]} if function != "dispatch" else {"agen": {"tokens": [1], "no_final": True}}
                self.assertEqual(agent.call("after", after)["result"], [1])
                self.shutdown(agent)

    def test_an_error_after_chunks_is_the_response(self):
        agent = self.start(STREAM + ":tokens_sync")
        chunks, response, _ = self.stream(agent, "e", {"tokens": [1, 2, 3], "raise_after": 2})
        self.assertEqual(chunks, [1, 2])
        self.assertEqual((response["status"], response["error"]["type"]), ("error", "RuntimeError"))
        self.assertEqual(response["error"]["message"], "failed after 2")
        self.assertIn("tokens_sync", response["error"]["stack"])
        agent = self.start(STREAM + ":tokens_async")
        chunks, response, _ = self.stream(agent, "u", {"tokens": [1, 2], "unserialisable_after": 1, "tag": "u"})
        self.assertEqual(chunks, [1])
        self.assertEqual(response["error"]["type"], "SerializationError")
        self.assertIn("streamed chunk", response["error"]["message"])
        agent.wait_for_stderr("stream: closed u after 1")  # the generator was closed

    def test_normal_task_and_pings_while_a_stream_runs(self):
        for function in ("dispatch", "async_dispatch"):
            with self.subTest(function=function):
                agent = self.start(STREAM + ":" + function)
                agent.task("s", {"gen": {"tokens": list(range(6)), "delay": 0.05}}, stream=True)
                self.assertEqual(agent.recv(), {"id": "s", "type": "chunk", "data": 0})
                agent.task("plain", "hi")
                agent.send({"id": "p", "type": "ping"})
                chunks, response, others = agent.until_response("s")
                self.assertEqual(chunks, list(range(1, 6)))  # in order, the rest of them
                self.assertEqual({m["id"] for m in others}, {"plain", "p"})  # both before the stream's end
                answered = {m["id"]: m for m in others}
                plain = {"plain": "hi", "stream": False} if function == "dispatch" else [{"plain": "hi"}]
                self.assertEqual(answered["plain"]["result"], plain)
                self.assertIn("health", answered["p"]["result"])
                self.assertEqual(response["status"], "ok")
                self.shutdown(agent)

    def test_checkpoints_with_and_without_an_id(self):
        agent = self.start(STREAM + ":with_ctx")
        agent.task("c", {"checkpoints": [{"task": {"page": 3}}, {"agent": {"processed": 1200}}, {"module": [1, "é"]}]})
        _, response, others = agent.until_response("c")
        self.assertEqual(others, [  # in the order made, all before the response
            {"type": "checkpoint", "id": "c", "data": {"page": 3}},
            {"type": "checkpoint", "data": {"processed": 1200}},
            {"type": "checkpoint", "data": [1, "é"]},
        ])
        self.assertEqual(response["status"], "ok")
        # Between the chunks of a stream too, in order.
        agent = self.start(STREAM + ":streams_with_ctx")
        agent.task("s", {"n": 2}, stream=True)
        lines = [agent.recv() for _ in range(5)]
        self.assertEqual(lines, [
            {"type": "checkpoint", "id": "s", "data": {"done": 0}},
            {"id": "s", "type": "chunk", "data": 0},
            {"type": "checkpoint", "id": "s", "data": {"done": 1}},
            {"id": "s", "type": "chunk", "data": 1},
            {"id": "s", "status": "ok", "result": {"stream": True}},
        ])

    def test_a_checkpoint_made_while_the_module_loads_follows_ready(self):
        agent = self.start(fixture("stream_import_checkpoint.py"))  # asserts ready came first
        self.assertEqual(agent.recv(), {"type": "checkpoint", "data": {"loaded": 2}})  # the latest only
        self.assertEqual(agent.call("x", 1)["result"], 1)

    def test_restore_before_the_first_task_is_seen_by_its_callback(self):
        restore = {"type": "restore", "data": {"processed": 1200}, "requests": {"7": {"page": 3}}}
        for function in ("with_ctx", "async_with_ctx"):
            with self.subTest(function=function):
                agent = self.start(STREAM + ":" + function)
                # One write: the restore and the task are most likely read together.
                agent.send(json.dumps(restore).encode() + b"\n" + json.dumps({"id": "t1", "type": "task", "payload": {}}).encode())
                result = agent.recv()["result"]
                self.assertEqual(result["restored"], {"processed": 1200})
                self.assertEqual(result["module_restored"], {"processed": 1200})
                self.assertEqual(result["restored_requests"], {"7": {"page": 3}})
                self.assertEqual(result["module_restored_requests"], {"7": {"page": 3}})
                self.assertIsNone(result["restored_at_import"])  # restore follows ready, after the import
                self.assertEqual((result["id"], result["stream"], result["cancelled"]), ("t1", False, False))
                # A later restore replaces it; one without requests has none.
                agent.send({"type": "restore", "data": 2})
                result = agent.call("t2", {})["result"]
                self.assertEqual((result["restored"], result["restored_requests"]), (2, {}))
                self.shutdown(agent)

    def test_context_detection(self):
        cases = (
            ("keyword_ctx", {"id": "r"}),  # def f(payload, *, ctx)
            ("wrapped_ctx", {"id": "r"}),  # functools.wraps around def f(payload, ctx)
            ("optional_second", {"retries": 3}),  # def f(payload, retries=3): no context
            ("without_ctx", "payload"),  # def f(payload): as before
        )
        for function, expected in cases:
            with self.subTest(function=function):
                agent = self.start(STREAM + ":" + function)
                self.assertEqual(agent.call("r", "payload")["result"], expected)
                agent.kill()

    def test_cancel_sets_the_context_cancelled(self):
        agent = self.start(STREAM + ":with_ctx")
        agent.task("w", {"wait": 30})
        agent.wait_for_stderr("ctx: waiting w")
        agent.send({"id": "w", "type": "cancel"})
        # cancel_event cut the wait short; a checkpoint of a cancelled task is not sent.
        agent.wait_for_stderr("ctx: woke w cancelled=True cut_short=True sent=False")
        agent = self.start(STREAM + ":async_with_ctx")
        agent.task("w", {"wait": 30})
        agent.wait_for_stderr("ctx: waiting w")
        agent.send({"id": "w", "type": "cancel"})
        agent.wait_for_stderr("ctx: cancelled w cancelled=True")
        agent.send({"id": "p", "type": "ping"})
        self.assertEqual(agent.recv()["id"], "p")  # nothing for "w"

    def test_unknown_message_types_are_ignored(self):
        agent = self.start(STREAM + ":tokens_sync")
        for message in (
            {"type": "credit", "id": "s", "n": 5},
            {"type": "credit", "id": "s", "n": 6},
            {"type": "chunk", "id": "s", "data": 1},
            {"type": "checkpoint", "data": 1},
            {"type": ["odd"]},
        ):
            agent.send(message)
        chunks, response, others = self.stream(agent, "s", {"tokens": [1]})
        self.assertEqual((chunks, response["result"], others), ([1], {"count": 1}, []))
        agent.wait_for_stderr("unknown type ['odd']")
        self.assertEqual(agent.stderr.count("unknown type 'credit'"), 1)  # said once per type
        self.shutdown(agent)

    def test_stdin_eof_without_shutdown_stops_a_sync_stream(self):
        agent = self.start(STREAM + ":tokens_sync", new_session=True)
        agent.task("s", {"delay": 0.02, "tag": "s"}, stream=True)
        agent.recv()
        started = time.monotonic()
        agent.close_stdin()
        # Abandoned as any sync callback is: the exit does not wait for its next yield.
        self.assertEqual(agent.wait(), 4, agent.stderr)
        self.assertLess(time.monotonic() - started, EofWithoutShutdownTests.BOUND)
        while True:
            raw = agent.lines.get(timeout=READ_TIMEOUT)
            if raw is None:
                break
            self.assertEqual(json.loads(raw)["type"], "chunk")  # chunks written before the EOF, no response

    def test_a_stream_waits_while_stdout_is_full(self):
        # Nobody reads stdout: one stream's thread blocks writing into the full pipe, the other's chunks queue
        # behind it up to 64 KiB, then it waits. Unbounded, it would yield without end.
        read_end, write_end = os.pipe()
        stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [sys.executable, ADAPTER, STREAM + ":flood"], stdin=subprocess.PIPE, stdout=write_end, stderr=stderr, env=ENV
        )
        os.close(write_end)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait(), proc.stdin.close(), os.close(read_end), stderr.close()))
        for req_id in ("f1", "f2"):
            proc.stdin.write(json.dumps({"id": req_id, "type": "task", "payload": None, "stream": True}).encode() + b"\n")
        proc.stdin.flush()

        def yielded():
            stderr.seek(0)
            return max([int(n) for n in re.findall(rb"flood: (\d+)", stderr.read())] or [0])

        # 64 KiB in the pipe and 64 KiB queued are some 130 chunks of 1 KB, and then nothing more: wait until the
        # count has not moved for 0.3 s (a slow start on a loaded machine is no failure; a count that runs on is).
        last, since, deadline = -1, time.monotonic(), time.monotonic() + READ_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.05)
            count = yielded()
            if count != last:
                last, since = count, time.monotonic()
            elif count >= 60 and time.monotonic() - since >= 0.3:
                break
        self.assertGreaterEqual(last, 60)
        self.assertLess(last, 400, "the generators went on while stdout was full")

    def test_check_reports_an_async_generator_as_async(self):
        result = run_once(STREAM + ":tokens_async", "--check")
        self.assertEqual(json.loads(result.stdout), {"type": "check", "ok": True, "async": True})
        result = run_once(STREAM + ":tokens_sync", "--check")
        self.assertEqual(json.loads(result.stdout), {"type": "check", "ok": True, "async": False})


PUBLISH = fixture("publish_agent.py")


class ProtocolV12Tests(AdapterTestCase):
    """Protocol 1.2: publish, from a task's context, from a thread, and before `ready`."""

    def test_publishes_go_out_before_the_response(self):
        nested = {"job": {"steps": [1, {"deep": [True, None, 2.5]}], "text": "héllo ✓"}, "tags": []}
        for function in ("handle_request", "handle_async"):
            with self.subTest(function=function):
                agent = self.start(PUBLISH + ":" + function)
                agent.task("p", {"op": "publish"})
                self.assertEqual([agent.recv() for _ in range(3)], [
                    {"type": "publish", "topic": "jobs", "payload": {"n": 1}},
                    {"type": "publish", "topic": "reports.daily", "payload": nested},
                    {"id": "p", "status": "ok", "result": {"published": 2}},
                ])
                self.shutdown(agent)

    def test_a_bad_topic_or_payload_raises_in_the_callback_and_the_agent_goes_on(self):
        for function in ("handle_request", "handle_async"):
            with self.subTest(function=function):
                agent = self.start(PUBLISH + ":" + function)
                agent.task("b", {"op": "bad"})
                self.assertEqual(agent.recv(), {"type": "publish", "topic": "jobs", "payload": "still publishing"})
                self.assertEqual(agent.recv(), {"id": "b", "status": "ok", "result": {
                    "caught": ["ValueError", "ValueError", "ValueError", "TypeError", "TypeError", "TypeError"],
                }})
                response = agent.call("r", {"op": "fail"})
                self.assertEqual((response["status"], response["error"]["type"]), ("error", "TypeError"))
                self.assertIn("publish payload is not JSON-serialisable", response["error"]["message"])
                self.assertEqual(agent.call("e", {"op": "echo"})["result"], {"op": "echo"})
                self.shutdown(agent)

    def test_module_level_publish_from_a_thread(self):
        agent = self.start(PUBLISH)
        agent.task("t", {"op": "thread"})
        self.assertEqual(agent.recv(), {"type": "publish", "topic": "from-thread", "payload": [1, 2]})
        self.assertEqual(agent.recv(), {"id": "t", "status": "ok", "result": {"threaded": True}})
        self.shutdown(agent)

    def test_publishes_made_while_the_module_loads_follow_ready(self):
        agent = self.start(fixture("publish_at_load.py"))  # asserts ready came first
        self.assertEqual(agent.recv(), {"type": "publish", "topic": "boot", "payload": {"loaded": 1}})
        self.assertEqual(agent.recv(), {"type": "publish", "topic": "boot", "payload": {"loaded": 2}})
        self.assertEqual(agent.call("x", 1)["result"], 1)
        self.shutdown(agent)


class TargetTests(AdapterTestCase):
    def test_module_function_form_from_cwd(self):
        agent = self.start("pkg_agent.handlers:handle", cwd=FIXTURES)
        self.assertEqual(agent.call("m", "hey")["result"], "HEY!")
        self.shutdown(agent)

    def test_module_form_defaults_to_handle_request(self):
        agent = self.start("echo_agent", cwd=FIXTURES)
        self.assertEqual(agent.call("m", [1])["result"], [1])

    def test_file_path_form_with_sibling_import_from_another_cwd(self):
        with tempfile.TemporaryDirectory() as elsewhere:
            agent = self.start(fixture("sibling_agent.py"), cwd=elsewhere)
            self.assertEqual(agent.call("f", 21)["result"], 42)
            self.shutdown(agent)

    def test_relative_file_path_form(self):
        agent = self.start(os.path.join("python", "sibling_agent.py:handle_request"), cwd=os.path.dirname(FIXTURES))
        self.assertEqual(agent.call("f", "ab")["result"], "abab")

    def test_load_failure_exits_2_with_traceback_on_stderr(self):
        for name, expected in (("broken_syntax.py", "SyntaxError"), ("broken_import.py", "ModuleNotFoundError")):
            with self.subTest(name=name):
                result = run_once(fixture(name))
                self.assertEqual(result.returncode, 2)
                self.assertEqual(result.stdout, b"")
                stderr = result.stderr.decode()
                self.assertIn(expected, stderr)
                self.assertIn(name, stderr)

    def test_a_module_that_exits_while_it_loads_is_said_so(self):
        result = run_once(fixture("exits_at_load.py"))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        stderr = result.stderr.decode()
        self.assertIn("missing API key", stderr)
        # Before, "SystemExit: 3" alone, and the supervisor said "exited with code 2"
        self.assertIn("it called sys.exit(3) while it loaded (the adapter exits 2 for a load that fails)", stderr)

    def test_missing_module_exits_2(self):
        result = run_once("no_such_module_for_adapter_tests:handle", cwd=FIXTURES)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"no_such_module_for_adapter_tests", result.stderr)

    def test_missing_file_exits_2(self):
        result = run_once(fixture("does_not_exist.py"))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"does_not_exist.py", result.stderr)

    def test_missing_function_exits_3_listing_functions(self):
        result = run_once(fixture("echo_agent.py:nope"))
        self.assertEqual(result.returncode, 3)
        self.assertEqual(result.stdout, b"")
        stderr = result.stderr.decode()
        self.assertIn("nope", stderr)
        self.assertIn("handle_request", stderr)
        self.assertIn("sleep_echo", stderr)

    def test_a_missing_or_directory_target_says_so_with_its_absolute_path(self):
        missing = run_once("does_not_exist.py", cwd=FIXTURES)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("no such file: does_not_exist.py (%s)" % fixture("does_not_exist.py"), missing.stderr.decode())
        # A directory without __init__.py is no empty namespace package "without the function", but a wrong target.
        empty = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, empty)
        for target in (os.path.basename(empty), empty):
            result = run_once(target, cwd=os.path.dirname(empty))
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn("%s) is a directory; name the .py file" % empty if target != empty else
                          "%s is a directory; name the .py file" % empty, result.stderr.decode())
        # A package's directory is a module, as before.
        package = run_once("pkg_agent", cwd=FIXTURES)
        self.assertEqual(package.returncode, 3, package.stderr)
        self.assertIn("pkg_agent has no function 'handle_request'", package.stderr.decode())

    def test_a_target_ending_in_a_colon_names_no_function(self):
        result = run_once(fixture("echo_agent.py") + ":")
        self.assertEqual(result.returncode, 3)
        stderr = result.stderr.decode()
        self.assertIn("names no function after its ':' (leave the ':' out for handle_request)", stderr)
        self.assertIn("available functions: Greeter, busy_echo, handle_request", stderr)

    def test_non_callable_attribute_exits_3(self):
        result = run_once(fixture("echo_agent.py:FACTOR"))
        self.assertEqual(result.returncode, 3)
        self.assertIn(b"not callable", result.stderr)

    def test_usage_error(self):
        result = subprocess.run([sys.executable, ADAPTER], capture_output=True, env=ENV, timeout=READ_TIMEOUT)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"usage", result.stderr)


class CheckTests(unittest.TestCase):
    def check(self, target, cwd=None):
        result = run_once(target, "--check", cwd=cwd)
        lines = result.stdout.decode("utf-8").splitlines()
        self.assertEqual(len(lines), 1, "expected exactly one stdout line, got %r" % result.stdout)
        return result.returncode, json.loads(lines[0]), result.stderr.decode("utf-8", "replace")

    def test_check_ok_sync_and_async(self):
        self.assertEqual(self.check(fixture("echo_agent.py"))[:2], (0, {"type": "check", "ok": True, "async": False}))
        self.assertEqual(self.check(fixture("async_agent.py"))[:2], (0, {"type": "check", "ok": True, "async": True}))
        self.assertEqual(self.check(fixture("async_agent.py:async_callable"))[1]["async"], True)
        self.assertEqual(self.check("pkg_agent.handlers:handle", cwd=FIXTURES)[:2], (0, {"type": "check", "ok": True, "async": False}))

    def test_check_keeps_import_time_prints_off_stdout(self):
        code, report, stderr = self.check(fixture("printing_agent.py"))
        self.assertEqual((code, report["ok"]), (0, True))
        self.assertIn("fixture: print at import", stderr)

    def test_check_callback_not_found_lists_public_functions(self):
        code, report, _ = self.check(fixture("echo_agent.py:nope"))
        self.assertEqual(code, 3)
        self.assertEqual(report["type"], "check")
        self.assertIs(report["ok"], False)
        self.assertEqual(report["error"], "callback_not_found")
        self.assertEqual(report["function"], "nope")
        # Sorted; no private names, no imported `join`, no non-callable FACTOR.
        self.assertEqual(report["functions"], ["Greeter", "busy_echo", "handle_request", "returns_coroutine", "sleep_echo"])

    def test_check_default_function_not_found(self):
        code, report, _ = self.check(fixture("sibling_helper.py"))
        self.assertEqual(code, 3)
        self.assertEqual((report["function"], report["functions"]), ("handle_request", ["double"]))

    def test_check_load_failed(self):
        for name, exception in (("broken_syntax.py", "SyntaxError"), ("broken_import.py", "ModuleNotFoundError")):
            with self.subTest(name=name):
                code, report, _ = self.check(fixture(name))
                self.assertEqual(code, 2)
                self.assertEqual((report["type"], report["ok"], report["error"]), ("check", False, "load_failed"))
                self.assertIn(exception, report["message"])
                self.assertIsInstance(report["traceback"], str)
                self.assertIn(name, report["traceback"])
                self.assertEqual(report["exception"], exception)
        _, report, _ = self.check(fixture("broken_import.py"))
        self.assertEqual(report["missing_module"], "supervisor_adapter_fixture_missing_dependency")


if __name__ == "__main__":
    unittest.main()
