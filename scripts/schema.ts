// `npm run schema`: writes the JSON Schema of tree files, generated from the file's `Schema` (`TreeFile.jsonSchema`),
// to schema/agent-supervisor.schema.json, which the package ships for editors. `test/TreeFile.schema.test.ts` fails
// while the committed file differs from what the Schema generates now.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as TreeFile from "../src/TreeFile.js"

export const schemaFile = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "schema",
  "agent-supervisor.schema.json"
)

/** The file's text: the schema as JSON, two spaces, a final newline. */
export const schemaText = (): string => JSON.stringify(TreeFile.jsonSchema(), null, 2) + "\n"

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.mkdirSync(path.dirname(schemaFile), { recursive: true })
  fs.writeFileSync(schemaFile, schemaText())
  console.log(`wrote ${path.relative(process.cwd(), schemaFile)}`)
}
