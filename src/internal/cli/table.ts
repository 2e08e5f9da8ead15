/**
 * Text tables for the terminal: columns padded to their widest cell (by what is shown, colour codes aside), a
 * header, and colour only where it helps (a state) and only on a terminal that wants it (`NO_COLOR` respected).
 *
 * @internal
 */

/** Whether colour goes to this stream: a terminal, and `NO_COLOR` unset (no-color.org), `FORCE_COLOR` aside. */
export const colourFor = (stream: { readonly isTTY?: boolean | undefined }): boolean =>
  process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== "0"
    ? true
    : stream.isTTY === true && (process.env.NO_COLOR === undefined || process.env.NO_COLOR === "")

const codes = { green: 32, yellow: 33, red: 31, grey: 90, bold: 1 } as const
export type Colour = keyof typeof codes

/** A cell: its text, and a colour to show it in. */
export interface Cell {
  readonly text: string
  readonly colour?: Colour | undefined
}

const paint = (cell: Cell, colour: boolean): string =>
  colour && cell.colour !== undefined ? `\u001b[${codes[cell.colour]}m${cell.text}\u001b[0m` : cell.text

/** The table as lines: `header` in bold (on colour), then each row; the last column is not padded. */
export const render = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<Cell | string>>,
  colour: boolean
): string => {
  const cells = rows.map((row) => row.map((cell) => typeof cell === "string" ? { text: cell } : cell))
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((row) => row[i]?.text.length ?? 0)))
  const line = (row: ReadonlyArray<Cell>) =>
    row.map((cell, i) => {
      const pad = i === row.length - 1 ? "" : " ".repeat(widths[i] - cell.text.length)
      return paint(cell, colour) + pad
    }).join("  ")
  return [line(header.map((text) => ({ text, colour: "bold" as const }))), ...cells.map(line)].join("\n")
}

/** The colour of a lifecycle state: green running, yellow on its way, red down, grey stopped by hand. */
export const stateColour = (state: string): Colour => {
  switch (state) {
    case "RUNNING":
      return "green"
    case "STARTING":
    case "RESTARTING":
    case "STOPPING":
      return "yellow"
    case "CRASHED":
      return "red"
    default:
      return "grey"
  }
}

/** A duration in milliseconds the way `ps` and PM2 show uptimes: 45s, 12m, 3h, 2d. */
export const duration = (millis: number): string => {
  const seconds = Math.max(0, Math.floor(millis / 1000))
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86400)}d`
}
