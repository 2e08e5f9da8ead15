#!/usr/bin/env node
/**
 * The `agent-supervisor` command's entry: it holds a SIGINT or SIGTERM that comes while the CLI loads, until the
 * command begins (`internal/cli/earlySignals.ts`: Node's default would end the process at once, nothing said), then
 * loads and runs the CLI: a command that only talks to a running `up` from its bundle (`remote.js`, built by
 * `scripts/bundleCli.mjs`), any other from the modules as built (`internal/cli/bin.ts`); `internal/cli/routes.ts`
 * says which.
 *
 * @internal
 */
import * as EarlySignals from "../internal/cli/earlySignals.js"
import { isRemote } from "../internal/cli/routes.js"

EarlySignals.holdSignals()
if (isRemote(process.argv.slice(2))) {
  // @ts-expect-error: built by scripts/bundleCli.mjs after tsc, it has no declarations
  await import("./remote.js")
} else {
  await import("../internal/cli/bin.js")
}
