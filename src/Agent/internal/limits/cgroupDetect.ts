/**
 * Which cgroups this process may make for its agents: read once from `/proc/self/mountinfo` and
 * `/proc/self/cgroup`, and the few reads and writes of the cgroup filesystem that the rest of `limits/` shares.
 *
 * Why the supervisor's own cgroup is the base: it is the one place a service manager or a container gave it, and
 * what is made beneath stays within the limits the supervisor itself runs under (the kernel charges a child's use
 * to every ancestor). Why `mountinfo` and not `mounts`: a container's cgroup mount may show a subtree (its root
 * field) while `/proc/self/cgroup` names paths from the hierarchy's top; the root is cut from the path before it
 * is joined to the mount point.
 *
 * cgroup v1 comes first: on a hybrid host the controllers are bound to the v1 hierarchies and the v2 one has none.
 * cgroup v2 is used only on a delegated subtree, and that needs one change to the machine: the no-internal-processes
 * rule lets a non-root cgroup enable controllers for its children only while no process is in it, so `detect` moves
 * the supervisor into a leaf of its own cgroup, `<own>/supervisor`, and enables the controllers in `<own>` (what
 * systemd documents for a unit with `Delegate=yes`). It does so only when the supervisor is alone in its cgroup;
 * with other processes there it reports `none` and why. That leaf is where the supervisor lives from then on: it
 * is never removed.
 *
 * Every read and write here is synchronous (one small file each) and nothing throws: a failure is a reason.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"

/** The controllers that limits need. @internal */
export type Controller = "memory" | "cpu" | "pids"

/** @internal */
export const CONTROLLERS: ReadonlyArray<Controller> = ["memory", "cpu", "pids"]

/** Why each controller that cannot be used cannot be. @internal */
export type Missing = { readonly [C in Controller]?: string }

/**
 * What the machine allows, for the supervisor's process.
 *
 * - `v2`: `base` is a delegated directory, controllers enabled in its `cgroup.subtree_control`, where agent cgroups
 *   go; `controllers` are the ones it passes down.
 * - `v1`: per controller, the supervisor's own cgroup in that controller's hierarchy (writable).
 * - `none`: why no cgroup can be made.
 *
 * @internal
 */
export type Support =
  | {
    readonly _tag: "v2"
    readonly base: string
    readonly controllers: ReadonlyArray<Controller>
    readonly missing: Missing
  }
  | { readonly _tag: "v1"; readonly bases: { readonly [C in Controller]?: string }; readonly missing: Missing }
  | { readonly _tag: "none"; readonly why: string }

/** Where {@link detect} reads (tests point it at a fake tree). @internal */
export interface DetectOptions {
  /** The mount table, by default `/proc/self/mountinfo`. */
  readonly mountinfo?: string | undefined
  /** The process's cgroups, by default `/proc/self/cgroup`. */
  readonly cgroup?: string | undefined
  /** The supervisor's pid (v2: the process moved into `<own>/supervisor`), by default `process.pid`. */
  readonly pid?: number | undefined
  /** Where each process's `stat` is read (`<proc>/<pid>/stat`, for its parent), by default `/proc`. */
  readonly proc?: string | undefined
}

/** The leaf of a v2 delegated cgroup that the supervisor moves into. @internal */
export const SUPERVISOR_LEAF = "supervisor"

// ---- the filesystem, without throwing ----

/** The `code` of a Node error (`ENOENT`, `EBUSY`...), else its message. @internal */
export const errorCode = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : String(error)

/** A small file's text, or `undefined` when it cannot be read. @internal */
export const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/** Writes a small file; the error code when that fails. @internal */
export const writeText = (file: string, text: string): string | undefined => {
  try {
    fs.writeFileSync(file, text)
    return undefined
  } catch (error) {
    return errorCode(error)
  }
}

/** Why `file` cannot be written by this process, or `undefined` when it can. @internal */
export const notWritable = (file: string): string | undefined => {
  try {
    fs.accessSync(file, fs.constants.W_OK)
    return undefined
  } catch (error) {
    return errorCode(error)
  }
}

