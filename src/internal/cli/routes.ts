/**
 * Which build of the CLI runs a command line: the commands that only talk to a running `up` start from their bundle
 * (`dist/bin/remote.js`, one file: half the start time, `scripts/bundleCli.mjs`), every other command line from the
 * modules as built (`internal/cli/bin.js`): `up`, `validate` and `conformance` load the library and the user's
 * peers, and a line that does not begin with a remote command's name (help, `--version`, an option first, a typo)
 * goes where every command is. Both builds parse the line the same way (`main.ts`).
 *
 * Imports nothing: the entry loads it before the rest (`bin/agent-supervisor.ts`).
 *
 * @internal
 */

/** The commands the bundle runs: those that only talk to a running `up` through its admin API. @internal */
export const REMOTE_COMMANDS: ReadonlySet<string> = new Set([
  "status",
  "restart",
  "stop",
  "start",
  "reload",
  "scale",
  "call",
  "publish",
  "result",
  "topics",
  "logs",
  "history",
  "events",
  "cluster"
])

/** Whether the command line `args` (after node and the script) starts from the remote commands' bundle. @internal */
export const isRemote = (args: ReadonlyArray<string>): boolean => args.length > 0 && REMOTE_COMMANDS.has(args[0]!)
