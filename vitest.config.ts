import * as path from "node:path"
import { defineConfig } from "vitest/config"
import { LongestFirst } from "./test/sequencer.js"

const root = __dirname
const src = path.join(root, "src") + path.sep
const dist = path.join(root, "dist") + path.sep
const tests = path.join(root, "test") + path.sep

/**
 * Test files that must load the library through Vite, from `src/`: they mock a module it imports (`vi.mock` reaches
 * only what Vite loads).
 */
const THROUGH_VITE = new Set([path.join(tests, "AdminApi.units.test.ts")])

export default defineConfig({
  plugins: [{
    // A test's `../src/X.js` is the built `dist/X.js`, loaded by Node itself: Vite transforming and running the
    // library's ~250 modules again for each test file was about 2 s of each file's start (a third of the suite on
    // 2 cores). The types still come from src/; `globalSetup` refuses a dist/ that is not src/ built (`npm test`
    // builds). A test file in THROUGH_VITE loads src/ itself, and what its helpers (support.ts) import from dist/.
    name: "tests-run-dist",
    enforce: "pre",
    resolveId(id, importer) {
      if (importer === undefined || !importer.startsWith(tests) || THROUGH_VITE.has(importer)) return null
      if (!/^(\.\.\/)+src\/.+\.js$/.test(id)) return null
      const target = path.resolve(path.dirname(importer), id)
      return target.startsWith(src) ? dist + target.slice(src.length) : null
    }
  }],
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/distFresh.ts"],
    // assert.deepStrictEqual that tells Option.some(x) from Option.none()
    setupFiles: ["test/effectEquality.ts"],
    server: { deps: { external: [new RegExp(`^${dist.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`)] } },
    // Process tests spawn real children: keep files in one pool of 2 workers (the CI machine's cores)
    // and give slow machines room without letting a hung test run forever.
    maxWorkers: 2,
    // The longest files first (test/sequencer.ts), so that no long file starts last with a worker idle beside it
    sequence: { sequencer: LongestFirst },
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
