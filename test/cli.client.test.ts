/**
 * The CLI's client of the admin API against servers that misbehave (real HTTP on a loopback port): an answer cut
 * off half way, a connection closed before any answer, nobody listening, and a body that is not the API's. Each
 * ends in one `CliError` that says what happened.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as http from "node:http"
import type * as net from "node:net"
import * as Client from "../src/internal/cli/client.js"

/** A server on a free loopback port answering every request with `handle`, closed with the test's scope. */
const serve = (handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const server = http.createServer(handle)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`))

/** The message `status` (GET /api/tree) fails with against `url`. */
const treeFailure = (url: string) =>
  Effect.map(
    Effect.flip(Client.call({ url, token: Option.none() }, (client) => client.tree.tree())),
    (error) => error.message
  )

describe("CLI client: a server that misbehaves", () => {
  it.scopedLive("an answer cut off half way says the connection closed before its answer ended", () =>
    Effect.gen(function*() {
      const url = yield* serve((_req, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
        res.write(`{"name":"tree","children":[`)
        setTimeout(() => res.socket?.destroy(), 20)
      })
      assert.strictEqual(
        yield* treeFailure(url),
        `The admin API at ${url} closed the connection before its answer ended: up is stopping, or was killed ` +
          "(what was asked may be done in part)"
      )
    }))

  it.scopedLive("a connection closed before any answer; nobody listening; a body that is not the API's", () =>
    Effect.gen(function*() {
      const cut = yield* serve((req) => req.socket.destroy())
      assert.strictEqual(
        yield* treeFailure(cut),
        `The admin API at ${cut} closed the connection before it answered: up is stopping, or was killed (what was ` +
          "asked may be done in part)"
      )
      const stranger = yield* serve((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html/>"))
      assert.match(yield* treeFailure(stranger), new RegExp(`^Unexpected answer from the admin API at ${stranger}: `))
      // A port nobody listens on (one just closed is free again)
      const closed = yield* Effect.scoped(serve(() => {}))
      assert.strictEqual(
        yield* treeFailure(closed),
        `Cannot reach the admin API at ${closed}: is "agent-supervisor up" running there?`
      )
    }))
})
