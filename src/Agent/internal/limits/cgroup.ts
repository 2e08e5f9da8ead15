/**
 * Per-agent resource limits that the kernel enforces, as systemd does for a unit: each agent incarnation gets a
 * cgroup (one per controller hierarchy on v1), made and limited before the spawn, and joined by the agent's own
 * first instruction.
 *
 * Layout: under each base (`cgroupDetect.ts`: the supervisor's own cgroup on v1, the delegated directory on v2),
 * one directory per supervisor process, `effect-agent-supervisor-<pid>`, and in it one leaf per incarnation,
 * `<agent name>-<n>` (the name with anything but `[A-Za-z0-9._-]` made `_`; `n` counts the incarnations of this
 * process). The per-supervisor directory is removed with its last leaf.
 *
 * Why the agent joins from inside (`wrap`) instead of the supervisor moving its pid after the spawn: in between,
 * the agent could fork or allocate past its limit unseen. A shell that writes its own pid into each leaf and then
 * `exec`s the agent runs nothing of the agent before it is in, and keeps the pid: the supervisor's handle, process
 * group and signals stay the agent's.
 *
 * Why kill by the cgroup: a process group misses the descendants that call `setsid`, a double fork leaves no
 * parent to follow; a cgroup holds every descendant, whatever it does (only root may move a process out). On v1
 * the kill is a loop over `cgroup.procs` without the freezer: a process with a SIGKILL pending cannot complete a
 * fork (the kernel checks for a fatal signal at the end of `fork` and backs out), so each round kills every
 * process that could still fork and the loop ends with the last generation; systemd kills the same way. The race
 * that remains: a pid read from `cgroup.procs` may die and be reused before its kill (Node has no pidfds; pids
 * wrap after 4 million on 64-bit Linux). v2's `cgroup.kill` has neither race.
 *
 * Waits (a killed process leaves its cgroup a moment after it dies) run on real timers, not Effect's `Clock`: the
 * kernel's time, also under `TestClock`. Nothing here throws: a failure is a reason (`Left`) or a line in what
 * `remove` returns.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { KILL_BOUND_MILLIS } from "../child.js"
import { type Controller, errorCode, readPids, type Support, writeText } from "./cgroupDetect.js"
import * as V1 from "./cgroupV1.js"
import * as V2 from "./cgroupV2.js"

export { detect, type DetectOptions, type Support } from "./cgroupDetect.js"

/** Limits of one agent; an absent one is not limited. @internal */
export interface Limits {
  /** Memory (and, where the kernel accounts it, memory + swap): past it the kernel's OOM killer kills. */
  readonly memoryBytes?: number | undefined
  /** CPU time, in cores (0.5: half of one core's time in each 100 ms period). */
  readonly cpuCores?: number | undefined
  /** Processes and threads at once: past it `fork` and `clone` fail with EAGAIN. */
  readonly pids?: number | undefined
}

/** The user an agent runs as (Node's spawn `uid`/`gid`), which must be let into its cgroup. @internal */
export interface Owner {
  readonly uid: number
  readonly gid: number
}

/** Which limit the kernel enforced. @internal */
export type LimitHit = "memory_limit" | "pids_limit"