/** The numbers of a `cgroup.procs` file (empty when it cannot be read). @internal */
export const readPids = (file: string): Array<number> =>
  (readText(file) ?? "").split("\n").filter((line) => /^\d+$/.test(line)).map(Number)

/** The value of `key` in a flat keyed file (`memory.events`, `pids.events`, `memory.oom_control`). @internal */
export const keyedValue = (text: string | undefined, key: string): number | undefined => {
  for (const line of (text ?? "").split("\n")) {
    const [name, value] = line.trim().split(/\s+/)
    if (name === key && value !== undefined && /^\d+$/.test(value)) return Number(value)
  }
  return undefined
}

/** The parent of `pid` from `<proc>/<pid>/stat` (the field after the command's closing parenthesis). */
const parentOf = (proc: string, pid: number): number | undefined => {
  const stat = readText(path.join(proc, String(pid), "stat"))
  if (stat === undefined) return undefined
  const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  return Number.isInteger(ppid) ? ppid : undefined
}

/** Whether `pid` descends from `ancestor` (its parent's parent..., at most 64 steps up). */
const descendsFrom = (proc: string, pid: number, ancestor: number): boolean => {
  let at: number | undefined = pid
  for (let step = 0; step < 64 && at !== undefined && at > 1; step++) {
    at = parentOf(proc, at)
    if (at === ancestor) return true
  }
  return false
}

const words = (text: string | undefined): Array<string> =>
  (text ?? "").split(/\s+/).filter((word) => word !== "").map((word) => word.replace(/^\+/, ""))

// ---- parsers ----

/** One line of `mountinfo`, the fields detection needs. @internal */
export interface Mount {
  /** The directory of the filesystem that is mounted (a subtree of the hierarchy in some containers). */
  readonly root: string
  readonly mountPoint: string
  readonly readOnly: boolean
  readonly fsType: string
  /** For a v1 cgroup mount: its controllers are among them (`rw,memory`). */
  readonly superOptions: ReadonlyArray<string>
}

// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
const unescape = (field: string) =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))

/** The lines of a `mountinfo` file; malformed lines are left out. @internal */
export const parseMountinfo = (text: string): Array<Mount> => {
  const mounts: Array<Mount> = []
  for (const line of text.split("\n")) {
    const fields = line.split(" ")
    // id parent major:minor root mount-point options [optional fields...] - type source super-options
    const dash = fields.indexOf("-", 6)
    if (dash < 0 || dash + 3 >= fields.length) continue
    const superOptions = fields[dash + 3].split(",")
    mounts.push({
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      readOnly: fields[5].split(",").includes("ro") || superOptions.includes("ro"),
      fsType: fields[dash + 1],
      superOptions
    })
  }
  return mounts
}

/** One line of `/proc/<pid>/cgroup`: `0` with no controllers is the v2 hierarchy. @internal */
export interface Membership {
  readonly id: string
  readonly controllers: ReadonlyArray<string>
  readonly path: string
}

/** The lines of a `/proc/<pid>/cgroup` file. @internal */
export const parseCgroupFile = (text: string): Array<Membership> => {
  const memberships: Array<Membership> = []
  for (const line of text.split("\n")) {
    const first = line.indexOf(":")
    const second = line.indexOf(":", first + 1)
    if (first < 0 || second < 0) continue
    const controllers = line.slice(first + 1, second)
    memberships.push({
      id: line.slice(0, first),
      controllers: controllers === "" ? [] : controllers.split(","),
      path: line.slice(second + 1)
    })
  }
  return memberships
}

/** The directory of a cgroup `cgroupPath` under `mount`, or `undefined` when the mount does not show it. @internal */
export const cgroupDir = (mount: Mount, cgroupPath: string): string | undefined => {
  const root = mount.root.endsWith("/") ? mount.root : `${mount.root}/`
  if (mount.root !== "/" && cgroupPath !== mount.root && !cgroupPath.startsWith(root)) return undefined
  const dir = path.join(mount.mountPoint, mount.root === "/" ? cgroupPath : cgroupPath.slice(mount.root.length))
  return dir.length > 1 && dir.endsWith("/") ? dir.slice(0, -1) : dir
}

