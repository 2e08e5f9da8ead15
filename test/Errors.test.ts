import { assert, describe, it } from "@effect/vitest"
import { AdminApiError } from "../src/AdminApi.js"
import { AgentStartupError, AgentStreamError, AgentTimeoutError, isSupervisorError } from "../src/Errors.js"
import { TaskFailedError, TopicError } from "../src/Topic.js"

describe("AgentTimeoutError", () => {
  it("a task: names the caller's timeout, and the part of it spent waiting for a restart", () => {
    const error = new AgentTimeoutError({
      agent: "summarizer",
      requestId: "12",
      operation: "task",
      timeoutMillis: 2000,
      pid: 4242,
      waitedForStartMillis: 1500.4
    })
    assert.strictEqual(
      error.message,
      `Agent "summarizer" (pid 4242) did not answer task 12 within 2000 ms (of which 1500 ms waiting for a restart)`
    )
    assert.include(error.remediation, "cover a restart")
    assert.isTrue(isSupervisorError(error))
  })

  it("a task that did not wait: the message as before, no pid placeholder when there is no pid", () => {
    assert.strictEqual(
      new AgentTimeoutError({ agent: "a", requestId: "3", operation: "ping", timeoutMillis: 500, pid: 1 }).message,
      `Agent "a" (pid 1) did not answer ping 3 within 500 ms`
    )
    const noPid = new AgentTimeoutError({ agent: "a", requestId: "3", operation: "task", timeoutMillis: 500 })
    assert.notInclude(noPid.message, "undefined")
    assert.notInclude(noPid.remediation, "restart")
  })

  it("start: the request timed out waiting for the agent to start, and was not sent", () => {
    const error = new AgentTimeoutError({
      agent: "a",
      requestId: "(not sent)",
      operation: "start",
      timeoutMillis: 2000,
      waitedForStartMillis: 2000
    })
    assert.strictEqual(
      error.message,
      `A request to agent "a" timed out waiting for the agent to start (after 2000 ms); it was not sent`
    )
    assert.notInclude(error.message, "did not answer")
    assert.include(error.remediation, "restart")
    const early = new AgentTimeoutError({
      agent: "a",
      requestId: "(not sent)",
      operation: "start",
      timeoutMillis: 2000,
      waitedForStartMillis: 800
    })
    assert.include(early.message, "after 800 ms of its 2000 ms timeout")
  })
})

describe("streaming errors", () => {
  it("an idle timeout names the stream and its idle timeout", () => {
    const error = new AgentTimeoutError({
      agent: "llm",
      requestId: "7",
      operation: "task",
      timeoutMillis: 500,
      pid: 12,
      idle: true
    })
    assert.strictEqual(
      error.message,
      `Agent "llm" (pid 12) sent nothing on the stream of task 7 for 500 ms (its idle timeout)`
    )
    assert.include(error.remediation, "idleTimeout")
  })

  it("AgentStreamError: the overflow, its bound, and what to do", () => {
    const error = new AgentStreamError({ agent: "llm", requestId: "7", reason: "overflow", maxBufferedChunks: 1024 })
    assert.strictEqual(
      error.message,
      `The stream of task 7 from agent "llm" overflowed: its consumer fell more than 1024 chunks behind; the ` +
        `agent was sent a cancel`
    )
    assert.include(error.remediation, "maxBufferedChunks")
    assert.isTrue(isSupervisorError(error))
  })
})

