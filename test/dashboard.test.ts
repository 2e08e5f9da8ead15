/**
 * The dashboard in a real browser (issue 11): Debian's Chromium, driven by playwright-core, on the page the admin API
 * serves for a real tree of real agents. One page is opened once and never reloaded: every change below reaches it
 * through its own polling and event streams. Waits are playwright's (a locator waited for), never fixed sleeps.
 *
 * The test of the killed agent leaves a screenshot in `test/artifacts/dashboard.png` (git-ignored), for the README.
 */
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Browser, Page } from "playwright-core"
import * as AdminApi from "../src/AdminApi.js"
import * as Supervisor from "../src/Supervisor.js"
import { describeWithBrowser, launch } from "./browser.js"
import { agentConfig, eventually, eventuallyEffect, isAlive, root, TestLive } from "./support.js"

const token = "dashboard-test-token-0123456789"
/** How long one wait in the page may take (a loaded machine starts Chromium and node agents slowly)... */
const waitMillis = 30_000
/** ... and a whole test, which waits several times: longer, so that a failing wait says what it waited for. */
const testMillis = 120_000
const screenshot = path.join(root, "test", "artifacts", "dashboard.png")

const agent = (id: string) =>
  Supervisor.agent({
    id,
    config: agentConfig("echo", { name: id, restartBackoff: 0, heartbeatInterval: "250 millis" })
  })

/** The demo's shape: an agent at the root and one in a nested supervisor; and a pool of 2. */
const Tree = Supervisor.layer({
  name: "demo",
  children: [
    agent("echo"),
    Supervisor.supervisor({ id: "workers", children: [agent("pinger")] }),
    // No heartbeat within the tests: its memory is read from /proc, not from a beat
    // No beat while the test runs: the first falls at the incarnation's phase of the interval (a hash of its name
    // and pid), which for "1 hour" came within the test's seconds once in a few hundred runs
    Supervisor.agent({ id: "quiet", config: agentConfig("echo", { name: "quiet", heartbeatInterval: "1000 days" }) }),
    Supervisor.pool({
      id: "pool",
      size: 2,
      config: agentConfig("echo", { name: "member", restartBackoff: 0, heartbeatInterval: "250 millis" })
    })
  ]
})

/** The page, opened once, and the errors it threw or logged (a Content-Security-Policy violation is logged). */
class Dashboard extends Context.Tag("test/Dashboard")<Dashboard, {
  readonly browser: Browser
  readonly page: Page
  readonly pageErrors: Array<string>
  readonly consoleErrors: Array<string>
}>() {}

const DashboardLive = Layer.scoped(
  Dashboard,
  Effect.gen(function*() {
    const { url } = yield* AdminApi.AdminServer
    const browser = yield* launch
    const context = yield* Effect.acquireRelease(
      Effect.promise(() => browser.newContext({ viewport: { width: 1440, height: 720 } })),
      (context) => Effect.promise(() => context.close())
    )
    const page = yield* Effect.promise(() => context.newPage())
    page.setDefaultTimeout(waitMillis)
    const pageErrors: Array<string> = []
    page.on("pageerror", (error) => pageErrors.push(error.message))
    const consoleErrors: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text())
    })
    yield* Effect.promise(() => page.goto(url))
    return { browser, page, pageErrors, consoleErrors }
  })
)

const Live = DashboardLive.pipe(
  Layer.provideMerge(AdminApi.layer({ port: 0, token })),
  Layer.provideMerge(Tree),
  Layer.provideMerge(TestLive)
)

const pw = <A>(f: () => Promise<A>): Effect.Effect<A> => Effect.promise(f)

/** The row of a child, by its path below the root. */
const row = (page: Page, id: string, where = "") => page.locator(`tr[data-testid="child-row"][data-id="${id}"]${where}`)

/** The newest entry of the event log with this tag (`Agent.Spawned`, `ChildStarted`, ...) and text, of one child. */
const event = (page: Page, tag: string, text: string, child?: string) => {
  const entries = page.locator(`[data-testid=events] [data-testid=event][data-tag="${tag}"]`).filter({ hasText: text })
  const where = child === undefined ? entries : entries.filter({ has: page.locator(".where", { hasText: child }) })
  return where.first()
}