/** The cgroup(s) of one agent incarnation. @internal */
export interface Cgroup {
  readonly mode: "cgroup-v2" | "cgroup-v1"
  /** The leaf directories (v1: one per hierarchy used). */
  readonly paths: ReadonlyArray<string>
  /**
   * The argv that joins this cgroup, then runs `command`: `/bin/sh -c '<write $$ to each leaf's cgroup.procs>;
   * exec "$@"' effect-agent-cgroup command ...args`. The pid is the agent's (exec). When a join fails the shell
   * exits with 126 and one line on stderr (`effect-agent-supervisor: cannot join the cgroup <dir> ...`); a command
   * that is not found is the shell's exit 127, not a spawn error.
   */
  readonly wrap: (
    command: string,
    args: ReadonlyArray<string>
  ) => { readonly command: string; readonly args: ReadonlyArray<string> }
  /** Which limit the kernel enforced since creation, read from its counters (memory first). */
  readonly limitHit: () => LimitHit | undefined
  /** The processes in the cgroup now (zombies are not: a process leaves its cgroup when it dies). */
  readonly pids: () => ReadonlyArray<number>
  /**
   * SIGKILLs every process in the cgroup until none is left or {@link KILL_BOUND_MILLIS} pass; the processes
   * still there then (in uninterruptible sleep, say).
   */
  readonly killAll: Effect.Effect<ReadonlyArray<number>>
  /**
   * `killAll`, then removes each leaf (retrying while the kernel says EBUSY, for up to {@link REMOVE_BOUND_MILLIS}:
   * a killed process leaves the cgroup a moment after it dies), then the per-supervisor directory when it is
   * empty. What it could not remove, one `<dir> (<why>)` each, for a log line. Running it again is harmless.
   */
  readonly remove: Effect.Effect<ReadonlyArray<string>>
  /**
   * `remove` with short waits, for a cgroup whose process was left behind (waited for already): SIGKILL rounds for
   * {@link REMOVE_NOW_KILL_MILLIS} at most (a descendant forking while the first round is sent is caught by the
   * next), one try at each directory. What it could not remove, as `remove` says it.
   */
  readonly removeNow: Effect.Effect<ReadonlyArray<string>>
}

/** How long `removeNow` goes on killing what is left in the cgroup. @internal */
export const REMOVE_NOW_KILL_MILLIS = 100

/** How long `remove` retries a leaf the kernel says is busy. @internal */
export const REMOVE_BOUND_MILLIS = 2_000

/** The smallest CPU quota written (1% of a core): the kernel refuses quotas under 1 ms. @internal */
export const MIN_CPU_QUOTA_MICROS = 1_000

/** The name of the per-supervisor directory under each base. @internal */
export const supervisorDirName = (pid: number = process.pid): string => `effect-agent-supervisor-${pid}`

// ---- what `cgroupV1.ts` and `cgroupV2.ts` plan ----

/** Limits checked and put in the kernel's units. @internal */
export interface Wanted {
  readonly memoryBytes?: number
  /** Per {@link V1.CPU_PERIOD_MICROS}. */
  readonly cpuQuotaMicros?: number
  readonly pids?: number
}

/** One file of a leaf written, in order; `ifPresent`: only where the kernel has it. @internal */
export interface Write {
  readonly file: string
  readonly value: string
  readonly ifPresent?: boolean
}

/** One leaf to make: under which base, for which controllers, its files. @internal */
export interface LeafPlan {
  readonly base: string
  readonly controllers: ReadonlyArray<Controller>
  readonly writes: ReadonlyArray<Write>
}

/** The leaves of one incarnation. @internal */
export interface Plan {
  readonly mode: Cgroup["mode"]
  readonly leaves: ReadonlyArray<LeafPlan>
  /** Controllers enabled in the per-supervisor directory's `cgroup.subtree_control` (v2). */
  readonly enable: ReadonlyArray<Controller>
  /** The files of each leaf given to an {@link Owner}, for its own pid to be written in. */
  readonly ownerFiles: ReadonlyArray<string>
}

interface Leaf {
  readonly path: string
  readonly controllers: ReadonlyArray<Controller>
}

// ---- making ----

const positiveInteger = (n: number) => Number.isSafeInteger(n) && n > 0

const wantedOf = (limits: Limits): Either.Either<Wanted, string> => {
  const { cpuCores, memoryBytes, pids } = limits
  if (memoryBytes !== undefined && !positiveInteger(memoryBytes)) {
    return Either.left(`memoryBytes must be a positive whole number of bytes, not ${memoryBytes}`)
  }
  if (cpuCores !== undefined && !(Number.isFinite(cpuCores) && cpuCores > 0)) {
    return Either.left(`cpuCores must be a positive number, not ${cpuCores}`)
  }
  if (pids !== undefined && !positiveInteger(pids)) {
    return Either.left(`pids must be a positive whole number, not ${pids}`)
  }
  return Either.right({
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    ...(cpuCores !== undefined ?
      { cpuQuotaMicros: Math.max(MIN_CPU_QUOTA_MICROS, Math.round(cpuCores * V1.CPU_PERIOD_MICROS)) } :
      {}),
    ...(pids !== undefined ? { pids } : {})
  })
}

