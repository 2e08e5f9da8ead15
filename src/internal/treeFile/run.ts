/**
 * A checked tree file as what the library runs: `Supervisor.Options` (directory agents resolved, topics' retries
 * as schedules) and the store's layer, and the tree started on that store.
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Record from "effect/Record"
import type * as Scope from "effect/Scope"
import * as Adapters from "../../Adapters.js"
import * as Directory from "../../Agent/Directory.js"
import { ConfigError, type StoreError } from "../../Errors.js"
import * as Store from "../../Store/Store.js"
import * as Supervisor from "../../Supervisor.js"
import type * as TreeFile from "../../TreeFile.js"
import * as Edge from "../schema.js"
import { toTopicOptions } from "./topicsSchema.js"

type Requirements = CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path

/** A `ConfigError` of `Directory.resolve` with its fields' paths in the file (`children[1].config.agentName`). */
const inFile = (at: string) => (error: Directory.DirectoryError): Directory.DirectoryError =>
  error._tag === "ConfigError"
    ? new ConfigError({
      ...error.problems[0],
      field: Edge.pathOf(at, [error.field]),
      problems: error.problems.map((problem) => ({ ...problem, field: Edge.pathOf(at, [problem.field]) }))
    })
    : error

const toSpec = (
  child: TreeFile.Child,
  at: string
): Effect.Effect<Supervisor.ChildSpec, Directory.DirectoryError, Requirements> => {
  switch (child.type) {
    case "agent": {
      const { type: _, ...spec } = child
      return Effect.succeed(Supervisor.agent(spec))
    }
    case "callback": {
      const { config, type: _, ...spec } = child
      const { file, function: name, interpreter, language, ...rest } = config
      const commandLine = language === "python"
        ? Adapters.pythonCallback(file, name, { python: interpreter })
        : Adapters.nodeCallback(file, name, { node: interpreter })
      return Effect.succeed(Supervisor.agent({ ...spec, config: { ...rest, ...commandLine } }))
    }
    case "directory": {
      const { config, type: _, ...spec } = child
      return Directory.resolve(config).pipe(
        Effect.mapError(inFile(`${at}.config`)),
        Effect.map((resolved) => Supervisor.agent({ ...spec, config: resolved }))
      )
    }
    case "pool": {
      const { type: _, ...spec } = child
      return Effect.succeed(Supervisor.pool(spec))
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
    const { admin: _admin, children, cluster: _cluster, metrics: _metrics, store: _, topics, ...root } = file
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

/** See `TreeFile.make`. */
export const make: (
  file: TreeFile.TreeFile,
  options?: Omit<TreeFile.RunOptions, "onEscalation">
) => Effect.Effect<Supervisor.Supervisor, TreeFile.StartError, Scope.Scope | Requirements> = Effect.fn(
  "TreeFile.make"
)(function*(file: TreeFile.TreeFile, options?: Omit<TreeFile.RunOptions, "onEscalation">) {
  // Directories first: a directory that cannot be resolved leaves the store unopened.
  const root = yield* toOptions(file)
  // Built in the caller's scope before the tree, so the store closes after the tree has stopped.
  const store = yield* Layer.build(storeLayer(file))
  return yield* Effect.provide(Supervisor.make({ ...root, ...options }), store)
})

/** See `TreeFile.layer`. */
export const layer = (
  file: TreeFile.TreeFile,
  options?: TreeFile.RunOptions
): Layer.Layer<Supervisor.RootSupervisor | Store.Store, TreeFile.StartError, Requirements> =>
  Layer.unwrapEffect(
    Effect.map(
      toOptions(file),
      (root) => Supervisor.layer({ ...root, ...options }).pipe(Layer.provideMerge(storeLayer(file)))
    )
  )

/** See `TreeFile.run`. */
export const run = (
  file: TreeFile.TreeFile,
  options?: Omit<TreeFile.RunOptions, "onEscalation">
): Effect.Effect<void, TreeFile.StartError, Requirements> =>
  Effect.scoped(Effect.flatMap(make(file, options), (sup) => sup.await))
