/**
 * The dashboard's script: the tree polled from `/api/tree` every second (and at once after an event or a button),
 * each agent's CPU%, RSS and ping from its heartbeats, a pool's size, and the restart / stop / start / reload buttons
 * and a pool's scale, which ask for the bearer token once per browser session. Joined with `dashboardStreams.ts` into one strict-mode function.
 *
 * @internal
 */
import { streams } from "./dashboardStreams.js"

const tree = String.raw`
// ---- the tree: one row per child, kept by id and updated in place (a click never lands on a replaced node) ----

const rows = new Map()
const samples = new Map()
const busy = new Set()
let clockOffset = 0
let actionSeq = 0
let autoSelected = false

const flatten = (children, depth, out) => {
  for (const child of children) {
    out.push([child, depth])
    flatten(child.children, depth + 1, out)
  }
  return out
}

const sparkCell = (key, label) => {
  const line = svgEl("polyline", { points: "" })
  const svg = svgEl("svg", { viewBox: "0 0 72 18", preserveAspectRatio: "none", role: "img", "aria-label": label })
  svg.append(line)
  const value = el("span", { class: "value", "data-testid": key + "-value" })
  const td = el("td", { "data-testid": key, class: "num" }, el("span", { class: "metric" }, svg, value))
  return { td, line, value }
}

const makeRow = (id) => {
  const cell = (key) => el("td", { "data-testid": key, class: "num" })
  const row = {
    id,
    view: null,
    depth: 0,
    name: el("span", { class: "name", "data-testid": "name" }),
    kind: el("span", { class: "kind" }),
    badge: el("span", { class: "badge", "data-testid": "state-badge" }),
    parked: el("span", { class: "badge parked", "data-testid": "parked", hidden: true }, "PARKED"),
    pid: cell("pid"),
    uptime: cell("uptime"),
    restarts: cell("restarts"),
    lastExit: el("td", { "data-testid": "last-exit" }),
    cpu: sparkCell("cpu", "CPU %"),
    rss: sparkCell("rss", "RSS"),
    latency: cell("latency"),
    buttons: {}
  }
  row.nameCell = el("td", {}, row.name, row.kind)
  const actions = el("div", { class: "actions" })
  for (const op of ["restart", "stop", "start", "reload"]) {
    const button = el("button", {
      type: "button",
      "data-testid": op,
      onclick: (event) => {
        event.stopPropagation()
        act(id, op)
      }
    }, op)
    row.buttons[op] = button
    actions.append(button)
  }
  // A pool's size: the number asked for, and the button that asks it
  const size = el("input", {
    type: "number",
    min: "0",
    step: "1",
    class: "size",
    "data-testid": "scale-size",
    "aria-label": "pool size",
    onclick: (event) => event.stopPropagation(),
    oninput: () => (size.dataset.dirty = "1"),
    onkeydown: (event) => {
      if (event.key === "Enter") scale(id)
    }
  })
  const scaleButton = el("button", {
    type: "button",
    "data-testid": "scale",
    onclick: (event) => {
      event.stopPropagation()
      scale(id)
    }
  }, "scale")
  row.size = size
  row.buttons.scale = scaleButton
  row.scaling = el("span", { class: "scaling", hidden: true }, size, scaleButton)
  actions.append(row.scaling)
  row.tr = el(
    "tr",
    { class: "child", "data-testid": "child-row", "data-id": id, onclick: () => select(id) },
    row.nameCell,
    el("td", { "data-testid": "state" }, row.badge, row.parked),
    row.pid,
    row.uptime,
    row.restarts,
    row.lastExit,
    row.cpu.td,
    row.rss.td,
    row.latency,
    el("td", {}, actions)
  )
  return row
}

/** The heartbeats seen so far of an agent, one per reading (the poll sees each reading about once a second). */
const record = (id, health) => {
  let list = samples.get(id)
  if (list === undefined) samples.set(id, (list = []))
  if (health === null || (list.length > 0 && list[list.length - 1].t === health.timestamp)) return list
  list.push({ t: health.timestamp, cpu: health.cpuPercent, rss: health.memoryMb })
  if (list.length > SAMPLES) list.shift()
  return list
}

/** A polyline over the last values (at most SAMPLES), right-aligned; CPU from 0, RSS over its own range. */
const draw = (spark, values, fromZero) => {
  const points = values.filter((v) => typeof v === "number")
  if (points.length === 0) return spark.line.setAttribute("points", "")
  const lo = fromZero ? 0 : Math.min(...points)
  const hi = Math.max(lo + (fromZero ? 5 : 1), ...points)
  const step = 72 / Math.max(points.length - 1, 10)
  const xy = points.map((v, i) => {
    const x = 72 - (points.length - 1 - i) * step
    return x.toFixed(1) + "," + (17 - ((v - lo) / (hi - lo)) * 16).toFixed(1)
  })
  if (xy.length === 1) xy.unshift((72 - step).toFixed(1) + "," + xy[0].split(",")[1])
  spark.line.setAttribute("points", xy.join(" "))
}

const updateButtons = (row) => {
  const view = row.view
  const isBusy = busy.has(row.id)
  row.buttons.restart.disabled = isBusy
  row.buttons.stop.disabled = isBusy || view.status === "stopped"
  row.buttons.start.disabled = isBusy || view.status === "running"
  // A rolling reload is an agent's or a pool's, while it runs
  row.buttons.reload.hidden = view.kind !== "worker" && view.pool === null
  row.buttons.reload.disabled = isBusy || view.status !== "running"
  row.scaling.hidden = view.pool === null
  row.buttons.scale.disabled = isBusy
}

const updateRow = (row, view, depth, now) => {
  row.view = view
  row.depth = depth
  const tr = row.tr
  tr.dataset.state = view.state
  tr.dataset.status = view.status
  tr.dataset.kind = view.kind
  tr.dataset.pid = view.pid === null ? "" : String(view.pid)
  tr.dataset.restarts = String(view.restarts)
  tr.dataset.pool = view.pool === null ? "" : String(view.pool.size)
  tr.classList.toggle("supervisor", view.kind === "supervisor")
  row.nameCell.style.paddingLeft = 8 + depth * 20 + "px"
  row.nameCell.title = view.id + (view.name !== view.id ? " (" + view.name + ")" : "")
  const short = view.id.split("/").pop()
  row.name.textContent = short
  row.kind.textContent = view.pool !== null
    ? "pool of " + view.pool.size + " (" + view.pool.routing + ")"
    : view.kind === "supervisor" ? "supervisor" : view.name !== short ? view.name : ""
  // The size asked for, unless one is being typed
  if (view.pool !== null && row.size.dataset.dirty !== "1" && document.activeElement !== row.size) {
    row.size.value = String(view.pool.size)
  }
  if (view.pool !== null && view.pool.maxSize !== undefined) row.size.max = String(view.pool.maxSize)
  row.badge.textContent = view.state
  row.badge.className = "badge " + view.state.replace(/[^A-Z_]/g, "")
  row.parked.hidden = !view.parked
  row.pid.textContent = view.pid === null ? "—" : String(view.pid)
  row.uptime.textContent = view.startedAt === null ? "—" : fmtDuration(now - view.startedAt)
  row.restarts.textContent = String(view.restarts)
  const exit = view.lastExit
  row.lastExit.textContent = exit === null ? "—" : exitText(exit.exitCode, exit.signal) + (exit.requested ? " (asked)" : exit.limit ? " (" + exit.limit + ")" : "") +
    leftBehindText(exit) + ", " + fmtDuration(now - exit.at) + " ago"
  if (view.kind === "worker") {
    const list = record(view.id, view.health)
    draw(row.cpu, list.map((s) => s.cpu), true)
    draw(row.rss, list.map((s) => s.rss), false)
    const h = view.health
    row.cpu.value.textContent = h === null || h.cpuPercent === null ? "—" : h.cpuPercent.toFixed(1) + "%"
    // Now, from the scan of /proc, else the last heartbeat's (the first beat may be an interval away)
    const rss = view.resources !== null ? view.resources.memoryMb : h === null ? null : h.memoryMb
    row.rss.value.textContent = rss === null ? "—" : rss.toFixed(1) + " MiB"
    row.latency.textContent = h === null ? "—" : fmtMillis(h.latencyMillis)
  } else {
    row.cpu.line.setAttribute("points", "")
    row.rss.line.setAttribute("points", "")
    row.cpu.value.textContent = row.rss.value.textContent = row.latency.textContent = ""
  }
  updateButtons(row)
}

const renderTree = (view) => {
  clockOffset = view.now - Date.now()
  rootName = view.name
  $("title").textContent = "agent-supervisor · " + view.name
  document.title = view.name + " · agent-supervisor"
  const list = flatten(view.children, 0, [])
  const body = $("tree")
  const seen = new Set()
  list.forEach(([child, depth], index) => {
    seen.add(child.id)
    let row = rows.get(child.id)
    if (row === undefined) rows.set(child.id, (row = makeRow(child.id)))
    updateRow(row, child, depth, view.now)
    if (body.children[index] !== row.tr) body.insertBefore(row.tr, body.children[index] || null)
  })
  for (const [id, row] of rows) {
    if (seen.has(id)) continue
    row.tr.remove()
    rows.delete(id)
    samples.delete(id)
    if (selected === id) showStderr(null)
  }
  $("tree-empty").hidden = list.length > 0
  const workers = list.filter(([child]) => child.kind === "worker").map(([child]) => child)
  const running = workers.filter((child) => child.state === "RUNNING").length
  const pools = list.filter(([child]) => child.pool !== null).length
  const count = (n, one) => n + " " + one + (n === 1 ? "" : "s")
  $("summary").textContent = count(workers.length, "agent") + " (" + running + " running), " +
    (pools > 0 ? count(pools, "pool") + ", " : "") + count(list.length - workers.length - pools, "nested supervisor")
  if (!autoSelected && selected === null && workers.length > 0) {
    autoSelected = true
    select(workers[0].id)
  }
}

const select = (id) => {
  const row = rows.get(id)
  if (row === undefined || row.view === null || row.view.kind !== "worker" || selected === id) return
  for (const other of rows.values()) other.tr.classList.toggle("selected", other.id === id)
  showStderr(id)
}

// ---- the poll: one request at a time; a reply older than a button's answer is dropped and asked again ----

let polling = false
let again = false
let soon = false
let timer = null

const poll = async () => {
  if (polling) return void (again = true)
  polling = true
  soon = false
  clearTimeout(timer)
  const seq = actionSeq
  try {
    const res = await fetch("/api/tree", { cache: "no-store", signal: AbortSignal.timeout(5000) })
    if (!res.ok) throw new Error("HTTP " + res.status)
    const view = await res.json()
    setLink("tree", true)
    if (seq === actionSeq) renderTree(view)
    else again = true
  } catch (error) {
    setLink("tree", false, error.name === "TimeoutError" ? "no answer in 5 s" : error.message)
  } finally {
    polling = false
    clearTimeout(timer)
    timer = setTimeout(poll, again ? 0 : POLL_MS)
    again = false
  }
}

const refreshSoon = () => {
  if (polling) return void (again = true)
  if (soon) return
  soon = true
  clearTimeout(timer)
  timer = setTimeout(poll, 100)
}

onTreeEvent = (event) => {
  if (!(event._tag === "Agent" && event.event._tag === "HealthChecked")) refreshSoon()
}

// ---- the buttons: the token is asked once and kept in sessionStorage; a refused one is asked again ----

let pending = null

const showError = (text) => {
  const box = $("action-error")
  box.hidden = text === null
  box.textContent = text === null ? "" : text
}

const updateForget = () => {
  $("forget-token").hidden = sessionStorage.getItem(TOKEN_KEY) === null
}

const askToken = (id, op, body) => {
  pending = { id, op, body }
  $("token-form").hidden = false
  $("token-for").textContent = op + " " + id
  const input = $("token-input")
  input.value = ""
  input.focus()
}

/** What a button's answer says of the child: its state, and its pid or a pool's size. */
const answered = (view) =>
  view.state + (view.pool !== null ? ", pool of " + view.pool.size : view.pid === null ? "" : ", pid " + view.pid)

/** A pool's scale button: the size typed, checked here before it is asked for. */
const scale = (id) => {
  const row = rows.get(id)
  if (row === undefined) return
  const size = Number(row.size.value)
  if (row.size.value.trim() === "" || !Number.isSafeInteger(size) || size < 0) {
    return showError("scale " + id + ": the size must be a whole number of 0 or more")
  }
  act(id, "scale", { size })
}

const act = (id, op, body) => {
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token === null) return askToken(id, op, body)
  showError(null)
  busy.add(id)
  const row = rows.get(id)
  if (row !== undefined && row.view !== null) updateButtons(row)
  const headers = { Authorization: "Bearer " + token }
  if (body !== undefined) headers["Content-Type"] = "application/json"
  fetch("/api/children/" + encodeURIComponent(id) + "/" + op, {
    method: "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store"
  })
    .then((res) => res.text().then((text) => ({ res, text })))
    .then(({ res, text }) => {
      let reply = null
      try {
        reply = JSON.parse(text)
      } catch {
        // not JSON: shown as text below
      }
      actionSeq++
      const done = rows.get(id)
      if (res.ok && reply !== null && typeof reply.state === "string") {
        if (done !== undefined) {
          if (op === "scale") done.size.dataset.dirty = ""
          updateRow(done, reply, done.depth, Date.now() + clockOffset)
        }
        return logAction(id, op + ": " + answered(reply), stateTone(reply.state))
      }
      const tag = reply !== null && reply._tag ? reply._tag : "HTTP " + res.status
      const message = reply !== null && reply.message ? reply.message : text.slice(0, 500) || res.statusText
      showError(op + " " + id + " failed: " + tag + ": " + message)
      logAction(id, op + " failed: " + tag, "bad")
      if (res.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY)
        updateForget()
        askToken(id, op, body)
      }
    })
    .catch((error) => showError(op + " " + id + " failed: " + error.message))
    .finally(() => {
      busy.delete(id)
      const after = rows.get(id)
      if (after !== undefined && after.view !== null) updateButtons(after)
      refreshSoon()
    })
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault()
  const token = $("token-input").value.trim()
  if (token === "") return
  sessionStorage.setItem(TOKEN_KEY, token)
  $("token-form").hidden = true
  updateForget()
  const next = pending
  pending = null
  if (next !== null) act(next.id, next.op, next.body)
})
$("token-cancel").addEventListener("click", () => {
  pending = null
  $("token-form").hidden = true
})
$("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY)
  updateForget()
})
$("action-error").addEventListener("click", () => showError(null))
window.addEventListener("pagehide", () => {
  if (events !== null) events.close()
  if (follow !== null) follow.close()
})

updateForget()
connectEvents()
poll()
`

/** The dashboard's JavaScript: one strict-mode function run once the page is parsed (the script ends the body). */
export const script = `"use strict";\n(() => {\n${streams}\n${tree}\n})()\n`
