/**
 * A topic task's delivery retries (src/internal/topics/delivery.ts) end with the tree's stop: no attempt is made
 * once the bus says it has stopped, even by a task fiber that missed its interruption (Effect 3.22, fork.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Delivery from "../src/internal/topics/delivery.js"
import type { TaskAttemptError } from "../src/Topic.js"

describe("topic delivery", () => {
  it.effect("no attempt after the tree's stop: retries end with the task not delivered", () =>
    Effect.gen(function*() {
      const registry = yield* Delivery.makeRegistry
      const topic = { loads: new Map(), queued: 0, room: [] } as unknown as Delivery.Topic
      let stopped = false
      const subscriber: Delivery.Subscriber = {
        path: "root/failing",
        topics: ["t"],
        target: () => ({
          running: true,
          // The second attempt fails as the tree stops.
          handleEvent: () =>
            Effect.fail(new Error(`attempt ${attempts.count}`)).pipe(
              Effect.ensuring(Effect.sync(() => (stopped = attempts.count >= 2)))
            )
        })
      }
      const attempts = { count: 0 }
      const errors: Array<TaskAttemptError> = []
      const exit = yield* Effect.exit(
        Delivery.deliver(registry, topic, "t", {}, subscriber, Schedule.recurs(50), undefined, errors, attempts, () =>
          stopped)
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(attempts.count, 2)
      assert.deepStrictEqual(
        errors.map((e) =>
          e.message
        ),
        ["attempt 1", "attempt 2"]
      )
    }))
})
