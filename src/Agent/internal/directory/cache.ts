/**
 * The install cache: one directory per key, complete or absent. The installer works in a temporary sibling that is
 * renamed into place once complete, so a directory under its final name is always complete: a crash leaves only
 * a temporary one (swept a day later), and of two concurrent installs the first rename wins.
 *
 * An installer that runs as another account (the agent's `user`, `group`) is handed the temporary directory for the
 * install (and a scratch directory in it, for what it caches), and the supervisor takes it back before the
 * rename: the install that agents read is the supervisor's, as it is when the supervisor runs the installer itself.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import * as fsPromises from "node:fs/promises"
import { AgentDependencyError } from "../../../Errors.js"
import { makeDirectory } from "../../../internal/makeDirectory.js"
import { guarded, InstallProgress } from "./progress.js"
import { liveClock, OUTPUT_LIMIT, type Program, runBounded } from "./run.js"
import { hash } from "./tree.js"

/** Part of every cache key: bump it when what an install directory holds changes shape. */
const LAYOUT = "1"
/** Written last into an install before it is renamed into place; also records what was installed. */
const MARKER = ".effect-agent-supervisor.json"
/** A temporary install this old belongs to a process that died: no installer runs for a day. */
const STALE_TEMPORARY_MILLIS = 24 * 60 * 60 * 1000

/** One install: where it goes, what identifies it, and how to run it. @internal */
export interface Install {
  readonly agent: string
  /** The manifest, for messages. */
  readonly manifest: string
  /** The installer, for messages: what a user would run by hand. */
  readonly installer: string
  /** The folder of this kind of install (one per language) in the cache. */
  readonly root: string
  /** What identifies the install: equal parts, same directory. */
  readonly keyParts: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  /** Recorded in the marker, for whoever looks at the cache (and {@link readMarker}). */
  readonly facts: Record<string, unknown>
  /** Fills the temporary directory, the installer excluded. */
  readonly prepare: (temporary: string) => Effect.Effect<void, PlatformError, FileSystem.FileSystem | Path.Path>
  /**
   * The installer; `scratch` is a directory an installer run as another account may write what it caches to (made
   * for it only then), removed before the rename.
   */
  readonly command: (temporary: string, scratch: string) => Program
}

/** The installer's scratch directory, in the temporary one (so that a crash leaves it where the sweep finds it). */
const SCRATCH = ".installer-scratch"

/**
 * `dir` and everything in it given to `uid`:`gid` (symbolic links themselves, not what they point to). Node 20's
 * recursive `readdir` does not follow links to directories.
 */
const chownTree = (dir: string, uid: number, gid: number): Promise<void> =>
  fsPromises.lchown(dir, uid, gid).then(async () => {
    for (const entry of await fsPromises.readdir(dir, { recursive: true })) {
      await fsPromises.lchown(`${dir}/${entry}`, uid, gid)
    }
  })

const dependencyError = (install: Install, output: string) =>
  new AgentDependencyError({ agent: install.agent, installer: install.installer, manifest: install.manifest, output })

/**
 * Returns the install directory for the install's key, installing first when there is none.
 *
 * @internal
 */
