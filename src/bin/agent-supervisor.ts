#!/usr/bin/env node
/**
 * The `agent-supervisor` command (see `internal/cli/main.ts`). A failure prints its message alone, no stack, and
 * exits 1; SIGINT and SIGTERM stop what runs cleanly and exit 0 (`NodeRuntime.runMain`), but a command that ends by
 * itself (`call`, `status`...) says it was interrupted and exits 130 or 143 (`internal/cli/interrupted.ts`).
 *
 * @internal
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { defaultTeardown } from "@effect/platform/Runtime"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import * as Interrupted from "../internal/cli/interrupted.js"
import * as Cli from "../internal/cli/main.js"
import { report } from "../internal/cli/report.js"

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  readonly version: string
}

Interrupted.watchSignals()
Cli.run(version)(process.argv).pipe(
  Effect.tapErrorCause((cause) => {
    const text = report(cause)
    return text === undefined ? Effect.void : Effect.sync(() => process.stderr.write(text + "\n"))
  }),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // A one-shot command that a signal interrupted exits 130 or 143 (`interrupted.ts`), the others as runMain's own
    teardown: (exit, onExit) => {
      Interrupted.unwatchSignals()
      defaultTeardown(exit, (code) => onExit(Interrupted.exitCode(code)))
    }
  })
)
