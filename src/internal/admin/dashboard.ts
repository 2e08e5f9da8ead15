/**
 * The dashboard: one HTML page, served by the admin API at `/`, that reads the JSON endpoints and the event
 * streams of `api.ts`: the tree with live states, restart counts, CPU and RSS sparklines and ping latency, the
 * event log, the stderr tail of the selected agent, restart / stop / start / reload buttons, and a pool's size with
 * its scale.
 *
 * Self-contained (inline CSS and JavaScript, no external resource, no build step). Its Content-Security-Policy
 * allows only its own inline script and style (by their SHA-256) and requests to its own origin, so a name or a
 * stderr line that slipped into the page as markup could still run nothing.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { script } from "./dashboardScript.js"
import { style } from "./dashboardStyle.js"

const sha256 = (text: string): string => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

const csp = [
  "default-src 'none'",
  `script-src ${sha256(script)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'"
].join("; ")

const body = `<header>
<h1 id="title" data-testid="title">agent-supervisor</h1>
<span id="summary" class="muted" data-testid="summary"></span>
<span class="spacer"></span>
<button id="forget-token" type="button" data-testid="forget-token" hidden>Forget token</button>
<span id="conn" class="conn down" data-testid="connection">connecting…</span>
</header>
<div id="banner" data-testid="banner" role="alert" hidden></div>
<main>
<section class="tree">
<h2>Supervision tree <span class="note">click an agent for its stderr</span></h2>
<form id="token-form" data-testid="token-form" hidden>
<label for="token-input">Bearer token to <span id="token-for"></span>
<span class="muted">(printed at start, and in the state file)</span></label>
<input id="token-input" data-testid="token-input" type="password" autocomplete="off" spellcheck="false">
<button type="submit" data-testid="token-submit">Use token</button>
<button type="button" id="token-cancel">Cancel</button>
</form>
<div id="action-error" data-testid="action-error" role="alert" title="click to dismiss" hidden></div>
<div class="table-wrap">
<table>
<thead><tr><th>Child</th><th>State</th><th>PID</th><th>Uptime</th><th>Restarts</th><th>Last exit</th>
<th>CPU</th><th>RSS</th><th>Ping</th><th></th></tr></thead>
<tbody id="tree" data-testid="tree"></tbody>
</table>
</div>
<div id="tree-empty" class="empty">no children (yet)</div>
</section>
<section>
<h2>Events <span class="note" id="events-note"></span></h2>
<ul id="events" class="log" data-testid="events"><li id="events-empty" class="muted">waiting for events</li></ul>
</section>
<section>
<h2>stderr <span class="note" id="stderr-for" data-testid="stderr-for">select an agent</span></h2>
<pre id="stderr" data-testid="stderr"></pre>
</section>
</main>`

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="icon" href="data:,">
<title>agent-supervisor</title>
<style>${style}</style>
</head>
<body>
${body}
<script>${script}</script>
</body>
</html>
`

/** The page's HTML, with its CSS and JavaScript inline (no build step); the same text on every call. */
export const page = (): string => html