export const ensureInstalled = (install: Install) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const key = hash([LAYOUT, ...install.keyParts])
    const final = path.join(install.root, key)
    if (yield* fs.exists(final)) {
      yield* Effect.logDebug(`dependencies already installed in ${final}`)
      return final
    }
    // Not `fs.makeDirectory(_, { recursive: true })`: Node's loops for ever where procfs refuses (makeDirectory.ts)
    yield* makeDirectory(install.root)
    yield* sweepStale(install.root, key)
    const temporary = path.join(install.root, `${key}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`)
    return yield* Effect.gen(function*() {
      yield* fs.makeDirectory(temporary)
      yield* install.prepare(temporary)
      const scratch = path.join(temporary, SCRATCH)
      const command = install.command(temporary, scratch)
      // Run as another account: the temporary directory (and a scratch one) is its to write, until the install is done
      const handOver = (uid: number, gid: number, to: string) =>
        Effect.tryPromise({
          try: () => chownTree(temporary, uid, gid),
          catch: (error) => dependencyError(install, `could not give ${temporary} to ${to}: ${String(error)}`)
        })
      const own = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
      const asOther = command.uid !== undefined || command.gid !== undefined
      if (asOther) {
        yield* fs.makeDirectory(scratch)
        const uid = command.uid ?? own.uid
        yield* handOver(uid, command.gid ?? own.gid, `the agent's account (uid ${uid})`)
      }
      yield* Effect.logInfo(`installing dependencies from ${install.manifest} with ${install.installer}`)
      const progress = guarded(yield* InstallProgress)
      progress.onStart(install.agent, install.installer)
      const result = yield* runBounded(command, install.timeout, OUTPUT_LIMIT, (chunk) =>
        progress.onOutput(install.agent, chunk)).pipe(
          Effect.mapError((error) =>
            dependencyError(install, error.message)
          ),
          Effect.onExit((exit) =>
            Effect.sync(() =>
              progress.onEnd(
                install.agent,
                exit._tag === "Success" && !exit.value.timedOut && exit.value.exitCode === 0
              )
            )
          )
        )
      if (result.timedOut || result.exitCode !== 0) {
        return yield* new AgentDependencyError({
          agent: install.agent,
          installer: install.installer,
          manifest: install.manifest,
          exitCode: result.exitCode,
          timedOut: result.timedOut,
          output: result.output
        })
      }
      if (asOther) {
        yield* fs.remove(scratch, { recursive: true, force: true })
        yield* handOver(own.uid, own.gid, "the supervisor")
      }
      const marker = { key, installedAt: new Date().toISOString(), ...install.facts }
      yield* fs.writeFileString(path.join(temporary, MARKER), JSON.stringify(marker, null, 2) + "\n")
      yield* fs.rename(temporary, final).pipe(
        // Another install of the same key won the race: its directory is as good as ours.
        Effect.catchAll((error) =>
          Effect.flatMap(fs.exists(final), (won) => won ? Effect.void : Effect.fail(error))
        )
      )
      yield* Effect.logInfo(`dependencies installed in ${final}`)
      return final
    }).pipe(
      // Also after a successful rename (then there is nothing left to remove) and on interruption.
      Effect.ensuring(fs.remove(temporary, { recursive: true, force: true }).pipe(Effect.ignore))
    )
  }).pipe(
    Effect.catchTag("BadArgument", "SystemError", (error) => Effect.fail(dependencyError(install, error.message)))
  )

/** Removes temporary installs of `key` left behind by processes that died mid-install. */
const sweepStale = (root: string, key: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const now = yield* Clock.currentTimeMillis.pipe(Effect.withClock(liveClock))
    for (const name of yield* fs.readDirectory(root)) {
      if (!name.startsWith(`${key}.tmp-`)) continue
      const info = yield* fs.stat(path.join(root, name)).pipe(Effect.option)
      const mtime = Option.flatMap(info, (stat) => stat.mtime)
      if (Option.isSome(mtime) && now - mtime.value.getTime() > STALE_TEMPORARY_MILLIS) {
        yield* fs.remove(path.join(root, name), { recursive: true, force: true })
      }
    }
  }).pipe(Effect.ignore)

const decodeMarker = Schema.decodeUnknownOption(
  Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
)

/** The marker of a complete install: its key, when it was made and its facts; `undefined` if unreadable. @internal */
export const readMarker = (
  installed: string
): Effect.Effect<Record<string, unknown> | undefined, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    return yield* fs.readFileString(path.join(installed, MARKER)).pipe(
      Effect.map((text) => Option.getOrUndefined(decodeMarker(text))),
      Effect.orElseSucceed(() => undefined)
    )
  })
