/**
 * `agent-supervisor up FILE`: the file's tree in the foreground, with its admin API and dashboard, until a signal
 * or the tree itself ends it. SIGINT and SIGTERM stop the tree (3-phase, in order: `NodeRuntime.runMain`
 * interrupts the program, and the scope closes) and exit 0; an escalation of the root exits 1 with its message;
 * an auto-shutdown of the root exits 0.
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as AdminApi from "../../AdminApi.js"
import * as Directory from "../../Agent/Directory.js"
import type { ConfigError } from "../../Errors.js"
import * as LogFiles from "../../LogFiles.js"
import * as Metrics from "../../Metrics.js"
import * as Supervisor from "../../Supervisor.js"
import * as TreeFile from "../../TreeFile.js"
import { ENV_STATE_FILE, stateFileOf } from "./address.js"
import * as Progress from "./progress.js"

export interface UpOptions {
  readonly file: string
  /** `--port`, over the file's `admin.port`. */
  readonly port: Option.Option<number>
  /** `--host`, over the file's `admin.host`. */
  readonly host: Option.Option<string>
  /** `--state-file`, else `AGENT_SUPERVISOR_STATE_FILE`, else the one beside the tree file. */
  readonly stateFile: Option.Option<string>
  /** `--no-admin`: no admin API, no dashboard, no state file. */
  readonly admin: boolean
}

/** The admin API's options: the flags over the file's section. */
const adminOptions = (file: TreeFile.TreeFile, options: UpOptions, stateFile: string): AdminApi.Options => {
  const section = file.admin ?? {}
  return {
    port: Option.getOrElse(options.port, () => section.port ?? 0),
    ...Option.match(Option.orElse(options.host, () => Option.fromNullable(section.host)), {
      onNone: () => ({}),
      onSome: (host) => ({ host })
    }),
    token: section.token,
    stateFile
  }
}

/** The tree of a loaded file, its admin API, until the tree ends or the program is interrupted. */
const serve = (file: TreeFile.TreeFile, options: UpOptions) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    for (const warning of yield* TreeFile.warnings(file)) yield* Effect.logWarning(warning)
    const progress = yield* Progress.forUp
    yield* Effect.addFinalizer(() => Effect.sync(progress.stop))
    const tree = yield* TreeFile.make(file).pipe(Effect.provideService(Directory.Progress, progress))
    yield* Effect.logInfo(`tree "${tree.name}" is running`)
    if (options.admin && file.admin?.enabled !== false) {
      const stateFile = Option.getOrElse(
        Option.orElse(options.stateFile, () => Option.fromNullable(process.env[ENV_STATE_FILE] || undefined)),
        () => stateFileOf(path, options.file)
      )
      const server = yield* AdminApi.make(adminOptions(file, options, stateFile)).pipe(
        Effect.provideService(Supervisor.RootSupervisor, tree)
      )
      yield* Effect.logInfo(`dashboard: ${server.url}/ (admin API token in ${stateFile})`)
    }
    yield* tree.await
    yield* Effect.logInfo(`tree "${tree.name}" shut itself down`)
  }).pipe(Effect.scoped)

/** `program` exporting metrics and spans where the file's `metrics.otlp` says. */
const exported = <A, E, R>(file: TreeFile.TreeFile, program: Effect.Effect<A, E, R>) =>
  file.metrics?.otlp === undefined ? program : Effect.provide(program, Metrics.layerOtel(file.metrics.otlp))

export const up = (
  options: UpOptions
): Effect.Effect<
  void,
  TreeFile.StartError | AdminApi.AdminApiError | ConfigError,
  CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path
> =>
  Effect.flatMap(TreeFile.load(options.file), (file) =>
    file.logs === undefined
      ? exported(file, serve(file, options))
      // With log files, up's own log goes to agent-supervisor.log beside the agents' files too (JSON lines).
      : Effect.provide(
        exported(file, serve(file, options)),
        LogFiles.layer({ ...file.logs, name: "agent-supervisor", format: "json" })
      ))