/** The pid the tree reports for a child (an agent of the root, of `workers` or of `pool`), once it has one. */
const pidOf = (id: string) =>
  Effect.gen(function*() {
    const root = yield* Supervisor.RootSupervisor
    const [parent, child] = id.includes("/") ? id.split("/") : [undefined, id]
    const sup = parent === undefined ? root : yield* Effect.orDie(root.childSupervisor(parent))
    const info = (yield* sup.whichChildren).find((c) => c.id === child)
    return info === undefined ? undefined : Option.getOrUndefined(info.pid)
  })

/** Waits for the tree to report a pid for `id` other than `not`, and returns it. */
const newPidOf = (id: string, not: number) =>
  Effect.gen(function*() {
    let pid: number | undefined
    yield* eventuallyEffect(
      `${id} has a pid other than ${not}`,
      Effect.map(pidOf(id), (p) => (pid = p) !== undefined && p !== not)
    )
    return pid!
  })

/** Waits until the row shows `id` RUNNING with a pid other than `not`, and returns the pid it shows. */
const shownNewPid = (page: Page, id: string, not: number) =>
  Effect.gen(function*() {
    const running = row(page, id, `[data-state="RUNNING"]:not([data-pid=""]):not([data-pid="${not}"])`)
    yield* pw(() => running.waitFor())
    return Number(yield* pw(() => running.locator("[data-testid=pid]").textContent()))
  })

/** Nothing thrown, nothing logged as an error but the refused token's 401 (the restart test's). */
const noPageErrors = Effect.gen(function*() {
  const { consoleErrors, pageErrors } = yield* Dashboard
  assert.deepStrictEqual(pageErrors, [])
  assert.deepStrictEqual(consoleErrors.filter((text) => !text.includes("401 (Unauthorized)")), [])
})

