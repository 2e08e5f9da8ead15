/**
 * Where an incarnation runs: as whom (`user`, `group`), with which environment (`inheritEnv`), and in which cgroup
 * (`limits`), decided before it is spawned.
 *
 * With `limits` (and `enforce: "auto"`), the incarnation gets a cgroup of its own where the supervisor can make one
 * (`cgroup.ts`): made and its limits written before the spawn, joined by a wrapper that then execs the agent, so
 * nothing it starts runs outside it even for a moment; every process left in it is killed when the agent exits or
 * is stopped, and the cgroup is removed once the agent is reaped. Where no cgroup can be made, or `enforce` is
 * `"soft"`, the limits are polled (`soft.ts`), and the reason is in `inForce.why`. An agent without `limits` is
 * spawned as before: no wrapper, its process group for containment.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { AgentStartupError } from "../../../Errors.js"
import type * as Config from "../../Config.js"
import type * as AgentProcess from "../../Process.js"
import * as Spawn from "../spawn.js"
import * as Cgroup from "./cgroup.js"
import * as Identity from "./identity.js"
import * as Leftovers from "./leftovers.js"

/** What the spawn of one incarnation needs, and what its exit asks of its cgroup. @internal */
export interface Placement {
  readonly inForce: AgentProcess.LimitsInForce
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Record<string, string | undefined>
  readonly uid: number | undefined
  readonly gid: number | undefined
  /** The limit the kernel enforced on it, read from its cgroup's counters (none without a cgroup). */
  readonly limitHit: () => AgentProcess.LimitReason | undefined
  /**
   * Kills every process left in its cgroup (a no-op without one); after `leftBehind`, removes the cgroup too (the
   * incarnation's late exit: the stop could not).
   */
  readonly sweep: () => void
  /**
   * The incarnation's process outlived SIGKILL and was given up on (`ExitInfo.leftBehind`): its cgroup's removal,
   * when its scope closes, does not wait for it (`Cgroup.removeNow`), and is done again at its real exit.
   */
  readonly leftBehind: () => void
}

/** The account an incarnation runs as, and its whole environment. @internal */
export interface Account {
  readonly env: Record<string, string | undefined>
  readonly uid: number | undefined
  readonly gid: number | undefined
}

/**
 * Resolves `user` and `group` and makes the child's environment (`inheritEnv` applied, the account's `HOME`,
 * `USER`, `LOGNAME` when it has a user): what every program run as the agent needs, its `--check` included. Fails
 * with the `AgentStartupError` the agent's own spawn gives for an account it cannot run as.
 *
 * @internal
 */
export const account = (config: Config.AgentConfig): Effect.Effect<Account, AgentStartupError> =>
  Effect.suspend(() => {
    const resolved = Identity.resolve(config.user, config.group)
    if ("problems" in resolved) {
      return Effect.fail(
        Spawn.classify(config, { message: resolved.problems.map((p) => `${p.field}: ${p.rule}`).join("; ") })
      )
    }
    const { identity } = resolved
    return Effect.succeed({
      env: Spawn.childEnv(config, Identity.accountEnv(identity)),
      uid: identity.uid,
      gid: identity.gid
    })
  })

const limitsOf = (limits: Config.Limits): Pick<AgentProcess.LimitsInForce, "memory" | "cpu" | "pids"> => ({
  ...(limits.memory !== undefined ? { memory: limits.memory } : {}),
  ...(limits.cpu !== undefined ? { cpu: limits.cpu } : {}),
  ...(limits.pids !== undefined ? { pids: limits.pids } : {})
})

/** What polling leaves out, added to the reason for polling. */
const pollingCaveat = (limits: Config.Limits): string =>
  limits.pids !== undefined ? "; pids is not enforced when polling" : ""

const swept = new Set<string>()

