import { assert, describe, it } from "@effect/vitest"
import * as State from "../../src/Agent/State.js"

const all = State.AgentState.literals

describe("State", () => {
  it("the transition table is DESIGN's lifecycle plus the manual starts, and nothing else", () => {
    const legal = all.flatMap((from) => all.filter((to) => State.canTransition(from, to)).map((to) => `${from}->${to}`))
    assert.deepStrictEqual(
      legal.sort(),
      [
        // DESIGN: IDLE -> STARTING -> RUNNING -> STOPPING -> STOPPED
        "IDLE->STARTING",
        "STARTING->RUNNING",
        "RUNNING->STOPPING",
        "STOPPING->STOPPED",
        // STARTING|RUNNING -> CRASHED -> RESTARTING -> STARTING
        "STARTING->CRASHED",
        "RUNNING->CRASHED",
        "CRASHED->RESTARTING",
        "RESTARTING->STARTING",
        // a stop from STARTING, CRASHED or RESTARTING goes through STOPPING
        "STARTING->STOPPING",
        "CRASHED->STOPPING",
        "RESTARTING->STOPPING",
        // manual operations: start a stopped agent; restart a parked one (closing its circuit)
        "STOPPED->STARTING",
        "CRASHED->STARTING"
      ].sort()
    )
  })

  it("no state goes to itself", () => {
    for (const state of all) assert.isFalse(State.canTransition(state, state))
  })
})
