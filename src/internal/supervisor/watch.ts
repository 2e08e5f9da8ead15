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
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { repeatUntilStopped } from "../fork.js"
import type { Child, Instance } from "./state.js"

/**
 * Starts watching `child`'s paths when its spec has `watch`.
 *
 * Each path's changes only land in a queue; the reloads run in a loop of their own, which ends at its next round
 * once the watch is stopped, even if the interruption was lost while a reload stopped the old incarnation
 * (`repeatUntilStopped`): a tree stopping during a reload used to hang there for ever.
 */
export const start = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    const watch = child.spec.watch
    if (watch === undefined) return
    const id = child.spec.id
    let stopped = false
    const changes = yield* Queue.sliding<FileSystem.WatchEvent>(1)
    // Each path on its own: one that is not there (yet), or cannot be watched, is named once in a warning and tried
    // again every second until it can, while the others are watched.
    const feed = Effect.forEach(watch.paths, (path) => {
      let warned = false
      return Effect.flatMap(FileSystem.FileSystem, (fs) =>
        Stream.runForEach(fs.watch(path, { recursive: true }), (event) => Queue.offer(changes, event))).pipe(
          Effect.tapError((error) =>
            warned ? Effect.void : Effect.sync(() => (warned = true)).pipe(
              Effect.zipRight(Effect.logWarning(
                `watch: cannot watch ${path} for "${id}" (${error.message}); trying again every second`
              ))
            )
          ),
          Effect.retry(Schedule.spaced(Duration.seconds(1)))
        )
    }, { concurrency: "unbounded", discard: true }).pipe(Effect.provide(NodeFileSystem.layer))
    const reloads = repeatUntilStopped(
      () =>
        stopped,
      Effect.flatMap(settled(changes, watch.debounce), (event) =>
        Effect.logInfo(`"${event.path}" changed: reloading "${id}"`).pipe(
          Effect.zipRight(self.reloadChild(id)),
          // A reload cut short by the tree's stop (its own refusal, a pool's member stopped under it) is no error.
          Effect.catchAllCause((cause) =>
            self.terminating
              ? Effect.logDebug(`watch: "${id}" not reloaded: its supervisor is stopping`, cause)
              : Effect.logError(`watch: the reload of "${id}" failed; the running version serves on`, cause)
          )
        ))
    )
    const fiber = yield* self.fork(
      Effect.zipRight(feed, reloads, { concurrent: true }).pipe(
        Effect.annotateLogs({ supervisor: self.name, child: id })
      )
    )
    child.unwatch = Effect.suspend(() => {
      stopped = true
      return Fiber.interrupt(fiber)
    })
  })

/** The last change of the next burst: a change, then none for `debounce` (what `Stream.debounce` does). */
const settled = <A>(changes: Queue.Dequeue<A>, debounce: Duration.Duration): Effect.Effect<A> => {
  const after = (last: A): Effect.Effect<A> =>
    Effect.flatMap(
      Effect.timeoutOption(Queue.take(changes), debounce),
      Option.match({ onNone: () => Effect.succeed(last), onSome: after })
    )
  return Effect.flatMap(Queue.take(changes), after)
}

/** Stops watching `child`'s paths (a no-op without watch, and the second time). */
export const stop = (child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    const unwatch = child.unwatch
    child.unwatch = undefined
    return unwatch === undefined ? Effect.void : Effect.asVoid(unwatch)
  })