/** Once per base and process, before its first cgroup: a dead supervisor's leftovers cleared (`leftovers.ts`), logged. */
const sweepLeftovers = (support: Cgroup.Support): Effect.Effect<void> =>
  Effect.suspend(() => {
    const bases = Leftovers.basesOf(support).filter((base) => !swept.has(base))
    if (bases.length === 0) return Effect.void
    for (const base of bases) swept.add(base)
    return Effect.flatMap(Leftovers.clear(bases), ({ busy, failed, killed, removed }) =>
      Effect.all([
        killed.length === 0 ? Effect.void : Effect.logWarning(
          `killed ${killed.length} process(es) left in the cgroups of supervisors that are gone (agents or their ` +
            `descendants that outlived their supervisor): ${killed.join(", ")}`
        ),
        removed.length === 0 ? Effect.void : Effect.logInfo(
          `removed ${removed.length} cgroup(s) left by supervisors that are gone: ${removed.join(", ")}`
        ),
        busy.length === 0 ? Effect.void : Effect.logWarning(
          "cgroups left by supervisors that are gone still hold processes after SIGKILL: " +
            busy.map((leaf) => `${leaf.path} (${leaf.pids.join(", ")})`).join("; ")
        ),
        failed.length === 0 ? Effect.void : Effect.logWarning(
          `could not remove cgroups left by supervisors that are gone: ${failed.join(", ")}`
        )
      ], { discard: true }))
  })

/**
 * Decides and prepares the placement of one incarnation of `config`; with a cgroup, its removal is a finalizer of
 * the scope, so acquire it before the child (whose release reaps it) for the cgroup to go after the child.
 *
 * @internal
 */
export const acquire = (config: Config.AgentConfig): Effect.Effect<Placement, AgentStartupError, Scope.Scope> =>
  Effect.gen(function*() {
    const { env, gid, uid } = yield* account(config)
    const base = {
      command: config.command,
      args: config.args,
      env,
      uid,
      gid,
      limitHit: () => undefined,
      sweep: () => {},
      leftBehind: () => {}
    }
    const limits = config.limits
    if (limits === undefined) return { ...base, inForce: { mode: "none", why: "no limits asked for" } }
    const polling = (why: string): Placement => ({
      ...base,
      inForce: { mode: "polling", why: why + pollingCaveat(limits), ...limitsOf(limits) }
    })
    if (limits.enforce === "soft") return polling(`enforce is "soft"`)
    const support = Cgroup.detect()
    if (support._tag === "none") return polling(support.why)
    yield* sweepLeftovers(support)
    const owner = uid !== undefined ? { uid, gid: gid ?? 0 } : undefined
    const created = Cgroup.create(support, config.name, {
      ...(limits.memory !== undefined ? { memoryBytes: limits.memory } : {}),
      ...(limits.cpu !== undefined ? { cpuCores: limits.cpu } : {}),
      ...(limits.pids !== undefined ? { pids: limits.pids } : {})
    }, owner)
    if (created._tag === "Left") return polling(created.left)
    const cgroup = created.right
    // Its process left behind (in uninterruptible sleep, still in the cgroup): the child's own bound waited 5 s for
    // it after SIGKILL already, and the removal would wait for it again (5 s for the kill, 2 s for the leaf): it
    // skips those waits, and its leaf goes at the process's real exit (or, if the host ends first, with the next
    // supervisor's sweep of dead supervisors' cgroups).
    let abandoned = false
    // The late removal runs outside any fiber of the agent's (from Node's exit handler): its problems are logged
    // through this runtime's logger.
    const runtime = yield* Effect.runtime<never>()
    const warnOf = (said: string) => (left: ReadonlyArray<string>) =>
      left.length === 0 ? Effect.void : Effect.logWarning(`${said}: ${left.join(", ")}`)
    const removeLate = Effect.flatMap(cgroup.remove, warnOf("could not remove cgroups at the late exit"))
    yield* Effect.addFinalizer(() =>
      abandoned
        ? Effect.flatMap(cgroup.removeNow, warnOf("cgroups kept until the process left behind in them exits"))
        : Effect.flatMap(cgroup.remove, warnOf("could not remove cgroups"))
    )
    const problem = Spawn.programProblem(config)
    if (problem !== undefined) return yield* Effect.fail(Spawn.classify(config, problem))
    // The command as given: the wrapper's `exec` searches the child's PATH as `execvp` does.
    const wrapped = cgroup.wrap(config.command, config.args)
    return {
      ...base,
      command: wrapped.command,
      args: wrapped.args,
      limitHit: cgroup.limitHit,
      // Called in Node's exit handler: the kill runs on (its waits are real timers); the removal kills again. The
      // late exit of one left behind removes what its stop could not.
      sweep: () => void Runtime.runFork(runtime)(abandoned ? removeLate : Effect.asVoid(cgroup.killAll)),
      leftBehind: () => {
        abandoned = true
      },
      inForce: {
        mode: cgroup.mode,
        why: `a cgroup of its own (${support._tag})`,
        ...limitsOf(limits),
        cgroups: cgroup.paths
      }
    }
  })