/** Agent names are `[A-Za-z0-9][A-Za-z0-9._:-]*`; a name from elsewhere still makes one safe directory name. */
const safeName = (name: string): string => {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100)
  return /^[A-Za-z0-9]/.test(safe) ? safe : `agent${safe}`
}

let incarnations = 0

const mkdir = (dir: string): string | undefined => {
  try {
    fs.mkdirSync(dir)
    return undefined
  } catch (error) {
    return errorCode(error)
  }
}

const rmdir = (dir: string): string | undefined => {
  try {
    fs.rmdirSync(dir)
    return undefined
  } catch (error) {
    const code = errorCode(error)
    return code === "ENOENT" ? undefined : code
  }
}

// Best effort: a leaf no process joined yet, a per-supervisor directory that may hold other leaves.
const rollback = (leaves: ReadonlyArray<string>, supervisorDirs: ReadonlyArray<string>) => {
  for (const dir of leaves) rmdir(dir)
  for (const dir of supervisorDirs) rmdir(dir)
}

/** Writes a new leaf's limits and gives its join files to the owner; why not, if it cannot. */
const fill = (dir: string, leaf: LeafPlan, ownerFiles: ReadonlyArray<string>, owner: Owner | undefined) => {
  for (const write of leaf.writes) {
    const file = path.join(dir, write.file)
    // The kernel gives every cgroup of a hierarchy the same files: the base shows it too (a fake tree in tests
    // has them in its base only).
    if (write.ifPresent === true && !fs.existsSync(file) && !fs.existsSync(path.join(leaf.base, write.file))) {
      continue
    }
    const why = writeText(file, write.value)
    if (why !== undefined) return `cannot write ${write.value} to ${file} (${why})`
  }
  if (owner === undefined) return undefined
  for (const name of ownerFiles) {
    const file = path.join(dir, name)
    try {
      fs.chownSync(file, owner.uid, owner.gid)
    } catch (error) {
      return `cannot give ${file} to uid ${owner.uid} (${errorCode(error)})`
    }
  }
  return undefined
}

const makeLeaves = (plan: Plan, name: string, owner: Owner | undefined): Either.Either<Array<Leaf>, string> => {
  const supervisorDirs = Array.from(new Set(plan.leaves.map((leaf) => path.join(leaf.base, supervisorDirName()))))
  for (const dir of supervisorDirs) {
    const made = mkdir(dir)
    if (made !== undefined && made !== "EEXIST") return Either.left(`cannot make ${dir} (${made})`)
    if (plan.enable.length === 0) continue
    const control = path.join(dir, "cgroup.subtree_control")
    const enabled = writeText(control, plan.enable.map((c) => `+${c}`).join(" "))
    if (enabled !== undefined) {
      rollback([], supervisorDirs)
      return Either.left(`cannot enable ${plan.enable.join(", ")} in ${control} (${enabled})`)
    }
  }
  // A leaf of the same name may be left by an earlier process of the same pid: the next number is free.
  for (let attempt = 0; attempt < 100; attempt++) {
    const leafName = `${safeName(name)}-${++incarnations}`
    const made: Array<Leaf> = []
    let why: string | undefined
    let taken = false
    for (const leaf of plan.leaves) {
      const dir = path.join(leaf.base, supervisorDirName(), leafName)
      const code = mkdir(dir)
      if (code === "EEXIST") taken = true
      else if (code !== undefined) why = `cannot make ${dir} (${code})`
      else {
        made.push({ path: dir, controllers: leaf.controllers })
        why = fill(dir, leaf, plan.ownerFiles, owner)
      }
      if (taken || why !== undefined) break
    }
    if (!taken && why === undefined) return Either.right(made)
    rollback(made.map((leaf) => leaf.path), why === undefined ? [] : supervisorDirs)
    if (why !== undefined) return Either.left(why)
  }
  rollback([], supervisorDirs)
  return Either.left(`no free leaf name for ${name} under ${supervisorDirs.join(", ")}`)
}

// ---- one cgroup ----

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

/** Waits on a real timer (see the module's doc). @internal */
export const sleepReal = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

