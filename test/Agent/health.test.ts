import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Config from "../../src/Agent/Config.js"
import * as Health from "../../src/Agent/Health.js"
import { killGroup } from "../../src/Agent/internal/child.js"
import * as Heartbeat from "../../src/Agent/internal/heartbeat.js"
import * as ProcessTable from "../../src/Agent/internal/processTable.js"
import * as ProcStat from "../../src/Agent/internal/procStat.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import { AgentCrashError, AgentTimeoutError, type RequestError } from "../../src/Errors.js"
import * as Ticker from "../../src/internal/ticker.js"
import { agentConfig, eventuallyEffect, sleepLive, TestLive } from "../support.js"

type Outcome = "pong" | "timeout" | "crash"

/**
 * An agent that answers pings from a script (the last outcome repeats) and nothing else: the heartbeat reads only
 * its name, pid, config and `ping`. Its pid is fixed, so its phase is the same in every run.
 */
const scripted = (
  name: string,
  overrides: Parameters<typeof agentConfig>[1],
  outcomes: ReadonlyArray<Outcome> = ["pong"]
) =>
  Effect.map(Config.make(agentConfig("echo", { name, ...overrides })), (config) => {
    let calls = 0
    const ping = (): Effect.Effect<AgentProcess.PingResult, RequestError> => {
      const outcome = outcomes[Math.min(calls++, outcomes.length - 1)]
      return outcome === "pong"
        ? Effect.succeed({ latencyMillis: 1, report: Option.none() })
        : outcome === "timeout"
        ? Effect.fail(new AgentTimeoutError({ agent: name, requestId: "p", operation: "ping", timeoutMillis: 1 }))
        : Effect.fail(new AgentCrashError({ agent: name }))
    }
    return { name, pid: 4242, config, ping } as unknown as AgentProcess.AgentProcess
  })

/** Callbacks that record what the heartbeat reported, with the Clock time of each sample. */
const recorder = () => {
  const log: Array<string> = []
  const samples: Array<Health.HealthSample> = []
  const callbacks: Health.Callbacks = {
    onSample: (sample) =>
      Effect.sync(() => {
        samples.push(sample)
        log.push("sample")
      }),
    onMissed: (missed, error) => Effect.sync(() => log.push(`missed ${missed} ${error._tag}`)),
    onUnhealthy: (missed) => Effect.sync(() => log.push(`unhealthy ${missed}`))
  }
  return { log, samples, callbacks }
}

// Beats read the shared table of /proc as it is (a new one is scanned in the background): only the very first
// beat of the process waits for a scan, in real time. Made here, so that the TestClock tests see every beat at once.
beforeAll(() => Effect.runPromise(Effect.asVoid(ProcessTable.shared.table(60_000))))

/**
 * Waits until `count` heartbeats wait on this `Clock`'s ticker: a forked heartbeat reads the time when its fiber
 * first runs, and a `TestClock.adjust` made before that would move its first beat a whole interval.
 */
const heartbeatsWaiting = (count: number) =>
  Effect.gen(function*() {
    const ticker = Ticker.forClock(yield* Effect.clock)
    for (let turns = 0; ticker.pending() < count; turns++) {
      if (turns > 10_000) return assert.fail(`${ticker.pending()} heartbeats of ${count} wait on the ticker`)
      yield* Effect.yieldNow()
    }
  })

