/**
 * Where the store tests find their databases: a fresh SQLite file per test, and PostgreSQL at
 * `TEST_DATABASE_URL` (or the local default) under a table prefix unique to the test, dropped afterwards.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Pg from "../../src/Store/Pg.js"
import * as Sqlite from "../../src/Store/Sqlite.js"
import type * as Store from "../../src/Store/Store.js"

export const pgUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Whether a skipped service must fail the run instead (CI sets it). */
export const requireServices = process.env.REQUIRE_SERVICES === "1"

let counter = 0

/** A table prefix no other test or run uses. */
export const uniquePrefix = (): string =>
  `eas_${process.pid.toString(36)}_${Date.now().toString(36)}_${(counter++).toString(36)}_`

/** A temporary directory, removed with the scope. */
export const tempDir = (name = "store"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), `eas-${name}-`))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** A SQLite store on a new file, deleted afterwards. */
export const sqliteLayer = (options: Omit<Sqlite.SqliteOptions, "filename"> = {}): Layer.Layer<Store.Store, unknown> =>
  Layer.unwrapScoped(
    Effect.map(tempDir("sqlite"), (dir) => Sqlite.layer({ ...options, filename: path.join(dir, "store.sqlite") }))
  )

/** Runs `f` with a direct PostgreSQL client (for checks and cleanup behind the store's back). */
export const withPg = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>, url = pgUrl) =>
  Effect.scoped(
    Effect.flatMap(
      PgClient.make({ url: Redacted.make(url), connectTimeout: "3 seconds" }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      ),
      f
    )
  )

/** The tables of a store, but for their prefix. */
const storeTables = ["states", "metrics", "restarts", "children", "checkpoints", "tasks", "migrations"]

/** Drops a store's tables. */
export const dropTables = (prefix: string) =>
  withPg((sql) => sql.unsafe(`DROP TABLE IF EXISTS ${storeTables.map((t) => `"${prefix}${t}"`).join(", ")} CASCADE`))
    .pipe(Effect.ignore)

/** A PostgreSQL store under a new table prefix, its tables dropped afterwards. */
export const pgLayer = (options: Omit<Pg.PgOptions, "url" | "tablePrefix"> = {}): Layer.Layer<Store.Store, unknown> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const tablePrefix = uniquePrefix()
    yield* Effect.addFinalizer(() => dropTables(tablePrefix))
    return Pg.layer({ ...options, url: Redacted.make(pgUrl), tablePrefix })
  }))

/** Why PostgreSQL cannot be used, or `undefined` when it answers. */
export const pgUnavailable = (): Promise<string | undefined> =>
  Effect.runPromise(
    withPg((sql) => sql`SELECT 1`).pipe(
      Effect.match({
        onFailure: (error) =>
          `PostgreSQL at ${pgUrl.replace(/\/\/[^@/]*@/, "//***@")} does not answer (${
            error.cause instanceof Error ? error.cause.message : error.message
          }); set TEST_DATABASE_URL to run these tests`,
        onSuccess: () => undefined
      })
    )
  )

/**
 * Declares the suite `name` when its service is there. Otherwise prints why and skips it, or, when
 * `REQUIRE_SERVICES=1`, declares one failing test that says why.
 */
export const describeWithService = (name: string, unavailable: string | undefined, body: () => void) => {
  if (unavailable === undefined) return body()
  if (requireServices) {
    return describe(name, () => {
      it("its service is available (REQUIRE_SERVICES=1)", () => assert.fail(unavailable))
    })
  }
  console.warn(`skipping "${name}": ${unavailable}`)
  return describe.skip(name, body)
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago: connections are refused). */
export const closedPort = (): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** A TCP proxy on 127.0.0.1 that a test can cut (every connection dropped, new ones refused) and restore. */
export interface Proxy {
  readonly port: number
  /** Destroys every open connection and stops listening: connecting is refused until `restore`. */
  readonly cut: Effect.Effect<void>
  /** Listens again on the same port. */
  readonly restore: Effect.Effect<void>
}

