/**
 * Spawning agents through a fork server: a small process that forks them for this one, as OTP's `erl_child_setup`
 * spawns the ports of the Erlang VM (and Python's `multiprocessing` forkserver its workers).
 *
 * Node's `spawn` forks the calling process, at a cost that grows with its memory and is paid on its one event
 * loop: a supervisor of 1,000 agents (250-360 MB) took 2.5-4 ms of its own CPU per spawn on a 2-core machine, about
 * half of a bulk start. Through the fork server the fork happens in a process of about 40 MB, on another core,
 * and this process only receives the agent's three pipes (Node's handle passing over an IPC channel) and hears its
 * exit as a message (see README "Benchmarks", `scale`).
 *
 * ```ts
 * // around the program that owns the tree: one server for the tree's whole life
 * program.pipe(Effect.provide(Agent.ForkServer.layer))
 * ```
 *
 * What stays the same: each agent runs in its own process group, with the environment, `cwd`, `uid` and `gid` it
 * would have had, and every signal (a stop's SIGTERM, a kill's SIGKILL, `killAll`) goes to that group straight from
 * this process; its pipes, its output and its exit code or signal are as from a child of this process. What
 * differs: the agent's parent is the fork server's process (`/proc/PID/stat`'s `ppid`), whose own process starts
 * at the first spawn (about 40-60 ms once) and ends once the layer's scope has closed and no agent of it runs (so a
 * layer provided around `Supervisor.make` alone, whose scope closes as soon as the tree is made, still serves the
 * tree's agents; a spawn after that keeps the server, or starts a new one). It ignores the signals that end a
 * process (a Ctrl-C reaches the whole foreground process group: the stop of the agents needs their exits heard)
 * and exits when this process is gone. If it ends while agents run (killed by hand, or by the OOM killer), their
 * exits can no longer be heard: each such agent's group is sent SIGKILL and its exit reported as by SIGKILL, so its
 * supervisor restarts it as after a crash, through a new fork server; a spawn not answered yet fails
 * (`AgentStartupError`), and so do the waiting spawns of a server that answers nothing for 30 s (stopped, hung: it
 * is killed). A relative `cwd` is resolved against this process's working directory at each spawn, as before; what
 * a process passes on to its children by itself (its `umask`, resource limits set with `prlimit`, its scheduling
 * priority) is the server's, as it was when the server started.
 *
 * Without this layer, agents are spawned from this process, as Node's `spawn` does; with the environment variable
 * `AGENT_SUPERVISOR_FORK_SERVER=1` (read at each start), every agent whose context has no fork server is spawned
 * through one server for the whole process (for a program not written for it). A tree file says `forkServer: true`
 * for its tree's agents (`TreeFile.make`, `layer` and `run`, and `agent-supervisor up`).
 *
 * @since 0.1.0
 */
import type * as Layer from "effect/Layer"
import * as Internal from "./internal/forkServer.js"

/**
 * The fork server agents are spawned through, when the context has one: read by every agent's start (an
 * `AgentProcess.make`, a supervisor's children and their restarts, pools).
 *
 * @since 0.1.0
 */
export const ForkServer: typeof Internal.Tag = Internal.Tag

/**
 * A fork server for the layer's scope. Its process starts at the first spawn (and again after it ended), and exits
 * once the scope has closed and no agent spawned through it runs.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Internal.Tag> = Internal.layer
