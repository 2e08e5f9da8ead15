/**
 * The tests run the built library (`vitest.config.ts` loads a test's `../src/X.js` from `dist/`): before any runs,
 * every module of src/ must have its built JavaScript, newer than itself, dist/ no module that src/ no longer has,
 * and the remote commands' bundle (`dist/bin/remote.js`) no module older than dist/'s. `npm test` builds first; a
 * run of some files after an edit needs `npm run build` before it (or `npx tsc -p tsconfig.build.json --watch`
 * beside it, and `node scripts/bundleCli.mjs` after an edit of a module the bundle holds). It is refused otherwise,
 * never built here: a build writes over the files another run may be loading.
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
 * Why the bundle `js` of `distDir` is not its modules bundled, if it is not: missing, or older than a module of
 * dist/ it holds (esbuild heads each with a `// dist/X.js` line). A module it does not hold may be newer: the
 * tsc --watch of an edit elsewhere leaves it as it is.
 */
const bundleProblem = (distDir: string, js: string): string | undefined => {
  const file = path.join(distDir, js)
  if (!fs.existsSync(file)) return `dist/${js} (not bundled)`
  const bundled = fs.statSync(file).mtimeMs
  const held = [...fs.readFileSync(file, "utf8").matchAll(/^\/\/ dist\/(\S+\.js)$/gm)].map((m) => m[1]!)
  const newer = held.find((module) => {
    const source = path.join(distDir, module)
    return !fs.existsSync(source) || fs.statSync(source).mtimeMs > bundled
  })
  return newer === undefined ? undefined : `dist/${js} (bundled before dist/${newer} was built)`
}

/**
 * What of `distDir` is not `srcDir` built: modules missing or older than their source, modules left over, and a
 * bundle missing or older than a module it holds.
 */
export const stale = (srcDir: string, distDir: string): Array<string> => {
  if (!fs.existsSync(distDir)) return ["dist/ (not built)"]
  const sources = files(srcDir, ".ts")
  const built = new Set(files(distDir, ".js").filter((js) => !BUNDLES.includes(js)))
  const bundles = BUNDLES.flatMap((js) => bundleProblem(distDir, js) ?? [])
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