describeWithBrowser("dashboard", () => {
  layer(Live, { excludeTestServices: true, timeout: "120 seconds" })("dashboard in Chromium", (it) => {
    it.effect(
      "shows the tree: both agents RUNNING with their pids, the nested supervisor, heartbeats",
      () =>
        Effect.gen(function*() {
          const { page } = yield* Dashboard
          for (const id of ["echo", "workers/pinger"]) {
            yield* pw(() => row(page, id, `[data-state="RUNNING"]`).waitFor())
            const pid = yield* pidOf(id)
            assert.isDefined(pid)
            // the state and pid as shown, in the row's cells
            assert.strictEqual(
              yield* pw(() => row(page, id).locator("[data-testid=state-badge]").textContent()),
              "RUNNING"
            )
            assert.strictEqual(yield* pw(() => row(page, id).locator("[data-testid=pid]").textContent()), String(pid))
            // CPU and RSS sparklines, their last readings, and a ping latency from the heartbeats
            yield* pw(() => row(page, id).locator(`[data-testid=cpu] polyline:not([points=""])`).waitFor())
            yield* pw(() => row(page, id).locator("[data-testid=cpu-value]", { hasText: /^\d+\.\d%$/ }).waitFor())
            yield* pw(() => row(page, id).locator(`[data-testid=rss] polyline:not([points=""])`).waitFor())
            yield* pw(() => row(page, id).locator("[data-testid=rss-value]", { hasText: /^\d+\.\d MiB$/ }).waitFor())
            yield* pw(() => row(page, id).locator("[data-testid=latency]", { hasText: / ms$/ }).waitFor())
          }
          // Memory before any heartbeat (a new user's finding: "—" for the first 30 s by default), CPU% after one
          yield* pw(() => row(page, "quiet", `[data-state="RUNNING"]`).waitFor())
          yield* pw(() => row(page, "quiet").locator("[data-testid=rss-value]", { hasText: /^\d+\.\d MiB$/ }).waitFor())
          assert.strictEqual(yield* pw(() => row(page, "quiet").locator("[data-testid=cpu-value]").textContent()), "—")
          yield* pw(() => row(page, "workers", `[data-kind="supervisor"][data-state="RUNNING"]`).waitFor())
          assert.strictEqual(
            yield* pw(() => page.locator("[data-testid=title]").textContent()),
            "agent-supervisor · demo"
          )
          yield* pw(() => page.locator("[data-testid=connection]", { hasText: "live" }).waitFor())
          assert.isTrue(yield* pw(() => page.locator("[data-testid=banner]").isHidden()))
          yield* noPageErrors
        }),
      testMillis
    )

    it.effect(
      "shows the stderr tail of the agent clicked: its recent lines, then the new ones",
      () =>
        Effect.gen(function*() {
          const { page } = yield* Dashboard
          const root = yield* Supervisor.RootSupervisor
          yield* pw(() => row(page, "workers/pinger").locator("[data-testid=name]").click())
          yield* pw(() => page.locator("[data-testid=stderr-for]", { hasText: "workers/pinger" }).waitFor())
          // written while another agent is shown: read back from the agent's recent lines
          yield* Effect.orDie(root.call("echo", { stderr: { lines: 1, length: 5 } }))
          yield* pw(() => row(page, "echo").locator("[data-testid=name]").click())
          const lines = page.locator("[data-testid=stderr] [data-testid=stderr-line]")
          yield* pw(() => lines.filter({ hasText: "0:eeeee" }).waitFor())
          // written while it is shown: arrives through the live stream
          yield* Effect.orDie(root.call("echo", { stderr: { lines: 2, length: 9 } }))
          yield* pw(() => lines.filter({ hasText: "1:eeeeeeeee" }).waitFor())
          assert.strictEqual(yield* pw(() => lines.filter({ hasText: "0:eeeee" }).count()), 2)
          yield* noPageErrors
        }),
      testMillis
    )

    it.effect(
      "restart: asks for the token, shows a refused one's error, then the new pid and the restart's events; stop, start",
      () =>
        Effect.gen(function*() {
          const { page } = yield* Dashboard
          const before = (yield* pidOf("echo"))!
          yield* pw(() => row(page, "echo").locator("[data-testid=restart]").click())
          yield* pw(() => page.locator("[data-testid=token-input]").fill("not-the-token-0123456789"))
          yield* pw(() => page.locator("[data-testid=token-submit]").click())
          yield* pw(() => page.locator("[data-testid=action-error]", { hasText: "Unauthorized" }).waitFor())
          assert.strictEqual(yield* pidOf("echo"), before)
          // a refused token is forgotten and asked again
          yield* pw(() => page.locator("[data-testid=token-input]").fill(token))
          yield* pw(() => page.locator("[data-testid=token-submit]").click())
          const shown = yield* shownNewPid(page, "echo", before)
          assert.strictEqual(shown, yield* newPidOf("echo", before))
          assert.isTrue(yield* pw(() => page.locator("[data-testid=action-error]").isHidden()))
          // the new incarnation in the event log, from the tree's events, and the button's answer
          yield* pw(() => event(page, "Agent.StateChanged", "RUNNING → STOPPING", "echo").waitFor())
          yield* pw(() => event(page, "Agent.StateChanged", "STOPPED → STARTING", "echo").waitFor())
          yield* pw(() => event(page, "Agent.Spawned", `pid ${shown}`, "echo").waitFor())
          yield* pw(() => event(page, "Dashboard", `restart: RUNNING, pid ${shown}`, "echo").waitFor())
          // the token is kept: a second restart asks for nothing
          yield* pw(() => row(page, "echo").locator("[data-testid=restart]").click())
          const again = yield* shownNewPid(page, "echo", shown)
          assert.strictEqual(again, yield* newPidOf("echo", shown))
          assert.isTrue(yield* pw(() => page.locator("[data-testid=token-form]").isHidden()))

          // stop: STOPPED with no pid, its process gone, only start to click; then start: RUNNING with a new pid
          yield* pw(() => row(page, "echo").locator("[data-testid=stop]").click())
          yield* pw(() => row(page, "echo", `[data-state="STOPPED"][data-status="stopped"][data-pid=""]`).waitFor())
          yield* pw(() => event(page, "Dashboard", "stop: STOPPED", "echo").waitFor())
          assert.isUndefined(yield* pidOf("echo"))
          yield* eventually(`the stopped agent's process ${again} is gone`, () => !isAlive(again))
          yield* pw(() => row(page, "echo").locator("[data-testid=stop]:disabled").waitFor())
          yield* pw(() => row(page, "echo").locator("[data-testid=start]").click())
          const started = yield* shownNewPid(page, "echo", again)
          assert.strictEqual(started, yield* newPidOf("echo", again))
          yield* pw(() => event(page, "Dashboard", `start: RUNNING, pid ${started}`, "echo").waitFor())
          yield* pw(() => event(page, "Agent.Spawned", `pid ${started}`, "echo").waitFor())
          yield* noPageErrors
        }),
      testMillis
    )

    it.effect(
      "reload: an agent's pid changes; a pool shows its size, scale changes it, and its reload replaces its members",
      () =>
        Effect.gen(function*() {
          const { page } = yield* Dashboard
          const root = yield* Supervisor.RootSupervisor
          // The token is asked once per session: the restart test above gave it, unless run alone
          const click = (id: string, button: string) =>
            Effect.gen(function*() {
              yield* pw(() => row(page, id).locator(`[data-testid=${button}]`).click())
              if (yield* pw(() => page.locator("[data-testid=token-form]").isVisible())) {
                yield* pw(() => page.locator("[data-testid=token-input]").fill(token))
                yield* pw(() => page.locator("[data-testid=token-submit]").click())
              }
            })

          // reload of an agent: a new pid, shown and logged; the old process gone
          yield* pw(() => row(page, "echo", `[data-state="RUNNING"]:not([data-pid=""])`).waitFor())
          const before = (yield* pidOf("echo"))!
          yield* click("echo", "reload")
          const shown = yield* shownNewPid(page, "echo", before)
          assert.strictEqual(shown, yield* newPidOf("echo", before))
          yield* pw(() => event(page, "Dashboard", `reload: RUNNING, pid ${shown}`, "echo").waitFor())
          yield* eventually(`the reloaded agent's old process ${before} is gone`, () => !isAlive(before))

          // a pool: its size and routing, reload and scale on its row; neither on a plain supervisor's
          const pool = row(page, "pool", `[data-pool="2"]`)
          yield* pw(() => pool.waitFor())
          assert.strictEqual(
            yield* pw(() => pool.locator(".kind").textContent()),
            "pool of 2 (least-in-flight)"
          )
          assert.isTrue(yield* pw(() => pool.locator("[data-testid=reload]").isVisible()))
          assert.isTrue(yield* pw(() => pool.locator("[data-testid=scale-size]").isVisible()))
          assert.isTrue(yield* pw(() => row(page, "workers").locator("[data-testid=reload]").isHidden()))
          assert.isTrue(yield* pw(() => row(page, "workers").locator("[data-testid=scale]").isHidden()))
          assert.isTrue(yield* pw(() => row(page, "echo").locator("[data-testid=scale]").isHidden()))

          // scale: a bad size is said in the page, asked of no one; 3 adds a member, RUNNING with its pid
          yield* pw(() => pool.locator("[data-testid=scale-size]").fill("-1"))
          yield* pw(() => pool.locator("[data-testid=scale]").click())
          yield* pw(() => page.locator("[data-testid=action-error]", { hasText: "whole number" }).waitFor())
          yield* pw(() => pool.locator("[data-testid=scale-size]").fill("3"))
          yield* click("pool", "scale")
          yield* pw(() => row(page, "pool", `[data-pool="3"]`).waitFor())
          yield* pw(() => row(page, "pool/2", `[data-state="RUNNING"]:not([data-pid=""])`).waitFor())
          yield* pw(() => event(page, "Dashboard", "scale: RUNNING, pool of 3", "pool").waitFor())
          assert.strictEqual((yield* Effect.orDie(root.poolInfo("pool"))).size, 3)

          // reload of the pool: every member a new process
          const members = ["pool/0", "pool/1", "pool/2"]
          const old = yield* Effect.forEach(members, (id) => Effect.map(pidOf(id), (pid) => pid!))
          yield* click("pool", "reload")
          yield* pw(() => event(page, "Dashboard", "reload: RUNNING, pool of 3", "pool").waitFor())
          for (const [i, id] of members.entries()) {
            const now = yield* shownNewPid(page, id, old[i])
            assert.strictEqual(now, yield* newPidOf(id, old[i]))
          }
          yield* noPageErrors
        }),
      testMillis
    )

    it.effect(
      "an agent killed from outside shows up restarted with a new pid, without a reload",
      () =>
        Effect.gen(function*() {
          const { page } = yield* Dashboard
          yield* pw(() => page.evaluate("window.__notReloaded = true"))
          const id = "workers/pinger"
          const before = (yield* pidOf(id))!
          const restarts = Number(yield* pw(() => row(page, id).getAttribute("data-restarts")))
          process.kill(before, "SIGKILL")
          const shown = yield* shownNewPid(page, id, before)
          assert.strictEqual(shown, yield* newPidOf(id, before))
          yield* pw(() => row(page, id, `[data-restarts="${restarts + 1}"]`).waitFor())
          yield* pw(() => row(page, id).locator("[data-testid=last-exit]", { hasText: "SIGKILL" }).waitFor())
          yield* pw(() => event(page, "Agent.Exited", `pid ${before} SIGKILL`, id).waitFor())
          yield* pw(() => event(page, "Agent.StateChanged", "RUNNING → CRASHED", id).waitFor())
          yield* pw(() => event(page, "Agent.Spawned", `pid ${shown}`, id).waitFor())
          assert.isTrue(yield* pw(() => page.evaluate("window.__notReloaded === true")))
          yield* noPageErrors
          fs.mkdirSync(path.dirname(screenshot), { recursive: true })
          yield* pw(() => page.screenshot({ path: screenshot }))
        }),
      testMillis
    )

    it.scoped(
      "a server that goes away shows the disconnected banner; once it is back, the page goes on by itself",
      () =>
        Effect.gen(function*() {
          const { browser } = yield* Dashboard
          const root = yield* Supervisor.RootSupervisor
          const context = yield* Effect.acquireRelease(
            Effect.promise(() => browser.newContext()),
            (context) => Effect.promise(() => context.close())
          )
          const page = yield* pw(() => context.newPage())
          page.setDefaultTimeout(waitMillis)
          const first = yield* Scope.make()
          const server = yield* Scope.extend(Effect.orDie(AdminApi.make({ port: 0, token })), first)
          yield* pw(() => page.goto(server.url))
          const connection = page.locator("[data-testid=connection]")
          const banner = page.locator("[data-testid=banner]")
          yield* pw(() => connection.filter({ hasText: "live" }).waitFor())
          assert.isTrue(yield* pw(() => banner.isHidden()))

          yield* Scope.close(first, Exit.void)
          yield* pw(() => banner.filter({ hasText: "Disconnected" }).waitFor())
          yield* pw(() => connection.filter({ hasText: "disconnected" }).waitFor())

          // the same address again: the poll and the event stream reconnect without a reload
          yield* Effect.orDie(AdminApi.make({ port: server.port, token }))
          yield* pw(() => connection.filter({ hasText: "live" }).waitFor())
          yield* pw(() => banner.waitFor({ state: "hidden" }))
          const before = (yield* pidOf("echo"))!
          yield* Effect.orDie(Effect.flatMap(root.child("echo"), (agent) => agent.restart))
          const after = yield* newPidOf("echo", before)
          yield* pw(() => event(page, "Agent.Spawned", `pid ${after}`).waitFor())
          assert.strictEqual(yield* shownNewPid(page, "echo", before), after)
        }),
      testMillis
    )
  })
})
