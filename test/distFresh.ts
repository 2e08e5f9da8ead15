/**
 * The tests run the built library (`vitest.config.ts` loads a test's `../src/X.js` from `dist/`): before any runs,
 * every module of src/ must have its built JavaScript, newer than itself, and dist/ no module that src/ no longer
 * has. `npm test` builds first; a run of some files after an edit needs `npm run build` before it (or `npx tsc -p
 * tsconfig.build.json --watch` beside it). It is refused otherwise, never built here: a build writes over the files
 * another run may be loading.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Every file under `dir` whose name ends in `suffix` (no declaration files), as paths relative to `dir`. */
const files = (dir: string, suffix: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((file) =>
    file.endsWith(suffix) && !file.endsWith(".d.ts")
  )

/** The modules `npm run build` bundles after tsc, from dist/ itself (`scripts/bundleCli.mjs`): no source of their own. */
const BUNDLES = ["bin/remote.js"]

/**
 * What of `distDir` is not `srcDir` built: modules missing or older than their source, modules left over, and a
 * bundle missing or older than a module it is made of (tsc run alone).
 */
export const stale = (srcDir: string, distDir: string): Array<string> => {
  if (!fs.existsSync(distDir)) return ["dist/ (not built)"]
  const sources = files(srcDir, ".ts")
  const built = new Set(files(distDir, ".js").filter((js) => !BUNDLES.includes(js)))
  const newest = Math.max(...[...built].map((js) => fs.statSync(path.join(distDir, js)).mtimeMs))
  const bundles = BUNDLES.flatMap((js) => {
    const file = path.join(distDir, js)
    if (!fs.existsSync(file)) return [`dist/${js} (not bundled)`]
    return fs.statSync(file).mtimeMs < newest ? [`dist/${js} (bundled before the last tsc)`] : []
  })
  const behind = sources.flatMap((file) => {
    const js = file.replace(/\.ts$/, ".js")
    if (!built.has(js)) return [`${file} (not built)`]
    return fs.statSync(path.join(distDir, js)).mtimeMs < fs.statSync(path.join(srcDir, file)).mtimeMs
      ? [`${file} (edited since)`]
      : []
  })
  const wanted = new Set(sources.map((file) => file.replace(/\.ts$/, ".js")))
  const leftover = [...built].filter((js) => !wanted.has(js)).map((js) => `dist/${js} (no source)`)
  return [...behind, ...leftover, ...bundles]
}

/** Why the tests cannot run on dist/ as it is, with what to run, or `undefined`. */
const problem = (): string | undefined => {
  const found = stale(path.join(root, "src"), path.join(root, "dist"))
  if (found.length === 0) return undefined
  const listed = found.slice(0, 5).join(", ") + (found.length > 5 ? ` and ${found.length - 5} more` : "")
  const fix = found.some((item) => item.endsWith("(no source)")) ? "rm -rf dist && npm run build" : "npm run build"
  return `dist/ is not src/ built: ${listed}. The tests run the built library: run "${fix}", then run them again`
}

export default function setup(project: TestProject): void {
  const found = problem()
  if (found !== undefined) {
    // Said plainly and first: a setup's thrown error comes after vitest's own lines, under a stack of this file
    process.stderr.write(`error: ${found}\n`)
    process.exit(1)
  }
  // Watch mode: an edit of src/ reruns nothing (dist/ is loaded by Node, outside Vite's graph), and a rerun of a
  // test file runs the last build: say so whenever it is behind.
  project.onTestsRerun(() => {
    const behind = problem()
    if (behind !== undefined) console.warn(`warning: ${behind}`)
  })
}
