/**
 * A checked tree file as what the library runs: `Supervisor.Options` (callback agents' command lines made, directory
 * agents resolved, a pool's members' as an agent child's, topics' retries as schedules) and the store's layer, and the
 * tree started on that store.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Record from "effect/Record"
import type * as Scope from "effect/Scope"
import * as Adapters from "../../Adapters.js"
import type * as Config from "../../Agent/Config.js"
import * as Directory from "../../Agent/Directory.js"
import * as ForkServer from "../../Agent/ForkServer.js"
import { ConfigError, type StoreError } from "../../Errors.js"
import * as Store from "../../Store/Store.js"
import * as Supervisor from "../../Supervisor.js"
import type * as TreeFile from "../../TreeFile.js"
import * as Edge from "../schema.js"
import * as BareMillis from "./bareMillis.js"
import { type Form, formOf } from "./fileSchema.js"
import { toTopicOptions } from "./topicsSchema.js"

type Requirements = FileSystem.FileSystem | Path.Path

/** A `ConfigError` of `Directory.resolve` with its fields' paths in the file (`children[1].config.agentName`). */
const inFile = (at: string) => (error: Directory.DirectoryError): Directory.DirectoryError =>
  error._tag === "ConfigError"
    ? new ConfigError({
      ...error.problems[0],
      field: Edge.joinPaths(at, error.field),
      problems: error.problems.map((problem) => ({ ...problem, field: Edge.joinPaths(at, problem.field) }))
    })
    : error

/** The configuration a file writes as `form` (as a child of that type takes it), as the agent's configuration. */
const agentConfig = (
  form: Form,
  config: TreeFile.PoolChild["config"],
  at: string
): Effect.Effect<Config.AgentConfig | Config.AgentConfigInput, Directory.DirectoryError, Requirements> => {
  switch (form) {
    case "agent":
      return Effect.succeed(config as Config.AgentConfigInput)
    case "callback": {
      const { file, function: name, interpreter, language, ...rest } = config as TreeFile.CallbackConfig
      const commandLine = language === "python"
        ? Adapters.pythonCallback(file, name, { python: interpreter })
        : Adapters.nodeCallback(file, name, { node: interpreter })
      return Effect.succeed({ ...rest, ...commandLine })
    }
    case "directory":
      return Directory.resolve(config as Directory.DirectoryOptions).pipe(Effect.mapError(inFile(`${at}.config`)))
  }
}

const toSpec = (
  child: TreeFile.Child,
  at: string
): Effect.Effect<Supervisor.ChildSpec, Directory.DirectoryError, Requirements> => {
  switch (child.type) {
    case "agent":
    case "callback":
    case "directory": {
      const { config, type, ...spec } = child
      return Effect.map(agentConfig(type, config, at), (config) => Supervisor.agent({ ...spec, config }))
    }
    case "pool": {
      // Its members' configuration in any form an agent child's takes; a directory is resolved once for them all.
      const { config, type: _, ...spec } = child
      return Effect.map(agentConfig(formOf(config), config, at), (config) => Supervisor.pool({ ...spec, config }))
    }
    case "supervisor": {
      const { children, type: _, ...spec } = child
      return Effect.map(toSpecs(children ?? [], at), (specs) => Supervisor.supervisor({ ...spec, children: specs }))
    }
  }
}

const toSpecs = (children: ReadonlyArray<TreeFile.Child>, at: string | undefined) =>
  Effect.forEach(children, (child, i) => toSpec(child, Edge.pathOf(at, ["children", i])))

/** See `TreeFile.toOptions`. */
export const toOptions: (
  file: TreeFile.TreeFile
) => Effect.Effect<Supervisor.Options, Directory.DirectoryError, Requirements> = Effect.fn("TreeFile.toOptions")(
  function*(file: TreeFile.TreeFile) {
    const {
      admin: _admin,
      children,
      cluster: _cluster,
      forkServer: _forkServer,
      metrics: _metrics,
      store: _,
      topics,
      ...root
    } = file
    return {
      ...root,
      ...(topics === undefined ? {} : { topics: Record.map(topics, toTopicOptions) }),
      children: yield* toSpecs(children, undefined)
    }
  }
)

/** See `TreeFile.storeLayer`. */
export const storeLayer = (file: TreeFile.TreeFile): Layer.Layer<Store.Store, ConfigError | StoreError> => {
  const { type: _, ...options } = file.store
  switch (file.store.type) {
    case "memory":
      return Layer.effect(Store.Store, Store.makeMemory(options as Store.MemoryOptions))
    case "sqlite":
      return Store.layerSqlite(options as TreeFile.SqliteStore)
    case "postgres":
      return Store.layerPg(options as Omit<TreeFile.PostgresStore, "type">)
  }
}

/**
 * What the file's agents are spawned through: a fork server of the tree's (`forkServer: true`), or nothing (from
 * this process, unless the context has a fork server already).
 */
export const spawningLayer = (file: TreeFile.TreeFile): Layer.Layer<never> | typeof ForkServer.layer =>
  file.forkServer === true ? ForkServer.layer : Layer.empty

/** See `TreeFile.make`. */
export const make: (
  file: TreeFile.TreeFile,
  options?: Omit<TreeFile.RunOptions, "onEscalation">
) => Effect.Effect<Supervisor.Supervisor, TreeFile.StartError, Scope.Scope | Requirements> = Effect.fn(
  "TreeFile.make"
)(function*(file: TreeFile.TreeFile, options?: Omit<TreeFile.RunOptions, "onEscalation">) {
  yield* BareMillis.logWarnings(file)
  // Directories first: a directory that cannot be resolved leaves the store unopened.
  const root = yield* toOptions(file)
  // Built in the caller's scope before the tree, so the store closes after the tree has stopped.
  const store = yield* Layer.build(storeLayer(file))
  // The fork server, too: it serves the tree as long as its agents run (see `Agent.ForkServer.layer`).
  const spawning = yield* Layer.build(spawningLayer(file))
  return yield* Supervisor.make({ ...root, ...options }).pipe(Effect.provide(store), Effect.provide(spawning))
})

/** See `TreeFile.layer`. */
export const layer = (
  file: TreeFile.TreeFile,
  options?: TreeFile.RunOptions
): Layer.Layer<Supervisor.RootSupervisor | Store.Store, TreeFile.StartError, Requirements> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.zipRight(BareMillis.logWarnings(file), toOptions(file)),
      (root) =>
        Supervisor.layer({ ...root, ...options }).pipe(
          Layer.provideMerge(storeLayer(file)),
          Layer.provide(spawningLayer(file))
        )
    )
  )

/** See `TreeFile.run`. */
export const run = (
  file: TreeFile.TreeFile,
  options?: Omit<TreeFile.RunOptions, "onEscalation">
): Effect.Effect<void, TreeFile.StartError, Requirements> =>
  Effect.scoped(Effect.flatMap(make(file, options), (sup) => sup.await))
