/**
 * The OpenAPI document of the JSON endpoints (`OpenApi.fromApi`), with the bearer token the state-changing ones
 * need (it is checked by `guard.ts`, outside the `HttpApi`, so `fromApi` cannot see it) and a 401 on each of them.
 *
 * @internal
 */
import * as OpenApi from "@effect/platform/OpenApi"
import { AdminHttpApi } from "./api.js"

/** The name of the security scheme in the document. */
export const SCHEME = "bearer"

/** The document, made once per server. */
export const document = (): OpenApi.OpenAPISpec => {
  const spec = OpenApi.fromApi(AdminHttpApi)
  spec.info.title = "agent-supervisor admin API"
  spec.info.description = "The tree of a running agent-supervisor: read it, start, stop and restart its children. " +
    "Not described here: GET /api/events and GET /api/children/{id}/stderr/follow (Server-Sent Events), " +
    "GET /metrics (Prometheus text format 0.0.4), GET / (the dashboard)."
  spec.components.securitySchemes[SCHEME] = {
    type: "http",
    scheme: "bearer",
    description: "The admin token (generated at start unless given; in the state file). Needed by every POST."
  }
  for (const item of Object.values(spec.paths)) {
    if (item.post !== undefined) item.post.security = [{ [SCHEME]: [] }]
  }
  return spec
}
