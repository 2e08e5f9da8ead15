// Fails when a source file or a function in src/ grows past the sizes the README's Architecture section sets
// (files about 450 lines, failing past 480; functions at most 200):
// a module over 450 lines holds more than one concern; a function over 200 lines is a module waiting to be named.
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const MAX_FILE_LINES = 480
const MAX_FUNCTION_LINES = 200
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "src")

const files = []
const walk = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) walk(full)
    else if (entry.name.endsWith(".ts")) files.push(full)
  }
}
walk(root)

const problems = []
for (const file of files) {
  const text = fs.readFileSync(file, "utf8")
  const rel = path.relative(path.dirname(root), file)
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0)
  if (lines > MAX_FILE_LINES) problems.push(`${rel}: ${lines} lines (at most ${MAX_FILE_LINES})`)
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line
      if (end - start + 1 > MAX_FUNCTION_LINES) {
        problems.push(`${rel}:${start + 1}: a function of ${end - start + 1} lines (at most ${MAX_FUNCTION_LINES})`)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
}
if (problems.length > 0) {
  console.error(problems.join("\n"))
  process.exit(1)
}
console.log(
  `sizes: ${files.length} files in src/, none over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}`
)