describe("Health.heartbeat", () => {
  it.scoped("a callback that dies ends the heartbeat with its defect; so does a ping that dies", () =>
    Effect.gen(function*() {
      const agent = yield* scripted("dying-callback", { heartbeatInterval: 1000 })
      const { callbacks } = recorder()
      const beating = yield* Effect.forkScoped(
        Health.heartbeat(agent, { ...callbacks, onSample: () => Effect.die("boom") })
      )
      yield* TestClock.adjust(1000)
      const exit = yield* Fiber.await(beating)
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), `heartbeat ended with ${exit._tag}`)

      const dead = {
        ...(yield* scripted("dying-ping", { heartbeatInterval: 1000 })),
        ping: () => Effect.die("no ping")
      }
      const pinging = yield* Effect.forkScoped(Health.heartbeat(dead as AgentProcess.AgentProcess, callbacks))
      yield* TestClock.adjust(1000)
      const pingExit = yield* Fiber.await(pinging)
      assert.isTrue(Exit.isFailure(pingExit) && Cause.isDie(pingExit.cause), `heartbeat ended with ${pingExit._tag}`)
    }))

  it.scoped("agents started together spread their first pings over the interval, then beat one interval apart", () =>
    Effect.gen(function*() {
      const interval = 1000
      const agents = 100
      const beats: Array<Array<number>> = []
      for (let i = 0; i < agents; i++) {
        const agent = yield* scripted(`agent-${i}`, { heartbeatInterval: interval })
        const { callbacks, samples } = recorder()
        beats.push([])
        yield* Effect.forkScoped(Health.heartbeat(agent, {
          ...callbacks,
          onSample: (sample) => Effect.andThen(callbacks.onSample(sample), () => beats[i].push(sample.timestamp))
        }))
        assert.strictEqual(samples.length, 0)
      }
      yield* heartbeatsWaiting(agents)
      yield* TestClock.adjust(2 * interval)
      const slots = Array.from({ length: 10 }, () => 0)
      for (const [first, second, ...more] of beats) {
        assert.deepStrictEqual(more, [])
        // never later than one interval after the start, as before the phase
        assert.isTrue(first > 0 && first <= interval, `first beat at ${first}`)
        assert.closeTo(second - first, interval, 1e-6)
        // the grid's steps (a tenth of the interval): 100, 200, ... 1000 ms, the first beats rounded up onto them
        slots[Math.ceil(first / (interval / 10)) - 1]++
      }
      // 10 a slot if the phases were even; all at once (the old behaviour) would put 100 in the last one
      assert.isTrue(slots.every((n) => n >= 4 && n <= 20), `first beats per tenth of the interval: ${slots}`)
    }))

  it.scoped("missed pings count in a row, a pong resets the count, unhealthyAfter in a row ends the heartbeat", () =>
    Effect.gen(function*() {
      const agent = yield* scripted("missing", { heartbeatInterval: "10 seconds", unhealthyAfter: 2 }, [
        "pong",
        "timeout",
        "pong",
        "timeout",
        "timeout",
        "pong"
      ])
      const { callbacks, log } = recorder()
      const fiber = yield* Effect.forkScoped(Health.heartbeat(agent, callbacks))
      yield* TestClock.adjust("60 seconds")
      assert.isTrue(Option.isSome(yield* Fiber.poll(fiber)))
      assert.deepStrictEqual(log, [
        "sample",
        "missed 1 AgentTimeoutError",
        "sample",
        "missed 1 AgentTimeoutError",
        "missed 2 AgentTimeoutError",
        "unhealthy 2"
      ])
    }))

  it.scoped("an exit ends the heartbeat without a missed beat: the exit watcher handles it", () =>
    Effect.gen(function*() {
      const agent = yield* scripted("crashed", { heartbeatInterval: "10 seconds" }, ["pong", "crash"])
      const { callbacks, log } = recorder()
      const fiber = yield* Effect.forkScoped(Health.heartbeat(agent, callbacks))
      yield* TestClock.adjust("60 seconds")
      assert.isTrue(Option.isSome(yield* Fiber.poll(fiber)))
      assert.deepStrictEqual(log, ["sample"])
    }))
})

