/**
 * `Agent.Process.killAll`: SIGKILL to every agent process of the host, for a host that must end now (`up`'s third
 * Ctrl-C). Real agents of two trees; the count is what runs, and exited agents are not counted.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as AgentProcess from "../src/Agent/Process.js"
import * as ChildSpec from "../src/ChildSpec.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventually, isAlive, TestLive } from "./support.js"

describe("Agent.Process.killAll", () => {
  it.scopedLive("kills every agent process of every tree at once, and counts them", () =>
    Effect.gen(function*() {
      const tree = (name: string, ids: ReadonlyArray<string>) =>
        Supervisor.make({
          name,
          children: ids.map((id) =>
            ChildSpec.agent({ id, config: agentConfig("echo", { name: `${name}-${id}` }), restart: "temporary" })
          )
        })
      const one = yield* tree("one", ["a", "b"])
      const two = yield* tree("two", ["c"])
      const pidOf = (sup: Supervisor.Supervisor, id: string) =>
        Effect.flatMap(sup.child(id), (agent) => Effect.map(agent.metadata, (m) => Option.getOrThrow(m.pid)))
      const pids = [yield* pidOf(one, "a"), yield* pidOf(one, "b"), yield* pidOf(two, "c")]
      // One stopped before: not running, not counted
      yield* one.terminateChild("b")
      assert.isFalse(isAlive(pids[1]))
      assert.strictEqual(yield* AgentProcess.killAll, 2)
      yield* eventually("both killed", () => !isAlive(pids[0]) && !isAlive(pids[2]), "20 seconds")
      // Temporary children are not restarted: nothing runs, nothing is counted
      yield* eventually("their exits reported", () => Effect.runSync(AgentProcess.killAll) === 0, "20 seconds")
    }).pipe(Effect.provide(TestLive)))
})