describe("AgentStartupError", () => {
  it("a spawn failure without a code (as other modules build it) keeps its message and remediation", () => {
    const error = new AgentStartupError({
      agent: "a",
      reason: "spawn_failed",
      command: "/opt/adapter.py",
      detail: "the adapter does not exist"
    })
    assert.strictEqual(error.message, `Agent "a" could not be spawned (/opt/adapter.py): the adapter does not exist`)
    assert.include(error.remediation, "exists and is executable")
  })

  it("a spawn failure with a code: one sentence naming the agent, the command once, the cause", () => {
    const error = new AgentStartupError({
      agent: "a",
      reason: "spawn_failed",
      command: "python3 agent.py",
      program: "python3",
      code: "ENOENT",
      subject: "command",
      searchPath: ["/usr/bin", "/bin"]
    })
    assert.strictEqual(
      error.message,
      "Agent \"a\" could not start `python3 agent.py`: the program is not on PATH (ENOENT); searched: /usr/bin, /bin"
    )
    assert.include(error.remediation, `Install "python3"`)
    const emptyPath = new AgentStartupError({ ...error, searchPath: [] })
    assert.include(emptyPath.message, "PATH is empty")
  })

  it("E2BIG: says which string is over the limit, or that the total is", () => {
    const sizes = {
      argCount: 3000,
      argsBytes: 3 * 1024 * 1024,
      largestArgBytes: 2000,
      envCount: 10,
      envBytes: 900,
      largestEnvName: "PATH",
      largestEnvBytes: 300
    }
    const error = new AgentStartupError({ agent: "a", reason: "spawn_failed", command: "x", code: "E2BIG", sizes })
    assert.include(error.message, "(3 MiB in 3000 arguments)")
    assert.include(error.message, "(900 bytes in 10 variables)")
    assert.include(error.message, "together they are over the system's limit (ARG_MAX)")
  })

  it("a stack trace in the stderr tail: its frames past the third counted, so that its error stays in view", () => {
    const frames = Array.from({ length: 12 }, (_, i) => `    at frame${i} (node:internal/modules/esm/resolve:${i}:1)`)
    const error = new AgentStartupError({
      agent: "a",
      reason: "exited_before_ready",
      command: "node",
      pid: 7,
      exitCode: 2,
      stderr: [
        "[node-adapter] cannot load /app/agents/nope.mjs: Error [ERR_MODULE_NOT_FOUND]: Cannot find module",
        ...frames,
        "later line"
      ]
    })
    assert.strictEqual(
      error.message,
      `Agent "a" (pid 7) exited with code 2 before it sent "ready"\nLast stderr lines:\n  ` + [
        "[node-adapter] cannot load /app/agents/nope.mjs: Error [ERR_MODULE_NOT_FOUND]: Cannot find module",
        ...frames.slice(0, 3),
        "    ... 9 more frame(s)",
        "later line"
      ].join("\n  ")
    )
    // Two stacks: each cut on its own; a Python traceback (no "at" frames) as it is
    const two = new AgentStartupError({
      agent: "a",
      reason: "exited_before_ready",
      command: "node",
      pid: 7,
      exitCode: 1,
      stderr: ["Error: one", ...frames.slice(0, 5), "Error: two", ...frames.slice(0, 4)]
    })
    assert.include(
      two.message,
      ["Error: one", ...frames.slice(0, 3), "    ... 2 more frame(s)", "Error: two"].join("\n  ")
    )
    assert.isTrue(two.message.endsWith(`${frames[2]}\n      ... 1 more frame(s)`))
  })

  it("an agent that exited before ready: what to do follows from what it left (stderr, or a clean exit)", () => {
    const exited = (exitCode: number, stderr: Array<string>) =>
      new AgentStartupError({ agent: "a", reason: "exited_before_ready", command: "true", pid: 7, exitCode, stderr })
    assert.include(exited(1, ["boom"]).remediation, "Read the stderr lines above")
    // Nothing above to read: not sent there
    assert.include(exited(0, []).remediation, `exited (code 0) without printing {"type":"ready","protocol":1}`)
    assert.include(exited(0, []).remediation, `is "true" an agent that speaks the protocol`)
    assert.strictEqual(
      exited(3, []).remediation,
      "The agent wrote nothing on stderr before it exited: run its command by hand to reproduce."
    )
  })

  it("the other reasons are unchanged", () => {
    const exited = new AgentStartupError({
      agent: "a",
      reason: "exited_before_ready",
      command: "x",
      pid: 7,
      exitCode: 3,
      stderr: ["missing API key"]
    })
    assert.strictEqual(
      exited.message,
      `Agent "a" (pid 7) exited with code 3 before it sent "ready"\nLast stderr lines:\n  missing API key`
    )
    const slow = new AgentStartupError({
      agent: "a",
      reason: "no_ready_in_time",
      command: "x",
      pid: 7,
      timeoutMillis: 10
    })
    assert.strictEqual(slow.message, `Agent "a" (pid 7) sent no "ready" within 10 ms`)
  })
})

describe("Errors.SupervisorError", () => {
  it("the topics' and the admin API's errors are recognised, and narrow to the union that holds them", () => {
    const errors: ReadonlyArray<unknown> = [
      new TopicError({ topic: "jobs", reason: "full", maxQueued: 1 }),
      new TaskFailedError({ taskId: "t1", topic: "jobs", attempts: 1, errors: [] }),
      new AdminApiError({ reason: "listen_failed", host: "127.0.0.1", port: 1, detail: "EADDRINUSE" })
    ]
    const tags: Array<string> = []
    for (const error of errors) {
      assert.isTrue(isSupervisorError(error))
      if (!isSupervisorError(error)) continue
      // Narrowed: a switch over the union's tags reaches these (a type error were they not in it)
      switch (error._tag) {
        case "TopicError":
          tags.push(`${error._tag} ${error.reason}`)
          break
        case "TaskFailedError":
          tags.push(`${error._tag} ${error.attempts}`)
          break
        case "AdminApiError":
          tags.push(`${error._tag} ${error.reason}`)
          break
        default:
          tags.push("other")
      }
    }
    assert.deepStrictEqual(tags, ["TopicError full", "TaskFailedError 1", "AdminApiError listen_failed"])
  })
})