describe.sequential("Health.heartbeat: the sampling period", () => {
  it.scoped("beats that read the same scan of /proc report its memory and the CPU% of the last two scans", () =>
    Effect.gen(function*() {
      // A group of the test's own, busy all along: the vitest process's own group (read before) also holds the
      // other test files' workers, and one that exits between two scans takes its CPU time with it (a drop reads
      // as 0), which happened under load.
      const busy = yield* Effect.acquireRelease(
        // Busy while its parent (this worker) lives: a worker killed before the release leaves no spinning shell.
        Effect.sync(() =>
          spawn("/bin/sh", ["-c", "while kill -0 $PPID 2>/dev/null; do :; done"], { detached: true, stdio: "ignore" })
        ),
        (child) => Effect.sync(() => killGroup(child.pid!, "SIGKILL"))
      )
      const group = busy.pid!
      const ticks = () => ProcStat.parseStat(fs.readFileSync(`/proc/${group}/stat`, "latin1"))!.ticks
      const agent = yield* Effect.map(
        scripted("sampled", { heartbeatInterval: "1 second" }),
        (a) => ({ ...a, pid: group })
      )
      const { callbacks, samples } = recorder()
      // each beat's sample, waited for: the ticker's fiber may run after `adjust` returns (a loaded machine)
      const sampled = yield* Queue.unbounded<void>()
      // a fresh scan for the first beat, watching the group (an agent's is watched from its spawn)
      yield* ProcessTable.shared.group(group, 0)
      const ticksAtFirstScan = ticks()
      yield* Effect.forkScoped(Health.heartbeat(agent, {
        ...callbacks,
        onSample: (sample) => Effect.zipRight(callbacks.onSample(sample), Queue.offer(sampled, undefined))
      }))
      yield* heartbeatsWaiting(1)
      yield* TestClock.adjust("1 second")
      yield* Queue.take(sampled)
      // The group's CPU time grows (by a few ticks of 10 ms, whatever the load) before the next scan.
      while (ticks() < ticksAtFirstScan + 3) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      }
      yield* ProcessTable.shared.table(0)
      yield* TestClock.adjust("1 second")
      yield* Queue.take(sampled)
      yield* TestClock.adjust("1 second")
      yield* Queue.take(sampled)
      const [first, second, third] = samples
      assert.strictEqual(samples.length, 3)
      assert.isTrue(Option.isNone(first.cpuPercent))
      // the second read the new scan: CPU% between the two scans; the third read it again (beats 1 s apart, well
      // within the 5 s sampling period of real time): the same reading, not 0
      assert.isTrue(Option.isSome(second.cpuPercent) && second.cpuPercent.value > 0, String(second.cpuPercent))
      assert.deepStrictEqual(third.cpuPercent, second.cpuPercent)
      assert.deepStrictEqual(third.memoryMb, second.memoryMb)
      assert.strictEqual(third.processes, 1)
    }))
})

