/**
 * A published task's id: opaque to users, it carries what `awaitResult` needs to find the task again from any
 * process (its key and the agents it was delivered to), so no table of published tasks is kept.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { ConfigError } from "../../Errors.js"

const Ref = Schema.Struct({ task: Schema.String, targets: Schema.NonEmptyArray(Schema.String), fanout: Schema.Boolean })

/** What a task id holds. */
export type TaskRef = typeof Ref.Type

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson(Ref))

/** The id of a published task. */
export const encode = (ref: TaskRef): string => Buffer.from(JSON.stringify(ref)).toString("base64url")

/** What a task id holds; `ConfigError` for an id that `publish` did not give. */
export const decode = (id: string): Effect.Effect<TaskRef, ConfigError> => {
  const result = decodeJson(typeof id === "string" ? Buffer.from(id, "base64url").toString("utf8") : "")
  return result._tag === "Right"
    ? Effect.succeed(result.right)
    : Effect.fail(new ConfigError({ field: "taskId", rule: "must be an id that publish gave", value: String(id) }))
}
