/**
 * The order test files start in: those that failed in this checkout's last run first (vitest's cache, as its own
 * order does), then the longest first by `test/durations.json` (seconds per file, from a whole run on a 2-core
 * machine: `node scripts/testDurations.mjs REPORT.json`), files it does not list before the listed (new files, whose
 * length nobody knows yet), largest first. vitest's own order takes lengths from its cache of an earlier run, which
 * a clean clone (CI) has not: it then starts the largest files first, and a short file that runs one long test (the
 * Python adapter's unittest suite, 30 s) started last, with one worker idle beside it until the end.
 * `--sequence.shuffle` still shuffles (seeded by `--sequence.seed`).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { BaseSequencer, type TestSpecification } from "vitest/node"

const recorded = (root: string): Record<string, number> => {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, "test", "durations.json"), "utf8")) as Record<string, number>
  } catch {
    return {}
  }
}

/** `items` in an order drawn from `seed` (mulberry32), the same for the same seed. */
const shuffled = <A>(items: ReadonlyArray<A>, seed: number): Array<A> => {
  const out = [...items]
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

export class LongestFirst extends BaseSequencer {
  override sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const { root, sequence } = this.ctx.config
    if (sequence.shuffle) return Promise.resolve(shuffled(files, sequence.seed ?? Date.now()))
    const seconds = recorded(root)
    // Each file's keys once, not a cache lookup and a stat per comparison
    const keyed = files.map((spec) => {
      const relative = path.relative(root, spec.moduleId)
      return {
        spec,
        failed: this.ctx.cache.getFileTestResults(`${spec.project.name}:${relative}`)?.failed === true,
        seconds: seconds[relative],
        size: fs.statSync(spec.moduleId).size
      }
    })
    return Promise.resolve(
      keyed.sort((a, b) => {
        if (a.failed !== b.failed) return a.failed ? -1 : 1
        if (a.seconds === undefined || b.seconds === undefined) {
          return a.seconds === b.seconds ? b.size - a.size : a.seconds === undefined ? -1 : 1
        }
        return b.seconds - a.seconds
      }).map(({ spec }) => spec)
    )
  }
}
