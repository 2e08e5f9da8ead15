/**
 * The tests run the built library (`vitest.config.ts` loads a test's `../src/X.js` from `dist/`): before any runs,
 * every module of src/ must have its built JavaScript, newer than itself. `npm test` builds first; a run of some
 * files after an edit builds here (`npm run build`, about 20 s), so that it never tests the code before the edit.
 */
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(__dirname, "..")

/** Every `.ts` module under `dir` (no declaration files), as paths relative to `dir`. */
const modules = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((file) =>
    file.endsWith(".ts") && !file.endsWith(".d.ts")
  )

/** The modules of `srcDir` whose built JavaScript in `distDir` is missing or older, each with why. */
export const stale = (srcDir: string, distDir: string): Array<string> =>
  modules(srcDir).flatMap((file) => {
    const built = path.join(distDir, file.replace(/\.ts$/, ".js"))
    if (!fs.existsSync(built)) return [`${file} (not built)`]
    return fs.statSync(built).mtimeMs < fs.statSync(path.join(srcDir, file)).mtimeMs ? [`${file} (edited since)`] : []
  })

const listed = (found: ReadonlyArray<string>) =>
  found.slice(0, 5).join(", ") + (found.length > 5 ? ` and ${found.length - 5} more` : "")

export default function setup(): void {
  const check = () => stale(path.join(root, "src"), path.join(root, "dist"))
  const before = check()
  if (before.length === 0) return
  console.warn(`dist/ is older than src/ (${listed(before)}): building it, as the tests run it (npm run build)`)
  const build = childProcess.spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" })
  // tsc writes its JavaScript despite type errors: the tests run on it, as `npm run check` reports those
  const after = check()
  if (after.length > 0) {
    throw new Error(`npm run build (exit ${build.status}) left dist/ older than src/: ${listed(after)}`)
  }
}