// ---- detection ----

const v1Base = (
  controller: Controller,
  mounts: ReadonlyArray<Mount>,
  memberships: ReadonlyArray<Membership>
): Either.Either<string, string> => {
  const mount = mounts.find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller))
  if (mount === undefined) return Either.left(`no cgroup v1 ${controller} hierarchy is mounted`)
  const own = memberships.find((m) => m.id !== "0" && m.controllers.includes(controller))
  if (own === undefined) return Either.left(`the process's cgroup file names no ${controller} cgroup`)
  const dir = cgroupDir(mount, own.path)
  if (dir === undefined) {
    return Either.left(`the ${controller} cgroup ${own.path} is not under the mount at ${mount.mountPoint}`)
  }
  if (mount.readOnly) return Either.left(`${mount.mountPoint} is read-only`)
  const why = notWritable(dir)
  return why === undefined ? Either.right(dir) : Either.left(`${dir} is not writable (${why})`)
}

const v2Reason = (why: string) => `cgroup v2: ${why}`

/**
 * Makes `dir` a base for agent cgroups, moving the supervisor into its leaf if it must (see the module's doc), and
 * with it the processes it started before (agents without limits, spawned before the first one with limits: they
 * are its own, and stay unlimited in its leaf).
 */
const delegate = (
  dir: string,
  pid: number,
  proc: string
): Either.Either<Extract<Support, { _tag: "v2" }>, string> => {
  const support = (base: string, controllers: ReadonlyArray<Controller>) => {
    const missing: { [C in Controller]?: string } = {}
    for (const c of CONTROLLERS) {
      if (!controllers.includes(c)) missing[c] = v2Reason(`${base} does not pass the ${c} controller down`)
    }
    return Either.right({ _tag: "v2" as const, base, controllers, missing })
  }
  // Moved before (an earlier detection, or a wrapper that did the same): the parent is the base.
  if (path.basename(dir) === SUPERVISOR_LEAF) {
    const parent = path.dirname(dir)
    const enabled = words(readText(path.join(parent, "cgroup.subtree_control")))
    const controllers = CONTROLLERS.filter((c) => enabled.includes(c))
    if (controllers.length > 0 && notWritable(parent) === undefined) return support(parent, controllers)
  }
  const offered = CONTROLLERS.filter((c) => words(readText(path.join(dir, "cgroup.controllers"))).includes(c))
  if (offered.length === 0) {
    return Either.left(v2Reason(`${dir} offers none of memory, cpu, pids (see its cgroup.controllers)`))
  }
  for (const file of [dir, path.join(dir, "cgroup.procs"), path.join(dir, "cgroup.subtree_control")]) {
    const why = notWritable(file)
    if (why !== undefined) {
      return Either.left(v2Reason(
        `${file} is not writable (${why}): the supervisor's cgroup is not delegated to it (systemd: Delegate=yes; ` +
          "a container: a cgroup namespace of its own, mounted read-write)"
      ))
    }
  }
  const enabled = words(readText(path.join(dir, "cgroup.subtree_control")))
  if (offered.every((c) => enabled.includes(c))) return support(dir, offered)
  const ours = readPids(path.join(dir, "cgroup.procs")).filter((p) => p !== pid)
  const others = ours.filter((p) => !descendsFrom(proc, p, pid))
  if (others.length > 0) {
    return Either.left(v2Reason(
      `${dir} also holds the processes ${others.slice(0, 5).join(", ")}${others.length > 5 ? "..." : ""}: ` +
        "controllers can be enabled for its children only once every process has left it for a leaf (the " +
        "no-internal-processes rule); run the supervisor in a cgroup of its own"
    ))
  }
  const leaf = path.join(dir, SUPERVISOR_LEAF)
  try {
    fs.mkdirSync(leaf)
  } catch (error) {
    if (errorCode(error) !== "EEXIST") return Either.left(v2Reason(`cannot make ${leaf} (${errorCode(error)})`))
  }
  const moved = writeText(path.join(leaf, "cgroup.procs"), String(pid))
  if (moved !== undefined) return Either.left(v2Reason(`cannot move the supervisor into ${leaf} (${moved})`))
  for (const descendant of ours) {
    const why = writeText(path.join(leaf, "cgroup.procs"), String(descendant))
    // ESRCH: it exited since it was listed, and left the cgroup with it.
    if (why !== undefined && why !== "ESRCH") {
      return Either.left(v2Reason(`cannot move the supervisor's process ${descendant} into ${leaf} (${why})`))
    }
  }
  const control = path.join(dir, "cgroup.subtree_control")
  const enabling = writeText(control, offered.map((c) => `+${c}`).join(" "))
  if (enabling !== undefined) {
    return Either.left(v2Reason(`cannot enable ${offered.join(", ")} in ${control} (${enabling})`))
  }
  return support(dir, offered)
}

