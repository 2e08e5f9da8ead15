/**
 * Where a running `agent-supervisor up` is, for the commands that talk to it: its admin API's URL and token,
 * from flags, else the environment, else the state file that `up` writes next to its tree file.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { isAlive } from "../alive.js"
import { CliError } from "./errors.js"

/** The environment variables that name a running `up` (as `--url` and `--token` do). */
export const ENV_URL = "AGENT_SUPERVISOR_URL"
export const ENV_TOKEN = "AGENT_SUPERVISOR_TOKEN"
/** The state file to write (`up`) or read (the others), instead of the one beside the tree file (`--state-file`). */
export const ENV_STATE_FILE = "AGENT_SUPERVISOR_STATE_FILE"

/**
 * What the state file of a running `up` holds (written by the admin API with mode 0600); or, while `up` still
 * starts its tree, its claim on the file.
 */
const StateFile = Schema.Union(
  Schema.Struct({ url: Schema.String, token: Schema.String, pid: Schema.Number }),
  Schema.Struct({ pid: Schema.Number, starting: Schema.Literal(true) })
)

/** The state file of the tree file at `file`: `.NAME.admin.json` beside it (`examples/.tree.yaml.admin.json`). */
export const stateFileOf = (path: Path.Path, file: string): string =>
  path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.admin.json`)

/** The admin API of a running `up`: its base URL (no trailing slash) and its token, when one is known. */
export interface Address {
  readonly url: string
  readonly token: Option.Option<string>
}

/** Where to look, from the command line. */
export interface Where {
  readonly url: Option.Option<string>
  readonly token: Option.Option<string>
  readonly file: Option.Option<string>
  readonly stateFile?: Option.Option<string> | undefined
}

const readState = (fs: FileSystem.FileSystem, stateFile: string, file: string) =>
  Effect.gen(function*() {
    // The state file given alone (--state-file): the command that writes it names it, with a tree file to come
    const up = file === "" ? "agent-supervisor up" : `agent-supervisor up ${file}`
    const start = file === "" ? `agent-supervisor up TREE_FILE --state-file ${stateFile}` : up
    const text = yield* fs.readFileString(stateFile).pipe(
      Effect.mapError(() =>
        new CliError({
          message: `No running "${up}" found: ${stateFile} does not exist or cannot be read. Start the tree with ` +
            `"${start}", or give --url and --token.`
        })
      )
    )
    const info = yield* fs.stat(stateFile).pipe(Effect.orElseSucceed(() => undefined))
    const uid = process.getuid?.()
    if (
      info !== undefined &&
      ((info.mode & 0o077) !== 0 || (uid !== undefined && info.uid._tag === "Some" && info.uid.value !== uid))
    ) {
      return yield* new CliError({
        message: `${stateFile} is readable by others or owned by another user: not trusted (up writes it with mode ` +
          "0600). Remove it, or give --url and --token."
      })
    }
    const state = yield* Schema.decodeUnknown(Schema.parseJson(StateFile))(text).pipe(
      Effect.mapError(() => new CliError({ message: `${stateFile} is not a state file of agent-supervisor up.` }))
    )
    if (!isAlive(state.pid)) {
      return yield* new CliError({
        message: `The "agent-supervisor up" that wrote ${stateFile} (pid ${state.pid}) is no longer running: start ` +
          "it again (up replaces the file), or delete the file"
      })
    }
    if ("starting" in state) {
      return yield* new CliError({
        message: `The "${up}" that wrote ${stateFile} (pid ${state.pid}) is still starting its tree: try again ` +
          `once it has started (it logs "dashboard: URL" then).`
      })
    }
    return state
  })

const trimSlash = (url: string) => url.replace(/\/+$/, "")

/** Why `url` cannot be the admin API's base URL (not a URL; not http or https), or `undefined`. */
const notAnAddress = (url: string): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "is not a URL"
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:"
    ? undefined
    : `is not an http or https URL (${parsed.protocol})`
}

/**
 * The address from `--url` (or `AGENT_SUPERVISOR_URL`) with `--token` (or `AGENT_SUPERVISOR_TOKEN`), none for
 * reads; else from a state file: `--state-file` (or `AGENT_SUPERVISOR_STATE_FILE`), the one beside `--file`, or
 * the one state file in the working directory, whose token goes to its own URL only. A state file is trusted only
 * when this user owns it and nobody else may read it (as `up` writes it: mode 0600).
 */
export const resolve = (where: Where): Effect.Effect<Address, CliError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const env = (name: string) => Option.fromNullable(process.env[name]).pipe(Option.filter((v) => v !== ""))
    const url = Option.orElse(where.url, () => env(ENV_URL))
    const token = Option.orElse(where.token, () => env(ENV_TOKEN))
    // A URL given goes with the token given (none for reads): a state file's token never goes to another server.
    if (Option.isSome(url)) {
      const bad = notAnAddress(url.value)
      if (bad !== undefined) {
        return yield* new CliError({
          message: `${Option.isSome(where.url) ? "--url" : ENV_URL} "${url.value}" ${bad}: give the admin API's ` +
            "base URL, as up logs it (http://127.0.0.1:43127)"
        })
      }
      return { url: trimSlash(url.value), token }
    }
    const chosen = Option.orElse(where.stateFile ?? Option.none(), () => env(ENV_STATE_FILE))
    const stateFile = yield* Option.match(chosen, {
      onSome: (stateFile) =>
        Effect.succeed({ stateFile: path.resolve(stateFile), file: Option.getOrElse(where.file, () => "") }),
      onNone: () =>
        Option.match(where.file, {
          onSome: (file) => Effect.succeed({ stateFile: stateFileOf(path, file), file }),
          onNone: () => findOne(fs, path)
        })
    })
    const state = yield* readState(fs, stateFile.stateFile, stateFile.file)
    // The state file's own pair: its URL with its token (a token given beside it is for that server too).
    return { url: trimSlash(state.url), token: Option.orElse(token, () => Option.some(state.token)) }
  })

/** The one state file in the working directory, and the tree file it belongs to. */
const findOne = (fs: FileSystem.FileSystem, path: Path.Path) =>
  Effect.gen(function*() {
    const names = yield* fs.readDirectory(".").pipe(Effect.orElseSucceed(() => [] as Array<string>))
    const found = names.filter((name) => name.startsWith(".") && name.endsWith(".admin.json")).sort()
    if (found.length === 1) {
      return { stateFile: path.resolve(found[0]), file: found[0].slice(1, -".admin.json".length) }
    }
    return yield* new CliError({
      message: found.length === 0
        ? "No running tree found in this directory: give the tree file (--file tree.yaml), or --url and " +
          `--token (or ${ENV_URL} and ${ENV_TOKEN}).`
        : `Several trees have state files here (${found.join(", ")}): say which with --file.`
    })
  })
