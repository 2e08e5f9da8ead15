// Bundles the commands that only talk to a running `up` (status, call, logs...: REMOTE_COMMANDS in
// src/internal/cli/routes.ts) into one file, dist/bin/remote.js, with what they import (effect, @effect/cli,
// @effect/platform...): Node loads one file where it loaded some 700 modules one by one, and such a command starts
// in under half the time (the README's "Architecture"). No library code runs there that another copy of effect
// could meet: `up`, `validate` and `conformance`, which load the library (and the user's peers: SQL drivers,
// OpenTelemetry, @effect/cluster), start from the modules as built (dist/internal/cli/bin.js), and in the bundle
// their modules are replaced by one that refuses. Run by `npm run build`, after tsc.
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const dist = path.join(root, "dist")
const outfile = path.join(dist, "bin", "remote.js")
/** The notices of the packages inside: their MIT licences ask that each copy carries its licence. */
const licenses = path.join(dist, "bin", "remote.licenses.txt")

/** Kept out and shared with the entry (which loads them first): their state is the process's, one copy of each. */
const SHARED = new Set(["earlySignals.js", "version.js"].map((name) => path.join(dist, "internal", "cli", name)))

/** The modules of the commands that start from the built modules: never run from the bundle. */
const REFUSED = new Set(
  ["internal/cli/up.js", "internal/cli/validate.js", "Conformance.js"].map((name) => path.join(dist, name))
)

const routing = {
  name: "remote-commands",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = path.resolve(args.resolveDir, args.path)
      if (SHARED.has(target)) {
        return { path: "./" + path.relative(path.dirname(outfile), target).split(path.sep).join("/"), external: true }
      }
      if (REFUSED.has(target)) return { path: path.relative(dist, target), namespace: "refused" }
      return undefined
    })
    build.onLoad({ filter: /.*/, namespace: "refused" }, (args) => ({
      contents: `throw new Error(${
        JSON.stringify(`${args.path} does not run from dist/bin/remote.js: bin/agent-supervisor.js routes its command`)
      })`,
      loader: "js"
    }))
  }
}

const { metafile } = await esbuild.build({
  entryPoints: [path.join(dist, "internal", "cli", "bin.js")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  banner: {
    js: `// The agent-supervisor commands that talk to a running up, with the packages they use: their licences are in
// ${path.basename(licenses)}.
import { createRequire as __createRequire } from "node:module";
// The CommonJS packages inside (undici) call require for Node's own modules
const require = __createRequire(import.meta.url);`
  },
  plugins: [routing],
  // Not minified: a defect's stack (report.ts prints it) names lines a reader can find (2.5 MB; 1.7 MB minified,
  // which starts no faster). Silent as tsc is when all goes well: `npm pack --json` prints what the build prints.
  logLevel: "warning",
  metafile: true
})

/** Each package a module of the bundle comes from: its directory (the last `node_modules/NAME` of the path). */
const packages = new Set(
  Object.keys(metafile.inputs).flatMap((input) => {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)
    return match === null ? [] : [path.resolve(root, match[1])]
  })
)
const notices = [...packages].sort().map((dir) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  const file = fs.readdirSync(dir).find((name) => /^licen[cs]e(\.(md|txt))?$/i.test(name))
  const text = file === undefined ? `(no licence file; its package.json says ${manifest.license})` : fs
    .readFileSync(path.join(dir, file), "utf8")
    .trim()
  return `${manifest.name} ${manifest.version} (${manifest.license})\n\n${text}\n`
})
fs.writeFileSync(
  licenses,
  `dist/bin/remote.js holds these packages, or parts of them:\n\n${notices.join("\n" + "-".repeat(78) + "\n\n")}`
)