const v2Support = (
  mounts: ReadonlyArray<Mount>,
  memberships: ReadonlyArray<Membership>,
  pid: number,
  proc: string
): Either.Either<Extract<Support, { _tag: "v2" }>, string> => {
  const mount = mounts.find((m) => m.fsType === "cgroup2")
  if (mount === undefined) return Either.left(v2Reason("not mounted"))
  const own = memberships.find((m) => m.id === "0" && m.controllers.length === 0)
  if (own === undefined) return Either.left(v2Reason("the process's cgroup file has no v2 line (0::)"))
  const dir = cgroupDir(mount, own.path)
  if (dir === undefined) return Either.left(v2Reason(`${own.path} is not under the mount at ${mount.mountPoint}`))
  if (mount.readOnly) return Either.left(v2Reason(`${mount.mountPoint} is read-only`))
  return delegate(dir, pid, proc)
}

const detectWith = (options: DetectOptions): Support => {
  const cgroupFile = options.cgroup ?? "/proc/self/cgroup"
  const mountinfoFile = options.mountinfo ?? "/proc/self/mountinfo"
  const cgroupText = readText(cgroupFile)
  if (cgroupText === undefined) return { _tag: "none", why: `cannot read ${cgroupFile}` }
  const mountText = readText(mountinfoFile)
  if (mountText === undefined) return { _tag: "none", why: `cannot read ${mountinfoFile}` }
  const mounts = parseMountinfo(mountText).filter((m) => m.fsType === "cgroup" || m.fsType === "cgroup2")
  if (mounts.length === 0) return { _tag: "none", why: `no cgroup filesystem is mounted (${mountinfoFile})` }
  const memberships = parseCgroupFile(cgroupText)
  const bases: { [C in Controller]?: string } = {}
  const missing: { [C in Controller]?: string } = {}
  for (const c of CONTROLLERS) {
    Either.match(v1Base(c, mounts, memberships), {
      onLeft: (why) => {
        missing[c] = why
      },
      onRight: (dir) => {
        bases[c] = dir
      }
    })
  }
  if (Object.keys(bases).length > 0) return { _tag: "v1", bases, missing }
  const v1Mounted = mounts.some((m) => m.fsType === "cgroup" && CONTROLLERS.some((c) => m.superOptions.includes(c)))
  return Either.match(v2Support(mounts, memberships, options.pid ?? process.pid, options.proc ?? "/proc"), {
    onRight: (support): Support => support,
    onLeft: (why): Support => ({
      _tag: "none",
      why: `no writable cgroup: ${v1Mounted ? `${Object.values(missing).join("; ")}; ` : ""}${why}`
    })
  })
}

let cached: Support | undefined

/**
 * What the machine allows this process: detected afresh with options (a fake tree); without, a `v1` or `v2` answer
 * is kept for the process's life and `none` is asked again next time (what made it so may pass: another process
 * leaving the supervisor's v2 cgroup). On cgroup v2 the first detection may move the supervisor into a leaf of its
 * cgroup (see the module's doc).
 *
 * @internal
 */
export const detect = (options?: DetectOptions): Support => {
  if (options !== undefined) return detectWith(options)
  if (cached !== undefined) return cached
  const support = detectWith({})
  if (support._tag !== "none") cached = support
  return support
}