describe.sequential("Health with a real agent", () => {
  it.scopedLive("check: processes and RSS from /proc; CPU% none on the first check, some on the second", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const [first, tree] = yield* Health.check(agent, undefined)
      assert.strictEqual(first.pid, agent.pid)
      assert.isAtLeast(first.processes, 1)
      assert.isTrue(Option.isSome(first.memoryMb) && first.memoryMb.value > 0, String(first.memoryMb))
      // No previous sample: no CPU% (an average over the agent's life is no reading of now)
      assert.isTrue(Option.isNone(first.cpuPercent))
      assert.isTrue(Option.isSome(first.report))
      assert.isAtLeast(first.latencyMillis, 0)
      assert.isDefined(tree)
      yield* agent.request({ echo: "some work" })
      yield* sleepLive("600 millis") // older than the shared scan may be: the second check reads a new one
      const [second, next] = yield* Health.check(agent, tree)
      assert.isAbove(next!.takenAt, tree!.takenAt)
      assert.isTrue(Option.isSome(second.cpuPercent) && second.cpuPercent.value >= 0, String(second.cpuPercent))
      assert.isAtLeast(second.processes, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("heartbeat on the TestClock: a real agent's first sample within one interval, its CPU% since the spawn", () =>
    Effect.gen(function*() {
      // the ping's timeout is on the TestClock too: it must not pass while the adjust outruns the real reply
      const agent = yield* AgentProcess.make(
        agentConfig("echo", { heartbeatInterval: "10 seconds", pingTimeout: "1 hour" })
      )
      const { callbacks, samples } = recorder()
      yield* Effect.forkScoped(Health.heartbeat(agent, callbacks))
      yield* TestClock.adjust("10 seconds")
      yield* eventuallyEffect("a first sample", Effect.sync(() => samples.length === 1))
      yield* TestClock.adjust("10 seconds")
      yield* eventuallyEffect("a second sample", Effect.sync(() => samples.length === 2))
      const [first, second] = samples
      assert.isAtLeast(first.processes, 1)
      assert.isTrue(Option.isSome(first.memoryMb) && first.memoryMb.value > 0)
      // The spawn is the first reading's baseline (`status` shows CPU% from the first beat); a group this process
      // did not spawn has none on its first (the test above)
      assert.isTrue(Option.isSome(first.cpuPercent) && first.cpuPercent.value > 0, String(first.cpuPercent))
      assert.isTrue(Option.isSome(second.cpuPercent))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a ping's timeout kept by the heartbeat: at its deadline, never early, one check per timeout", () =>
    Effect.gen(function*() {
      const config = yield* Config.make(
        agentConfig("echo", { name: "kept", heartbeatInterval: "1 second", pingTimeout: "5 seconds" })
      )
      const clock = yield* Effect.clock
      const ticker = Ticker.forClock(clock)
      // Every ticker schedule the heartbeat makes, counted (its beats, its timeout checks) beside this test's own.
      const schedule = ticker.schedule
      let schedules = 0
      const counted: Ticker.Ticker = { ...ticker, schedule: (w, callback) => (schedules++, schedule(w, callback)) }
      Object.assign(ticker, { schedule: counted.schedule })
      yield* Effect.addFinalizer(() => Effect.sync(() => Object.assign(ticker, { schedule })))
      // Pings answered 100 ms after they are sent, but for the fifth: never answered, timed out by the heartbeat.
      const sent: Array<number> = []
      const timedOut: Array<number> = []
      const reports: Array<string> = []
      let answers = 0
      const target: Heartbeat.Target = {
        name: "kept",
        pid: 4242,
        config,
        pingWith: (done) => {
          const n = sent.push(clock.unsafeCurrentTimeMillis())
          let settled = false
          const settle = (exit: Exit.Exit<AgentProcess.PingResult, RequestError>) => {
            if (settled) return
            settled = true
            done(exit)
          }
          if (n !== 5) {
            answers++
            schedule(
              ticker.waiter(clock.unsafeCurrentTimeMillis() + 100, 0),
              () => settle(Exit.succeed({ latencyMillis: 100, report: Option.none() }))
            )
          }
          return () => {
            timedOut.push(clock.unsafeCurrentTimeMillis())
            settle(
              Exit.fail(
                new AgentTimeoutError({ agent: "kept", requestId: `${n}`, operation: "ping", timeoutMillis: 5000 })
              )
            )
          }
        }
      }
      const stop = Heartbeat.start(target, clock, {
        report: (report, handled) => {
          reports.push(report._tag === "Sample" ? "sample" : `missed ${report.missed}`)
          handled()
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(stop))
      // Ping 5 goes out after four answered ones: the check armed by ping 1 finds it out, and waits for its deadline.
      while (sent.length < 5) yield* TestClock.adjust("100 millis")
      const fifth = sent[4]
      yield* TestClock.adjust(`${fifth + 5000 - 1 - clock.unsafeCurrentTimeMillis()} millis`)
      assert.deepStrictEqual(timedOut, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(timedOut, [fifth + 5000])
      assert.deepStrictEqual(reports, ["sample", "sample", "sample", "sample", "missed 1"])
      // Then 30 s of beats answered late: each arms no check of its own, about one a timeout does.
      const before = { schedules, answers, pings: sent.length }
      yield* TestClock.adjust("30 seconds")
      const pings = sent.length - before.pings
      assert.isAtLeast(pings, 25)
      // Every outcome since is a sample (the last ping may still be out).
      assert.isTrue(reports.slice(5).every((report) => report === "sample"), reports.join())
      assert.isAtLeast(reports.length - 5, pings - 1)
      const checks = schedules - before.schedules - pings // the beats' own schedules aside
      assert.isAtMost(checks, 30 / 5 + 1, `${checks} timeout checks for ${pings} pings`)
      assert.isAtLeast(checks, 1)
      stop()
      // What is left is this test's own answers in flight, none of the heartbeat's.
      yield* TestClock.adjust("1 second")
      assert.strictEqual(ticker.pending(), 0)
    }))
})
