/**
 * The `agent-supervisor` command, run once this module is loaded (by `bin/agent-supervisor.ts`; the commands are in
 * `main.ts`). A failure prints its message alone, no stack, and exits 1; SIGINT and SIGTERM stop what runs cleanly
 * and exit 0 (`NodeRuntime.runMain`), but a command that ends by itself (`call`, `status`...) says it was
 * interrupted and exits 130 or 143 (`interrupted.ts`). `NodeRuntime.runMain` puts its signal handlers in place
 * before this module's evaluation ends.
 *
 * @internal
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { defaultTeardown } from "@effect/platform/Runtime"
import * as Effect from "effect/Effect"
import * as EarlySignals from "./earlySignals.js"
import * as Interrupted from "./interrupted.js"
import * as Cli from "./main.js"
import { report } from "./report.js"
import { version } from "./version.js"

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
      // A signal held while the CLI loaded that no command took (its help, a bad argument): it ends the program
      EarlySignals.passOn()
      defaultTeardown(exit, (code) => onExit(Interrupted.exitCode(code)))
    }
  })
)
// runMain's handlers, and this module's (`Interrupted.watchSignals`), are in place: nothing more is held
EarlySignals.handlersInPlace()
