// Writes test/durations.json, the seconds each test file took, from a vitest JSON report of a whole run
// (`npx vitest run --reporter=json --outputFile=REPORT.json`): test/sequencer.ts starts the longest files first.
// Usage: node scripts/testDurations.mjs REPORT.json
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const [reportFile] = process.argv.slice(2)
if (reportFile === undefined) {
  process.stderr.write("usage: node scripts/testDurations.mjs REPORT.json\n")
  process.exit(1)
}
const root = fileURLToPath(new URL("..", import.meta.url))
const report = JSON.parse(fs.readFileSync(reportFile, "utf8"))
const seconds = Object.fromEntries(
  report.testResults
    .map((file) => [path.relative(root, file.name), Math.round((file.endTime - file.startTime) / 100) / 10])
    .sort(([a], [b]) => (a < b ? -1 : 1))
)
fs.writeFileSync(path.join(root, "test", "durations.json"), JSON.stringify(seconds, null, 2) + "\n")
process.stdout.write(`test/durations.json: ${Object.keys(seconds).length} files\n`)