const make = (mode: Cgroup["mode"], leaves: ReadonlyArray<Leaf>): Cgroup => {
  const paths = leaves.map((leaf) => leaf.path)
  const supervisorDirs = Array.from(new Set(paths.map((leaf) => path.dirname(leaf))))
  const pids = () =>
    Array.from(new Set(paths.flatMap((dir) => readPids(path.join(dir, "cgroup.procs"))))).sort((a, b) => a - b)
  // `$$` is the shell's pid, which `exec` hands to the agent. The redirection's own error goes to /dev/null: one
  // line on stderr, ours.
  const script = `for f in ${paths.map((dir) => quote(path.join(dir, "cgroup.procs"))).join(" ")}; do ` +
    `echo $$ 2>/dev/null >"$f" || { echo "effect-agent-supervisor: cannot join the cgroup \${f%/cgroup.procs} ` +
    `(writing the pid to its cgroup.procs failed)" >&2; exit 126; }; done; exec "$@"`

  const killWithin = Effect.fnUntraced(function*(boundMillis: number) {
    const deadline = performance.now() + boundMillis
    if (mode === "cgroup-v2") V2.kill(paths)
    for (let round = 0;; round++) {
      // Never the supervisor itself, whatever moved it there.
      const left = pids().filter((pid) => pid !== process.pid)
      if (left.length === 0) return left
      for (const pid of left) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // ESRCH: it died since the read.
        }
      }
      if (performance.now() >= deadline) return left
      yield* sleepReal(Math.min(50, 2 ** round))
    }
  })
  const killAll = killWithin(KILL_BOUND_MILLIS)

  const removeLeaf = Effect.fnUntraced(function*(dir: string, deadline: number, left: ReadonlyArray<number>) {
    for (let round = 0;; round++) {
      const why = rmdir(dir)
      if (why === undefined) return undefined
      if (why !== "EBUSY" || performance.now() >= deadline) {
        return `${dir} (${why}${left.length > 0 ? `; processes ${left.join(", ")} outlived SIGKILL` : ""})`
      }
      yield* sleepReal(Math.min(50, 2 ** round))
    }
  })

  const removeWithin = Effect.fnUntraced(function*(killMillis: number, removeMillis: number) {
    const left = yield* killWithin(killMillis)
    const deadline = performance.now() + removeMillis
    const problems: Array<string> = []
    for (const dir of paths) {
      const problem = yield* removeLeaf(dir, deadline, left)
      if (problem !== undefined) problems.push(problem)
    }
    for (const dir of supervisorDirs) {
      const why = rmdir(dir)
      // Busy or not empty: another incarnation's leaf is there, and its removal takes the directory.
      if (why !== undefined && why !== "EBUSY" && why !== "ENOTEMPTY" && why !== "EEXIST") {
        problems.push(`${dir} (${why})`)
      }
    }
    return problems
  })

  return {
    mode,
    paths,
    wrap: (command, args) => ({ command: "/bin/sh", args: ["-c", script, "effect-agent-cgroup", command, ...args] }),
    limitHit: () => mode === "cgroup-v1" ? V1.limitHit(leaves) : V2.limitHit(leaves),
    pids,
    killAll,
    remove: removeWithin(KILL_BOUND_MILLIS, REMOVE_BOUND_MILLIS),
    removeNow: removeWithin(REMOVE_NOW_KILL_MILLIS, 0)
  }
}

/**
 * Makes the cgroup(s) of one agent incarnation, limits written, before its spawn; or says why it cannot (a limit
 * whose controller is missing, a bad value, a write the kernel refused). `owner`: the user the agent will run as,
 * let into its leaves (v1; on v2 only the supervisor's own user can be).
 *
 * @internal
 */
export const create = (
  support: Support,
  name: string,
  limits: Limits,
  owner?: Owner
): Either.Either<Cgroup, string> => {
  if (support._tag === "none") return Either.left(support.why)
  return Either.flatMap(wantedOf(limits), (wanted) =>
    Either.flatMap(
      support._tag === "v1" ? V1.plan(support, wanted) : V2.plan(support, wanted, owner),
      (plan) => Either.map(makeLeaves(plan, name, owner), (leaves) => make(plan.mode, leaves))
    ))
}
