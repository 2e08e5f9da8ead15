import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { fixture, groupMembers, isAlive, root } from "../support.js"

// The supervisor itself is SIGKILLed while its agent runs a 60 s task: no finalizer runs, nobody sends `shutdown`.
// The agent's stdin reaches EOF when the kernel closes the dead supervisor's end of the pipe; the adapters must take
// that as "nobody can receive results" and exit, not live on with parent pid 1 until their task ends.

/** A stand-in supervisor (test/fixtures/node/mini-supervisor.mjs) running one agent. */
interface MiniSupervisor {
  readonly child: ChildProcessWithoutNullStreams
  /** Resolves with the agent's pid once the stand-in has spawned it. */
  readonly agentPid: Promise<number>
  /** Resolves once the stand-in's stderr (the agent's stderr, relayed) contains `text`. */
  readonly waitForStderr: (text: string, timeoutMs: number) => Promise<void>
}

const supervisors = new Set<ChildProcessWithoutNullStreams>()
const agents = new Set<number>()

afterEach(() => {
  for (const child of supervisors) child.kill("SIGKILL")
  supervisors.clear()
  // A failed test must not leave a 60 s agent behind: its group is its own (the stand-in spawns it detached)
  for (const pid of agents) {
    if (!isAlive(pid)) continue
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  agents.clear()
})

/** Polls /proc (the kernel updates it asynchronously) until `condition` holds; fails after `timeoutMs`. */
const waitUntil = async (what: string, condition: () => boolean, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const startSupervisor = (payload: unknown, command: string, args: ReadonlyArray<string>): MiniSupervisor => {
  const child = spawn(
    process.execPath,
    [fixture("node", "mini-supervisor.mjs"), JSON.stringify(payload), command, ...args],
    { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } }
  )
  supervisors.add(child)
  let stderr = ""
  const stderrWaiters = new Set<() => void>()
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk
    for (const wake of stderrWaiters) wake()
  })
  child.stdout.setEncoding("utf8")
  const agentPid = new Promise<number>((resolve, reject) => {
    let rest = ""
    child.stdout.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n")
      rest = lines.pop()!
      for (const line of lines) {
        const event = JSON.parse(line)
        if (event.event === "spawned") {
          agents.add(event.pid)
          resolve(event.pid)
        }
      }
    })
    child.on("exit", () => reject(new Error(`the stand-in supervisor exited; stderr:\n${stderr}`)))
  })
  const waitForStderr = (text: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!stderr.includes(text)) return
        clearTimeout(timer)
        stderrWaiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        stderrWaiters.delete(check)
        reject(new Error(`stderr never contained ${JSON.stringify(text)} within ${timeoutMs} ms:\n${stderr}`))
      }, timeoutMs)
      stderrWaiters.add(check)
      check()
    })
  return { child, agentPid, waitForStderr }
}

const python = (target: string) => ({
  command: "python3",
  args: [path.join(root, "adapters", "python", "supervisor_adapter.py"), fixture("python", target)]
})

const cases = [
  { name: "Python, sync callback", ...python("stuck_agent.py:sleep_sync"), payload: { tag: "t1", sleep: 60 } },
  { name: "Python, async callback", ...python("stuck_agent.py:sleep_async"), payload: { tag: "t1", sleep: 60 } },
  {
    name: "Node, callback that ignores its signal",
    command: process.execPath,
    args: [path.join(root, "dist", "Adapter", "node.js"), fixture("node", "sleeper.mjs")],
    payload: { ms: 60_000, ignoreSignal: true }
  }
] as const

describe.sequential("adapters whose supervisor is SIGKILLed", () => {
  for (const c of cases) {
    it(`${c.name}: the agent exits although its 60 s task is running`, async () => {
      const supervisor = startSupervisor(c.payload, c.command, c.args)
      const pid = await supervisor.agentPid
      // Both fixtures say "started t1" (Python: "fixture: started t1") once the task runs
      await supervisor.waitForStderr("started t1", 10_000)
      assert.isTrue(isAlive(pid))
      supervisor.child.kill("SIGKILL")
      // The adapters promise 1 s; the bound leaves room for a loaded machine
      await waitUntil(`the orphaned agent ${pid} exits`, () => !isAlive(pid), 5_000)
      assert.deepStrictEqual(groupMembers(pid), [], "processes of the agent's group are left")
    }, 20_000)
  }
})
