/**
 * Development watch mode (a child spec's `watch: { paths, debounce }`, as PM2's `--watch` and nodemon): a change of a
 * file under one of `paths` (recursively) reloads the child (`Supervisor.reload`: the new version up before the old
 * one goes; a new version that does not start is logged and the old one serves on), `debounce` after the last
 * change of a burst. Watched from the child's addition to its removal or its supervisor's stop, over its restarts
 * and reloads. Files are watched with the platform's `FileSystem.watch` (Node's `fs.watch`); a path that is not
 * there (yet) is said once in a warning and tried again every second.
 *
 * @internal
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { Child, Instance } from "./state.js"

/** Starts watching `child`'s paths when its spec has `watch`. */
export const start = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    const watch = child.spec.watch
    if (watch === undefined) return
    const id = child.spec.id
    let warned = false
    const reloadOnChange = Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const changes = Stream.mergeAll(watch.paths.map((path) => fs.watch(path, { recursive: true })), {
        concurrency: "unbounded"
      })
      yield* changes.pipe(
        Stream.debounce(watch.debounce),
        Stream.runForEach((event) =>
          Effect.logInfo(`"${event.path}" changed: reloading "${id}"`).pipe(
            Effect.zipRight(self.reloadChild(id)),
            Effect.catchAllCause((cause) =>
              Effect.logError(`watch: the reload of "${id}" failed; the running version serves on`, cause)
            )
          )
        )
      )
    }).pipe(
      // A path that is not there (yet), or cannot be watched: said once, tried again every second until it can.
      Effect.tapError((error) =>
        warned ? Effect.void : Effect.sync(() => (warned = true)).pipe(
          Effect.zipRight(Effect.logWarning(
            `watch: cannot watch ${watch.paths.join(", ")} for "${id}" (${error.message}); trying again every second`
          ))
        )
      ),
      Effect.retry(Schedule.spaced(Duration.seconds(1))),
      Effect.provide(NodeFileSystem.layer),
      Effect.annotateLogs({ supervisor: self.name, child: id })
    )
    const fiber = yield* self.fork(reloadOnChange)
    child.unwatch = Fiber.interrupt(fiber)
  })

/** Stops watching `child`'s paths (a no-op without watch, and the second time). */
export const stop = (child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    const unwatch = child.unwatch
    child.unwatch = undefined
    return unwatch === undefined ? Effect.void : Effect.asVoid(unwatch)
  })
