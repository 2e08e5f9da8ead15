/**
 * The first half of the dashboard's script (`dashboardScript.ts` joins the halves into one function): DOM
 * helpers, the connection banner, the event log fed by `/api/events` and the stderr tail of the selected agent fed
 * by `/api/children/:id/stderr` and its `/follow` stream.
 *
 * Plain browser JavaScript in a string, no build step. Every text that comes from the tree (names, ids, stderr
 * lines, error messages) reaches the page as a text node (`append`, `textContent`), never as HTML.
 *
 * @internal
 */

/** Browser JavaScript: helpers, connection state, event log, stderr tail. */
export const streams = String.raw`
const TOKEN_KEY = "agent-supervisor-token"
const SAMPLES = 60
const POLL_MS = 1000
const EVENTS_MAX = 200
const STDERR_MAX = 300
const SVG_NS = "http://www.w3.org/2000/svg"

const $ = (id) => document.getElementById(id)

/** An element with attributes (set as attributes, never parsed) and children (nodes, or strings as text). */
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key === "class") node.className = value
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value === true ? "" : String(value))
  }
  for (const child of children) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child))
  }
  return node
}

const svgEl = (tag, attrs) => {
  const node = document.createElementNS(SVG_NS, tag)
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value))
  return node
}

const pad2 = (n) => String(n).padStart(2, "0")
const fmtTime = (t) => {
  const d = new Date(t)
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds())
}
const fmtDuration = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return s + "s"
  const m = Math.floor(s / 60)
  if (m < 60) return m + "m " + (s % 60) + "s"
  const h = Math.floor(m / 60)
  if (h < 24) return h + "h " + (m % 60) + "m"
  return Math.floor(h / 24) + "d " + (h % 24) + "h"
}
const fmtBytes = (n) => (n / 1048576).toFixed(1) + " MiB"
const fmtMillis = (ms) => (ms > 0 && ms < 10 ? ms.toFixed(1) : String(Math.round(ms))) + " ms"
const exitText = (code, signal) => (signal !== null && signal !== undefined ? signal : "code " + code)
const leftBehindText = (exit) => (exit.leftBehind === true ? " (left behind)" : "")

// ---- connection: the tree poll and the event stream each report here; either down shows the banner ----

const links = { tree: { up: false, why: "connecting" }, events: { up: false, why: "connecting" } }
let everUp = false

const setLink = (name, up, why) => {
  links[name] = { up, why: why || "" }
  const down = Object.entries(links).filter(([, link]) => !link.up)
  if (down.length === 0) everUp = true
  const conn = $("conn")
  conn.textContent = down.length === 0 ? "live" : everUp ? "disconnected" : "connecting…"
  conn.className = "conn " + (down.length === 0 ? "up" : "down")
  const banner = $("banner")
  banner.hidden = down.length === 0 || !everUp
  banner.textContent = "Disconnected from the supervisor (" +
    down.map(([name, link]) => name + ": " + link.why).join("; ") + "). Retrying…"
}

// ---- the event log: newest first, at most EVENTS_MAX entries; heartbeats are counted, not listed ----

const EVENT_TAGS = [
  "Agent", "ChildStarted", "ChildStopped", "ChildExited", "RestartScheduled", "ChildRemoved", "ChildParked",
  "Escalated", "AutoShutdown"
]
let heartbeats = 0

const stateTone = (s) => (s === "RUNNING" ? "ok" : s === "CRASHED" ? "bad" : "")

/** [label, text, tone] of an agent's own event. */
const describeAgent = (a) => {
  switch (a._tag) {
    case "StateChanged":
      return ["state", a.from + " → " + a.to, stateTone(a.to)]
    case "Spawned":
      return ["spawned", "pid " + a.pid + " (incarnation " + a.incarnation + ")", "ok"]
    case "Exited":
      return ["exited", "pid " + a.pid + " " + exitText(a.exitCode, a.signal) + leftBehindText(a) + " (" + a.exitClass +
        ", " + a.reason + ")", "bad"]
    case "RestartScheduled":
      return ["restart", "attempt " + a.attempt + " in " + fmtMillis(a.delayMillis) + " (" + a.reason + ")", ""]
    case "CircuitOpened":
      return ["circuit open", "after " + a.failures + " failures in a row", "bad"]
    case "HealthCheckFailed":
      return ["missed ping", a.missed + " in a row: " + a.error, "bad"]
    case "LimitExceeded":
      return ["over limit", a.limit + " " + (a.limit === "memory" ? fmtBytes(a.observed) + " > " + fmtBytes(a.max)
        : a.observed.toFixed(2) + " > " + a.max + " cores") + (a.killing ? ": restarting" : ""), "bad"]
    default:
      return [String(a._tag), "", ""]
  }
}

/** [label, text, tone] of any event of the tree. */
const describeEvent = (e) => {
  switch (e._tag) {
    case "Agent":
      return describeAgent(e.event)
    case "ChildStarted":
      return ["started", "", "ok"]
    case "ChildStopped":
      return ["stopped", e.why, ""]
    case "ChildExited":
      return ["child exited", e.exitClass + ": " + e.reason, "bad"]
    case "RestartScheduled": {
      const r = e.record
      const also = r.affected.length > 1 ? " with " + r.affected.filter((c) => c !== r.child).join(", ") : ""
      const how = r.exitCode === undefined && r.signal === undefined
        ? ""
        : " (" + exitText(r.exitCode, r.signal) + leftBehindText(r) + ")"
      return ["restart", r.child + " attempt " + r.attempt + " in " + fmtMillis(r.delayMillis) + also + ": " +
        r.reason + how, ""]
    }
    case "ChildRemoved":
      return ["removed", "", ""]
    case "ChildParked":
      return ["parked", "circuit open: stays down until started by hand", "bad"]
    case "Escalated":
      return ["escalated", e.error && e.error.message ? e.error.message : "too many restarts", "bad"]
    case "AutoShutdown":
      return ["auto-shutdown", "", ""]
    default:
      return [String(e._tag), "", ""]
  }
}

const eventTime = (e) =>
  e.timestamp || (e.event && (e.event.timestamp || (e.event.sample && e.event.sample.timestamp))) ||
  (e.record && e.record.timestamp) || Date.now()

const addLogEntry = (tag, where, label, text, tone, at) => {
  const list = $("events")
  const item = el(
    "li",
    { "data-testid": "event", "data-tag": tag },
    el("span", { class: "time" }, fmtTime(at)),
    el("span", { class: "tag " + tone }, label),
    el("span", { class: "text" }, el("span", { class: "where" }, where), text)
  )
  list.insertBefore(item, list.firstChild)
  while (list.childElementCount > EVENTS_MAX) list.lastChild.remove()
  const empty = $("events-empty")
  if (empty) empty.remove()
}

let rootName = null

/** Where an event happened, as the tree's ids say it: the path below the root ("workers/pinger"). */
const pathOf = (supervisor, child) => {
  const base = supervisor === rootName
    ? ""
    : rootName !== null && supervisor.startsWith(rootName + "/")
    ? supervisor.slice(rootName.length + 1)
    : supervisor
  const path = [base, child].filter((part) => part !== undefined && part !== "").join("/")
  return path === "" ? supervisor : path
}

const logEvent = (e) => {
  if (e._tag === "Agent" && e.event._tag === "HealthChecked") {
    heartbeats++
    $("events-note").textContent = heartbeats + " heartbeats not listed"
    return
  }
  const [label, text, tone] = describeEvent(e)
  const where = pathOf(e.supervisor, e.child)
  addLogEntry(e._tag === "Agent" ? "Agent." + e.event._tag : e._tag, where, label, text, tone, eventTime(e))
}

/** What the dashboard itself did (a button), in the same log. */
const logAction = (id, text, tone) => addLogEntry("Dashboard", id, "dashboard", text, tone, Date.now())

let events = null
let onTreeEvent = () => {}

const connectEvents = () => {
  if (events !== null) events.close()
  const source = new EventSource("/api/events")
  events = source
  source.onopen = () => setLink("events", true)
  source.onerror = () => {
    setLink("events", false, "event stream lost")
    // A stream that ended with an error status is not retried by the browser: open a new one.
    if (source.readyState === EventSource.CLOSED && events === source) setTimeout(connectEvents, 2000)
  }
  const onMessage = (message) => {
    let event
    try {
      event = JSON.parse(message.data)
    } catch {
      return
    }
    logEvent(event)
    onTreeEvent(event)
  }
  for (const tag of EVENT_TAGS) source.addEventListener(tag, onMessage)
  source.addEventListener("message", onMessage)
}

// ---- the stderr tail of the selected agent: its recent lines, then the live ones, without duplicates ----

let follow = null
let selected = null

const stderrKey = (l) => l.pid + "|" + l.timestamp + "|" + l.line

const showStderr = (id) => {
  if (follow !== null) follow.close()
  follow = null
  selected = id
  const pre = $("stderr")
  pre.replaceChildren()
  $("stderr-for").textContent = id === null ? "select an agent" : id
  if (id === null) return
  const seen = new Set()
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24
  const add = (l) => {
    const key = stderrKey(l)
    if (seen.has(key)) return
    seen.add(key)
    const stick = atBottom()
    for (const old of pre.querySelectorAll("[data-testid=stderr-note]")) old.remove()
    pre.append(el("div", { "data-testid": "stderr-line", "data-pid": l.pid }, el("span", { class: "pid" }, "[" +
      l.pid + "] "), l.line))
    while (pre.childElementCount > STDERR_MAX) pre.firstChild.remove()
    if (seen.size > STDERR_MAX * 4) seen.clear()
    if (stick) pre.scrollTop = pre.scrollHeight
  }
  const note = (text) => pre.append(el("div", { class: "muted", "data-testid": "stderr-note" }, text))
  const base = "/api/children/" + encodeURIComponent(id) + "/stderr"
  const source = new EventSource(base + "/follow")
  follow = source
  let buffered = []
  source.addEventListener("message", (message) => {
    let line
    try {
      line = JSON.parse(message.data)
    } catch {
      return
    }
    if (buffered === null) add(line)
    else buffered.push(line)
  })
  // On each (re)connection: the recent lines first (live ones wait in the buffer), so none is lost in between.
  source.onopen = () => {
    fetch(base + "?lines=" + STDERR_MAX, { cache: "no-store" })
      .then((res) => res.json().then((body) => ({ ok: res.ok, body })))
      .then(({ ok, body }) => {
        if (follow !== source) return
        if (!ok) note("cannot read stderr: " + (body && body.message ? body.message : "error"))
        else body.forEach(add)
        const live = buffered || []
        buffered = null
        live.forEach(add)
        if (pre.childElementCount === 0) note("nothing written to stderr yet")
      })
      .catch((error) => {
        if (follow !== source) return
        note("cannot read stderr: " + error.message)
        // The live lines still show: none is held back for ever.
        const live = buffered || []
        buffered = null
        live.forEach(add)
      })
  }
  source.onerror = () => {
    if (follow === source && source.readyState === EventSource.CLOSED) note("the stderr stream ended")
    if (follow === source) buffered = buffered || []
  }
}
`
