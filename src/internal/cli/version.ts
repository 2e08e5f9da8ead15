/**
 * The package's version, from its package.json. Its own module: the remote commands' bundle (`dist/bin/remote.js`)
 * keeps it out and loads it from here, where package.json is three directories up.
 *
 * @internal
 */
import { readFileSync } from "node:fs"

export const version: string = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  readonly version: string
}).version
