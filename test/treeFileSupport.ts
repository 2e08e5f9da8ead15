/**
 * Tree files parsed from YAML text, for the TreeFile tests: the file, or the problems of a bad one.
 */
import * as TreeFile from "../src/TreeFile.js"
import { problemLines } from "./support.js"

/** `text` parsed as a YAML tree file, relative paths against `dir` when given. */
export const yaml = (text: string, dir?: string) =>
  TreeFile.parse(text, { format: "yaml", env: {}, ...(dir === undefined ? {} : { dir }) })

/** The problems of a bad YAML file, as `field: rule` lines. */
export const problemsOf = (text: string) => problemLines(yaml(text))
