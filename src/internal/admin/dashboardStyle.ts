/**
 * The dashboard's stylesheet (`dashboard.ts` inlines it): a light and a dark scheme, a badge colour per state.
 *
 * @internal
 */

/** The CSS of the dashboard page. */
export const style = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f7f7f8; --panel: #fff; --fg: #1d1d20; --muted: #6b6b76; --line: #e2e2e6;
  --ok: #1a7f37; --warn: #9a6700; --bad: #c4262e; --idle: #6e7781; --accent: #0b5fff;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111214; --panel: #1a1b1e; --fg: #e6e6ea; --muted: #9a9aa5; --line: #2c2d31;
    --ok: #3fb950; --warn: #d29922; --bad: #f85149; --idle: #8b949e; --accent: #58a6ff;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; border-bottom: 1px solid var(--line);
  background: var(--panel); }
header h1 { font-size: 16px; margin: 0; }
header .spacer { flex: 1; }
.conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; border: 1px solid var(--line); }
.conn.up { color: var(--ok); }
.conn.down { color: var(--bad); }
#banner { background: var(--bad); color: #fff; padding: 6px 16px; font-weight: 600; }
[hidden] { display: none !important; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px; padding: 12px 16px;
  align-items: start; }
main > .tree { grid-column: 1 / -1; }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr); } }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
section h2 { font-size: 13px; margin: 0; padding: 8px 12px; border-bottom: 1px solid var(--line);
  display: flex; gap: 8px; align-items: center; }
section h2 .note { font-weight: normal; color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
.table-wrap { overflow-x: auto; }
th, td { text-align: left; padding: 5px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num { font-variant-numeric: tabular-nums; }
tr.child { cursor: pointer; }
tr.child:hover { background: color-mix(in srgb, var(--accent) 6%, transparent); }
tr.child.selected { background: color-mix(in srgb, var(--accent) 14%, transparent); }
tr.supervisor .name { font-weight: 600; }
.kind { color: var(--muted); font-size: 11px; margin-left: 6px; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 11px; font-weight: 600;
  color: #fff; background: var(--idle); }
.badge.RUNNING { background: var(--ok); }
.badge.STARTING, .badge.RESTARTING, .badge.STOPPING { background: var(--warn); }
.badge.CRASHED { background: var(--bad); }
.badge.parked { background: transparent; color: var(--bad); border: 1px solid var(--bad); margin-left: 4px; }
.metric { display: inline-flex; align-items: center; gap: 6px; }
.metric svg { width: 52px; height: 18px; }
.metric polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.metric .value { min-width: 38px; text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
button { font: inherit; font-size: 12px; padding: 2px 8px; border-radius: 4px; border: 1px solid var(--line);
  background: var(--panel); color: var(--fg); cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: 0.45; cursor: default; }
.actions { display: flex; gap: 4px; }
.scaling { display: inline-flex; gap: 4px; margin-left: 4px; }
input.size { font: inherit; font-size: 12px; width: 56px; padding: 1px 4px; }
#action-error { margin: 8px 12px; padding: 6px 10px; border: 1px solid var(--bad); color: var(--bad);
  border-radius: 4px; white-space: pre-wrap; }
#token-form { display: flex; gap: 8px; align-items: center; padding: 8px 12px; border-bottom: 1px solid var(--line); }
#token-form input { font: inherit; padding: 2px 6px; min-width: 260px; }
.log { list-style: none; margin: 0; padding: 0; max-height: 40vh; overflow: auto; font-size: 12px; }
.log li { padding: 3px 12px; border-bottom: 1px solid var(--line); display: grid; gap: 8px;
  grid-template-columns: auto 92px minmax(0, 1fr); }
.log li.muted { display: block; }
.log .text { overflow-wrap: anywhere; }
.log .time { color: var(--muted); font-variant-numeric: tabular-nums; }
.log .tag { font-weight: 600; }
.log .tag.bad { color: var(--bad); }
.log .tag.ok { color: var(--ok); }
.log .where { color: var(--muted); margin-right: 6px; }
pre#stderr { margin: 0; padding: 8px 12px; max-height: 40vh; overflow: auto; font: 12px/1.35 ui-monospace,
  SFMono-Regular, Menlo, monospace; white-space: pre-wrap; word-break: break-all; }
pre#stderr .pid { color: var(--muted); }
.empty { padding: 8px 12px; color: var(--muted); }
`
