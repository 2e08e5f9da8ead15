/**
 * The user an agent runs as (`user` / `group` in its configuration, systemd's `User=` / `Group=`): names resolved
 * to ids from the account databases, and the environment such an agent gets.
 *
 * Names are read from `/etc/passwd` and `/etc/group` (the files `getpwnam` and `getgrnam` read on a system without
 * NSS modules; Node has no binding to them): a user known only to LDAP or another NSS source must be given by its
 * number. A number is taken as it is, as `setuid` takes it. A `user` without a `group` runs with that user's
 * primary group; a `group` alone keeps the supervisor's user. Node's spawn sets the ids in the child, after it
 * drops every supplementary group (libuv's `setgroups(0)`), so only the root user may ask for them.
 *
 * As systemd does for `User=`, an agent run as another user gets that user's `HOME`, `USER` and `LOGNAME` (unless
 * its `env` sets them): the supervisor's `HOME` (`/root`) is seldom readable by it.
 *
 * @internal
 */
import * as fs from "node:fs"

/** Where the ids are looked up; files overridable for tests. @internal */
export interface Databases {
  readonly passwd: string
  readonly group: string
}

/** The system's account files. @internal */
export const SYSTEM: Databases = { passwd: "/etc/passwd", group: "/etc/group" }

/** Whom the agent runs as, resolved. @internal */
export interface Identity {
  readonly uid: number | undefined
  readonly gid: number | undefined
  /** The user's name, home and so its environment, when `user` names one found in the database. */
  readonly account: { readonly name: string; readonly home: string } | undefined
}

/** A problem with `user` or `group`, for a `ConfigError` (`value`: the value given, absent when none was). @internal */
export interface IdentityProblem {
  readonly field: "user" | "group"
  readonly rule: string
  readonly value?: string | undefined
}

interface PasswdEntry {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
}

const readLines = (file: string): ReadonlyArray<ReadonlyArray<string>> | undefined => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => line.split(":"))
  } catch {
    return undefined
  }
}

const passwdEntries = (file: string): ReadonlyArray<PasswdEntry> | undefined =>
  readLines(file)?.filter((fields) => fields.length >= 7).map((fields) => ({
    name: fields[0],
    uid: Number(fields[2]),
    gid: Number(fields[3]),
    home: fields[5]
  }))

const groupIds = (file: string): ReadonlyMap<string, number> | undefined => {
  const lines = readLines(file)
  return lines === undefined
    ? undefined
    : new Map(lines.filter((fields) => fields.length >= 3).map((fields) => [fields[0], Number(fields[2])]))
}

/** True when this process may run children as another user: it runs as root. @internal */
export const canSwitchUser = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

/**
 * Resolves `user` and `group` (names or ids) to ids; every problem is returned, each naming its field: not root,
 * no such user or group.
 *
 * @internal
 */
export const resolve = (
  user: string | number | undefined,
  group: string | number | undefined,
  databases: Databases = SYSTEM,
  isRoot: boolean = canSwitchUser()
): { readonly identity: Identity } | { readonly problems: ReadonlyArray<IdentityProblem> } => {
  if (user === undefined && group === undefined) {
    return { identity: { uid: undefined, gid: undefined, account: undefined } }
  }
  const problems: Array<IdentityProblem> = []
  if (!isRoot) {
    for (const [field, value] of [["user", user], ["group", group]] as const) {
      if (value === undefined) continue
      problems.push({
        field,
        rule: `needs a supervisor running as root to run the agent as another ${field} (this one runs as uid ` +
          `${process.getuid?.() ?? "?"}): run the supervisor as root, or leave ${field} out`,
        value: String(value)
      })
    }
    return { problems }
  }
  let uid: number | undefined
  let gid: number | undefined
  let account: Identity["account"]
  if (user !== undefined) {
    const entries = passwdEntries(databases.passwd) ?? []
    const entry = typeof user === "number"
      ? entries.find((candidate) => candidate.uid === user)
      : entries.find((candidate) => candidate.name === user)
    if (typeof user === "number") uid = user
    else if (entry !== undefined) uid = entry.uid
    else {
      problems.push({
        field: "user",
        rule: `names no user in ${databases.passwd} (a user known only to another account source must be given ` +
          `by its number)`,
        value: user
      })
    }
    if (entry !== undefined) {
      account = { name: entry.name, home: entry.home }
      gid = entry.gid
    }
  }
  if (group !== undefined) {
    if (typeof group === "number") gid = group
    else {
      const found = groupIds(databases.group)?.get(group)
      if (found !== undefined) gid = found
      else problems.push({ field: "group", rule: `names no group in ${databases.group}`, value: group })
    }
  }
  if (uid !== undefined && gid === undefined && problems.length === 0) {
    // No group was given, so there is no value to show: the rule names the user instead.
    problems.push({
      field: "group",
      rule: `is needed: user ${user} is not in ${databases.passwd}, so its primary group is unknown; give group too`
    })
  }
  return problems.length > 0 ? { problems } : { identity: { uid, gid, account } }
}

/** The environment an agent run as `identity` gets on top of what it inherits (systemd's, for `User=`). @internal */
export const accountEnv = (identity: Identity): Record<string, string> =>
  identity.account === undefined
    ? {}
    : { HOME: identity.account.home, USER: identity.account.name, LOGNAME: identity.account.name }
