/**
 * `agent-supervisor validate FILE`: the file checked whole, nothing started (no store opened, no dependency
 * installed): what it describes, its warnings, or every problem with its path.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { ConfigError } from "../../Errors.js"
import * as TreeFile from "../../TreeFile.js"

const count = (children: ReadonlyArray<TreeFile.Child>): { agents: number; directories: number; supervisors: number } =>
  children.reduce((total, child) => {
    if (child.type === "supervisor") {
      const inner = count(child.children ?? [])
      return {
        agents: total.agents + inner.agents,
        directories: total.directories + inner.directories,
        supervisors: total.supervisors + 1 + inner.supervisors
      }
    }
    return child.type === "agent" || child.type === "callback"
      ? { ...total, agents: total.agents + 1 }
      : { ...total, directories: total.directories + 1 }
  }, { agents: 0, directories: 0, supervisors: 0 })

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** A one-line summary of a checked file. */
export const summary = (path: string, file: TreeFile.TreeFile): string => {
  const { agents, directories, supervisors } = count(file.children)
  const parts = [
    plural(agents + directories, "agent"),
    ...(directories > 0 ? [`${directories} from a directory`] : []),
    plural(supervisors, "nested supervisor")
  ]
  return `${path}: OK. Tree "${file.name ?? "root"}": ${parts.join(", ")}; store: ${file.store.type}.`
}

export const validate = (path: string): Effect.Effect<void, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const file = yield* TreeFile.load(path)
    yield* Console.log(summary(path, file))
    for (const warning of yield* TreeFile.warnings(file)) yield* Console.log(`warning: ${warning}`)
  })