/** A proxy to `target` (host and port), closed with the scope. */
export const tcpProxy = (target: { readonly host: string; readonly port: number }): Effect.Effect<
  Proxy,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    const track = (socket: net.Socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      // A cut connection errors on both sides; that is the point, not a failure of the test.
      socket.on("error", () => {})
    }
    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host)
      track(client)
      track(upstream)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const listen = (port: number) =>
      Effect.async<number>((resume) => {
        server.listen(port, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      })
    const close = Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      if (!server.listening) return resume(Effect.void)
      server.close(() => resume(Effect.void))
    })
    const port = yield* listen(0)
    yield* Effect.addFinalizer(() => close)
    return { port, cut: close, restore: Effect.asVoid(listen(port)) }
  })

/** Host and port of a PostgreSQL URL. */
export const hostAndPort = (url: string) => {
  const parsed = new URL(url)
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 5432) }
}

/** The same URL, pointing at another host and port. */
export const withHostAndPort = (url: string, host: string, port: number) => {
  const parsed = new URL(url)
  parsed.hostname = host
  parsed.port = String(port)
  return parsed.toString()
}

/** Runs `effect` with a logger that keeps the store's warnings (and only those) in `warnings`. */
export const captureStoreWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    if (logLevel._tag === "Warning" && text.startsWith("Store")) warnings.push(text)
  })
  return {
    warnings,
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        Logger.withMinimumLogLevel(LogLevel.Warning),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
  }
}

/** A line logged: its level (`"WARN"`, `"INFO"`...) and message. */
export interface LogLine {
  readonly level: string
  readonly message: string
}

/** Runs `effect` with a logger that keeps every line (from `Info` up) in `lines`, and prints nothing. */
export const captureLog = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
  })
  return {
    lines,
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  }
}

/** The lines `Store.resilient` logged about outages, by kind. */
export const outageLines = (lines: ReadonlyArray<LogLine>) => {
  const starting = (prefix: string) => lines.filter((line) => line.message.startsWith(prefix)).map((l) => l.message)
  return {
    started: starting("Store outage started"),
    summaries: starting("Store outage going on"),
    ended: starting("Store outage ended")
  }
}

/** The counts an outage line reports: operations failed, writes dropped, reads answered empty. */
export const tallyOf = (
  message: string
): { readonly failed: number; readonly writes: number; readonly reads: number } => {
  const match = /(\d+) operation\(s\) failed \((\d+) write\(s\) dropped, (\d+) read\(s\) answered empty\)/.exec(
    message
  )
  if (match === null) throw new Error(`no counts in: ${message}`)
  return { failed: Number(match[1]), writes: Number(match[2]), reads: Number(match[3]) }
}

/** Polls `check` until it gives true, failing with `what` after `within`. */
export const pollUntil = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  within: Duration.DurationInput = "10 seconds"
): Effect.Effect<void, Error | E, R> =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => new Error(what)),
    Effect.retry({ schedule: Schedule.spaced("25 millis"), while: (e) => e instanceof Error && e.message === what }),
    Effect.timeoutFail({
      duration: within,
      onTimeout: () => new Error(`not within ${Duration.format(within)}: ${what}`)
    }),
    Effect.asVoid
  )

const writable = (file: string): boolean => {
  try {
    fs.closeSync(fs.openSync(file, "r+"))
    return true
  } catch {
    return false
  }
}

/**
 * Makes `file` read-only for this process: `chmod 0444`, and where that does not bind (root ignores it)
 * `chattr +i` as well. Gives back how to undo it, or why it cannot be done here.
 */
export const makeReadOnly = (file: string): { readonly undo: () => void } | string => {
  fs.chmodSync(file, 0o444)
  const undoChmod = () => fs.chmodSync(file, 0o644)
  if (!writable(file)) return { undo: undoChmod }
  try {
    execFileSync("chattr", ["+i", file], { stdio: "ignore" })
  } catch (error) {
    undoChmod()
    return `chmod 0444 does not stop this user (root?) from writing, and chattr +i failed: ${String(error)}`
  }
  const undo = () => {
    execFileSync("chattr", ["-i", file], { stdio: "ignore" })
    undoChmod()
  }
  if (!writable(file)) return { undo }
  undo()
  return "neither chmod 0444 nor chattr +i makes a file read-only for this user"
}

/** Whether this machine can make a file read-only for the tests (`undefined`), or why not. */
export const readOnlyUnavailable = (): string | undefined => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eas-probe-"))
  const file = path.join(dir, "probe")
  fs.writeFileSync(file, "")
  const result = makeReadOnly(file)
  if (typeof result !== "string") result.undo()
  fs.rmSync(dir, { recursive: true, force: true })
  return typeof result === "string" ? result : undefined
}
