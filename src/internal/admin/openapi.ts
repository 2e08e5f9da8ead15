/**
 * The OpenAPI document of the admin API: the JSON endpoints (`OpenApi.fromApi`), with the bearer token the
 * state-changing ones need (it is checked by `guard.ts`, outside the `HttpApi`, so `fromApi` cannot see it), and a
 * 401 and a 415 (a body that is not JSON) on each of them from the contract; the 405 of a method a path does not
 * take, which belongs to no operation, in the document's description; and the routes outside the `HttpApi` (`routes.ts`), described by hand: the two event streams
 * and the Prometheus metrics. Those only read, so they need no token, as every GET.
 *
 * @internal
 */
import * as OpenApi from "@effect/platform/OpenApi"
import type * as JsonSchema from "@effect/platform/OpenApiJsonSchema"
import { AdminHttpApi, Routes, STREAM_END } from "./api.js"

/** The name of the security scheme in the document. */
export const SCHEME = "bearer"

/** The media type of the event streams, which the platform's type of a response's content does not list. */
const EVENT_STREAM = "text/event-stream"

const ref = (name: string): JsonSchema.JsonSchema => ({ $ref: `#/components/schemas/${name}` })

const json = (description: string, schema: JsonSchema.JsonSchema): OpenApi.OpenApiSpecResponse => ({
  description,
  content: { "application/json": { schema } }
})

const eventStream = (description: string): OpenApi.OpenApiSpecResponse => ({
  description,
  content: { [EVENT_STREAM]: { schema: { type: "string" } } } as OpenApi.OpenApiSpecContent
})

/** The body of a 503 past the most event streams open at once (`MAX_STREAMS` in `routes.ts`, which imports this). */
const tooManyStreams: JsonSchema.JsonSchema = {
  type: "object",
  required: ["_tag", "message"],
  properties: { _tag: { type: "string", enum: ["TooManyStreams"] }, message: { type: "string" } },
  additionalProperties: false,
  description: "As many event streams are open as the API serves at once; the response's retry-after says when to retry"
}

const busy = json("TooManyStreams: the most event streams the API serves at once are open", ref("TooManyStreams"))

/** How the server ends an event stream (`STREAM_END`). */
const ENDS = `Ended by the server with \`event: ${STREAM_END}\`, \`data: {"reason":"closing"}\` (the API closes) or ` +
  `\`{"reason":"ended"}\` (what it followed ended); a connection closed without it is a server lost.`

/** The routes outside the `HttpApi`, by their path in the document (`{id}` as the JSON endpoints write it). */
const otherRoutes: OpenApi.OpenAPISpecPaths = {
  [Routes.events]: {
    get: {
      tags: ["tree"],
      operationId: "tree.events",
      summary: "The tree's lifecycle events as Server-Sent Events, from the moment of the request",
      parameters: [],
      security: [],
      responses: {
        200: eventStream(`One event per SupervisorEvent: \`event: <its _tag>\`, \`data: <it as JSON>\`. ${ENDS}`),
        503: busy
      }
    }
  },
  "/api/children/{id}/stderr/follow": {
    get: {
      tags: ["tree"],
      operationId: "tree.stderrFollow",
      summary: "An agent's stderr lines as Server-Sent Events, from the moment of the request, over its restarts",
      parameters: [{ name: "id", in: "path", schema: { type: "string" }, required: true }],
      security: [],
      responses: {
        200: eventStream(
          `One event per line: \`data: <StderrLine as JSON>\` (#/components/schemas/StderrLine). ${ENDS}`
        ),
        400: json(
          "BadRequest: the child is a supervisor or a pool (only an agent has stderr: the message names one below it)",
          ref("BadRequest")
        ),
        404: json("ChildNotFound", ref("ChildNotFound")),
        503: busy
      }
    }
  },
  [Routes.metrics]: {
    get: {
      tags: ["metrics"],
      operationId: "metrics.prometheus",
      summary: "Every Effect metric of the process, for a Prometheus scrape",
      parameters: [],
      security: [],
      responses: {
        200: {
          description: "Prometheus text exposition format 0.0.4 (content-type text/plain; version=0.0.4)",
          content: { "text/plain": { schema: { type: "string" } } }
        }
      }
    }
  }
}

/** Says what the request body of the POST at `path` holds. */
const describeBody = (spec: OpenApi.OpenAPISpec, path: string, description: string): void => {
  const body = spec.paths[path]?.post?.requestBody
  if (body !== undefined) Object.assign(body, { description })
}

/** The document, made once per server. */
export const document = (): OpenApi.OpenAPISpec => {
  const spec = OpenApi.fromApi(AdminHttpApi)
  spec.info.title = "agent-supervisor admin API"
  spec.info.description = "The tree of a running agent-supervisor: read it, follow its events and its agents' " +
    "stderr, scrape its metrics, start, stop, restart and reload its children, scale its pools, call its agents " +
    "and publish to its topics and read their tasks' outcomes. Not described here: GET / (the dashboard). A path asked with a method it does not " +
    "take answers 405 MethodNotAllowed, its Allow header listing the methods it takes (GET, HEAD for a read; POST " +
    "for an operation); an unknown path 404 NotFound. A POST takes no body or a JSON one (Content-Type " +
    "application/json, or a +json type): another media type is a 415 UnsupportedMediaType, JSON that does not parse " +
    "or a body over 64 KiB (16 MiB for call and publish) a 400 BadRequest."
  spec.components.securitySchemes[SCHEME] = {
    type: "http",
    scheme: "bearer",
    description: "The admin token (generated at start unless given; in the state file). Needed by every POST, " +
      "and to read a task's outcome (an agent's answer, as a call's)."
  }
  for (const item of Object.values(spec.paths)) {
    if (item.post !== undefined) item.post.security = [{ [SCHEME]: [] }]
  }
  const task = spec.paths["/api/tasks/{id}"]?.get
  if (task !== undefined) task.security = [{ [SCHEME]: [] }]
  // A reload takes no body, or `{}` (a body of null): nothing to require.
  const reload = spec.paths["/api/children/{id}/reload"]?.post?.requestBody
  if (reload !== undefined) {
    // The platform's type allows only `required: true`; OpenAPI allows false (its default).
    Object.assign(reload, {
      required: false,
      description: "None, or {}: a reload runs the child's configuration as it is."
    })
  }
  describeBody(
    spec,
    "/api/children/{id}/call",
    "The task's payload, given to the agent as it is, and the call's timeout (the agent's requestTimeout by default)."
  )
  describeBody(
    spec,
    "/api/topics/{name}/publish",
    "The task's payload, given to the subscriber as it is; with fanout, to every subscriber of the topic."
  )
  Object.assign(spec.paths, otherRoutes)
  spec.components.schemas.TooManyStreams = tooManyStreams
  spec.tags.push({ name: "metrics" })
  return spec
}
