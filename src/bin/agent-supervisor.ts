#!/usr/bin/env node
/**
 * The `agent-supervisor` command's entry: it holds a SIGINT or SIGTERM that comes while the CLI loads, until the
 * command begins (`internal/cli/earlySignals.ts`: Node's default would end the process at once, nothing said), then
 * loads and runs the CLI (`internal/cli/bin.ts`).
 *
 * @internal
 */
import * as EarlySignals from "../internal/cli/earlySignals.js"

EarlySignals.holdSignals()
await import("../internal/cli/bin.js")
