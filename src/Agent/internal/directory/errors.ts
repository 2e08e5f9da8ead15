/**
 * The error for an agent directory that cannot be run as it is: its layout, or a manifest in it, breaks a rule.
 * Detection and manifest reading both raise it, so it lives apart from either.
 *
 * @internal
 */
import { ConfigError } from "../../../Errors.js"

const EXPECTED = "must be a directory holding a Python agent (callback.py, or exactly one .py file) or a Node agent " +
  "(package.json, or index.js, index.mjs or index.cjs)"

/** A `ConfigError` at `agentDir`: what a directory must hold, then what was `found` in `dir`. @internal */
export const agentDirError = (dir: string, found: string): ConfigError =>
  new ConfigError({ field: "agentDir", rule: `${EXPECTED}; ${found}`, value: dir })
