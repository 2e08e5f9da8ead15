/**
 * An agent's last health sample, kept in place: its fields in one object made once per agent, and the sample made
 * again only when it is read (`whichChildren`, the admin API), which is rare; a heartbeat notes one every beat.
 *
 * A sample kept as it was made lived one heartbeat interval: in a busy process that is past two scavenges of the
 * young generation, so every beat of every agent moved it to the old generation, with its `Option` and its numbers
 * (a timestamp is no small integer: a heap number of its own). At 1,000 agents beating every second that was about
 * a third of what reached the old generation, whose marking cost the supervisor a tenth of its CPU. Here the
 * numbers are written over in place, and what is kept of a beat is the agent's own report, if it sent one.
 *
 * @internal
 */
import * as Option from "effect/Option"
import type * as Health from "../../Health.js"

type Report = Health.HealthSample["report"] extends Option.Option<infer R> ? R : never

/** The last sample of one agent. @internal */
export class LastSample {
  private noted = false
  private agent = ""
  private pid = 0
  private latencyMillis = 0
  private report: Report | undefined = undefined
  // Made once per scan of /proc, not per beat (see the heartbeat): kept as they are.
  private memoryMb: Option.Option<number> = Option.none()
  private cpuPercent: Option.Option<number> = Option.none()
  private processes = 0
  private timestamp = 0

  /** Keeps `sample`'s facts (not the sample). */
  note(sample: Health.HealthSample): void {
    this.noted = true
    this.agent = sample.agent
    this.pid = sample.pid
    this.latencyMillis = sample.latencyMillis
    this.report = Option.getOrUndefined(sample.report)
    this.memoryMb = sample.memoryMb
    this.cpuPercent = sample.cpuPercent
    this.processes = sample.processes
    this.timestamp = sample.timestamp
  }

  /** Forgets the sample noted: its incarnation is no longer running. */
  clear(): void {
    this.noted = false
    this.report = undefined
  }

  /** The last sample noted, made anew (equal to it); `undefined` before the first, and after `clear`. */
  get(): Health.HealthSample | undefined {
    if (!this.noted) return undefined
    return {
      agent: this.agent,
      pid: this.pid,
      latencyMillis: this.latencyMillis,
      report: Option.fromNullable(this.report),
      memoryMb: this.memoryMb,
      cpuPercent: this.cpuPercent,
      processes: this.processes,
      timestamp: this.timestamp
    }
  }
}
