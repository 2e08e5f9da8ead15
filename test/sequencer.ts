/**
 * The order test files start in: the longest first, by `test/durations.json` (seconds per file, from a whole run on a
 * 2-core machine: `node scripts/testDurations.mjs REPORT.json`), files it does not list before them (new files, whose
 * length nobody knows yet), largest first. vitest's own order needs its cache of an earlier run, which a clean clone
 * (CI) has not: it then starts the largest files first, and a short file that runs one long test (the Python
 * adapter's unittest suite, 30 s) started last, with one worker idle beside it until the end.
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

export class LongestFirst extends BaseSequencer {
  override sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const root = this.ctx.config.root
    const seconds = recorded(root)
    const known = (spec: TestSpecification) => seconds[path.relative(root, spec.moduleId)]
    const size = (spec: TestSpecification) => fs.statSync(spec.moduleId).size
    return Promise.resolve([...files].sort((a, b) => {
      const [secondsA, secondsB] = [known(a), known(b)]
      if (secondsA === undefined || secondsB === undefined) {
        return secondsA === secondsB ? size(b) - size(a) : secondsA === undefined ? -1 : 1
      }
      return secondsB - secondsA
    }))
  }
}
