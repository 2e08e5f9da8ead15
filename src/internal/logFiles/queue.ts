/**
 * The lines a log writer holds, bounded in bytes: what a caller offers goes in at once, without I/O, and the
 * writer's fiber takes it out in order. Nothing here waits or allocates beyond the bound.
 *
 * A line counts its UTF-8 bytes with its newline, plus `ENTRY_OVERHEAD` for holding it, from the moment it is
 * offered until its write ends: the bound covers the lines waiting and those being written. A line that does not
 * fit is dropped and counted, and so is every line after it until the writer has written everything it held (it
 * "caught up"); then one drop line takes their place, in order: `<ISO time> [N lines dropped: the log file could
 * not keep up]` (or `could not be written (<code>)` when writes failed meanwhile). A flood therefore leaves gaps,
 * each marked, rather than one line in a hundred.
 *
 * @internal
 */
import { Fifo } from "../fifo.js"

/** One line held: its text without the newline, what it weighs in the file, the lines it stands for. */
export interface Entry {
  readonly text: string
  /** UTF-8 bytes in the file, newline included. */
  readonly bytes: number
  /** 1 for a line; for a drop line, how many lines it reports (lost again if it is lost). */
  readonly lines: number
  /** Whether it is a line offered (not a drop line of the writer's). */
  readonly offered: boolean
  /** The number of the last line offered that it covers: lines are numbered from 1 as they are offered. */
  readonly seq: number
}

/** What holding one line costs beyond its bytes (the entry, its place in the queue). */
export const ENTRY_OVERHEAD = 32

/** The longest drop line, in bytes: room for two is kept apart, so that reporting a gap never passes the bound. */
export const MARKER_BYTES = 256

/** Room kept for drop lines: the gap's and a failed write's, at most one of each at a time. */
const RESERVE = 2 * (MARKER_BYTES + ENTRY_OVERHEAD)

/** What an entry weighs against the bound. */
export const cost = (entry: Entry): number => entry.bytes + ENTRY_OVERHEAD

/** `<ISO time> [N lines dropped: <why>]`, at most `MARKER_BYTES` (the reason is cut). */
export const dropLine = (millis: number, lines: number, why: string): string =>
  `${iso(millis)} [${lines} ${lines === 1 ? "line" : "lines"} dropped: ${why.slice(0, 160)}]`

/** A moment as ISO 8601 text; a moment that is not one (a broken clock) as its number, never a throw. */
export const iso = (millis: number): string => Number.isFinite(millis) ? new Date(millis).toISOString() : String(millis)

const cutNote = (bytes: number) => ` [${bytes} bytes cut]`

/**
 * `text` cut to at most `limit` UTF-8 bytes (newline not included), at a character boundary, ending with how many
 * bytes were cut. Rare (stderr lines are cut at 16 KiB before they get here), so it may copy.
 */
export const cut = (text: string, limit: number): string => {
  const buffer = Buffer.from(text, "utf8")
  if (buffer.length <= limit) return text
  let end = Math.max(0, limit - cutNote(buffer.length).length)
  // Back to the first byte of a character: continuation bytes are 10xxxxxx.
  while (end > 0 && (buffer[end] & 0xc0) === 0x80) end--
  return buffer.toString("utf8", 0, end) + cutNote(buffer.length - end)
}

/**
 * The lines a writer holds. `capacity` bounds `held`; `lineLimit` bounds one line, newline included (a longer one
 * is cut).
 */
export class LineQueue {
  private readonly items = new Fifo<Entry>()
  /** Bytes held (see `cost`), waiting or being written: never above the capacity. */
  held = 0
  /** The most `held` has been. */
  peak = 0
  /** Lines offered so far: the number of the last one. */
  offered = 0
  /** Lines dropped since the gap began (0: no gap). */
  gap = 0
  /** Lines dropped because the queue was full, in all. */
  dropped = 0
  private readonly room: number

  constructor(readonly capacity: number, readonly lineLimit: number) {
    this.room = capacity - RESERVE
  }

  get size(): number {
    return this.items.size
  }

  /** Takes one line (no newline in it), or drops and counts it. Returns at once. */
  offer(text: string): void {
    this.offered++
    if (this.gap > 0) {
      this.gap++
      this.dropped++
      return
    }
    let line = text
    let bytes = Buffer.byteLength(line, "utf8") + 1
    if (bytes > this.lineLimit) {
      line = cut(line, this.lineLimit - 1)
      bytes = Buffer.byteLength(line, "utf8") + 1
    }
    if (this.held + bytes + ENTRY_OVERHEAD > this.room) {
      this.gap = 1
      this.dropped++
      return
    }
    this.push({ text: line, bytes, lines: 1, offered: true, seq: this.offered })
  }

  /**
   * Ends the gap once nothing is held: its drop line goes in (at `millis`, saying `why`). Returns whether one did.
   * Only the writer's fiber calls it, between writes.
   */
  endGap(millis: number, why: string): boolean {
    if (this.gap === 0 || this.held > 0) return false
    const lines = this.gap
    const text = dropLine(millis, lines, why)
    this.gap = 0
    this.push({ text, bytes: Buffer.byteLength(text, "utf8") + 1, lines, offered: false, seq: this.offered })
    return true
  }

  /** The first entry, if any. */
  peek(): Entry | undefined {
    return this.items.peek()
  }

  /** Takes the first entry out; it stays held until `release`. */
  shift(): Entry | undefined {
    return this.items.shift()
  }

  /** Puts a drop line first (a failed write's report, within the room kept for it). */
  unshift(entry: Entry): void {
    this.items.unshift(entry)
    this.hold(cost(entry))
  }

  /** Ends holding entries whose write ended (written or lost). */
  release(bytes: number): void {
    this.held -= bytes
  }

  /** Takes everything waiting out (given up on), releasing it; returns what it held. */
  clear(): Array<Entry> {
    const left = this.items.clear()
    for (const entry of left) this.held -= cost(entry)
    return left
  }

  private push(entry: Entry): void {
    this.items.push(entry)
    this.hold(cost(entry))
  }

  private hold(bytes: number): void {
    this.held += bytes
    if (this.held > this.peak) this.peak = this.held
  }
}
