/**
 * The cgroup layer (`limits/cgroup*.ts`) against fake cgroup trees in a temporary directory: detection from
 * synthetic `mountinfo` and `cgroup` files (v1, v2 delegated, v2 not usable, nothing mounted), the exact files each
 * limit writes, the counters, the wrapper's shell, and removal. A plain directory is not a cgroup filesystem: a
 * new leaf starts empty (the kernel would fill it), so a file that is written only where the kernel has it is put
 * in the fake base, and a leaf with files cannot be removed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cgroup from "../../../src/Agent/internal/limits/cgroup.js"
import * as Detect from "../../../src/Agent/internal/limits/cgroupDetect.js"
import { tempDir } from "../../support.js"

const MiB = 1024 * 1024

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, text)
}
const read = (file: string) => fs.readFileSync(file, "utf8")
const files = (dir: string) => fs.readdirSync(dir).sort()

const mountLine = (id: number, mountPoint: string, type: string, superOptions: string, root = "/", options = "rw") =>
  `${id} 23 0:${id} ${root} ${
    mountPoint.replace(/ /g, "\\040")
  } ${options},nosuid,nodev,noexec,relatime shared:${id} - ` +
  `${type} ${type} ${superOptions}`

/** A fake machine in `root`: its `mountinfo` and `cgroup` files, and where they are. */
const machine = (root: string, mounts: ReadonlyArray<string>, cgroup: ReadonlyArray<string>) => {
  const options = { mountinfo: path.join(root, "proc", "mountinfo"), cgroup: path.join(root, "proc", "cgroup") }
  write(options.mountinfo, [mountLine(1, "/", "ext4", "rw"), ...mounts].join("\n") + "\n")
  write(options.cgroup, cgroup.join("\n") + "\n")
  return options
}

/** cgroup v1 as on a systemd host: memory, `cpu,cpuacct` and pids, the process in `/user.slice/svc` of memory. */
const v1Machine = (root: string, overrides: { readonly memoryReadOnly?: boolean; readonly memsw?: boolean } = {}) => {
  const fsRoot = path.join(root, "fs cgroup")
  const bases = {
    memory: path.join(fsRoot, "memory", "user.slice", "svc"),
    cpu: path.join(fsRoot, "cpu,cpuacct"),
    pids: path.join(fsRoot, "pids")
  }
  for (const dir of Object.values(bases)) fs.mkdirSync(dir, { recursive: true })
  write(path.join(bases.memory, "memory.limit_in_bytes"), "9223372036854771712\n")
  if (overrides.memsw !== false) write(path.join(bases.memory, "memory.memsw.limit_in_bytes"), "9223372036854771712\n")
  const options = machine(root, [
    mountLine(30, path.join(fsRoot, "cpu,cpuacct"), "cgroup", "rw,cpu,cpuacct"),
    mountLine(31, path.join(fsRoot, "memory"), "cgroup", "rw,memory", "/", overrides.memoryReadOnly ? "ro" : "rw"),
    mountLine(32, path.join(fsRoot, "pids"), "cgroup", "rw,pids"),
    mountLine(33, path.join(fsRoot, "unified"), "cgroup2", "rw")
  ], [
    "12:pids:/",
    "4:memory:/user.slice/svc",
    "2:cpu,cpuacct:/",
    "1:name=systemd:/user.slice/svc",
    "0::/user.slice/svc"
  ])
  return { options, bases }
}

/** cgroup v2 only, the process (`pid`) alone in `/system.slice/svc` with the controllers offered to it. */
const v2Machine = (
  root: string,
  overrides: { readonly procs?: string; readonly controllers?: string; readonly readOnly?: boolean } = {}
) => {
  const mount = path.join(root, "cg2")
  const own = path.join(mount, "system.slice", "svc")
  write(path.join(own, "cgroup.controllers"), overrides.controllers ?? "cpuset cpu io memory hugetlb pids rdma misc\n")
  write(path.join(own, "cgroup.procs"), overrides.procs ?? "4242\n")
  write(path.join(own, "cgroup.subtree_control"), "\n")
  write(path.join(own, "memory.swap.max"), "max\n")
  const options = machine(
    root,
    [mountLine(40, mount, "cgroup2", "rw,nsdelegate", "/", overrides.readOnly ? "ro" : "rw")],
    ["0::/system.slice/svc"]
  )
  return { options: { ...options, pid: 4242 }, own, mount }
}

const right = <A>(either: Either.Either<A, string>): A => {
  if (Either.isLeft(either)) throw new Error(`expected a Right, got Left(${either.left})`)
  return either.right
}
const left = <A>(either: Either.Either<A, string>): string => {
  if (Either.isRight(either)) throw new Error("expected a Left")
  return either.left
}

describe("cgroup parsers", () => {
  it("mountinfo: optional fields, octal escapes, read-only by the mount or the superblock", () => {
    const mounts = Detect.parseMountinfo([
      "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:15 master:2 - cgroup cgroup rw,memory",
      "36 31 0:33 /docker/abc /sys/fs/my\\040cgroup ro,nosuid - cgroup2 cgroup2 rw",
      "37 31 0:34 / /sys/fs/cgroup/pids rw - cgroup cgroup ro,pids",
      "garbage line",
      ""
    ].join("\n"))
    assert.deepStrictEqual(mounts, [
      {
        root: "/",
        mountPoint: "/sys/fs/cgroup/memory",
        readOnly: false,
        fsType: "cgroup",
        superOptions: ["rw", "memory"]
      },
      { root: "/docker/abc", mountPoint: "/sys/fs/my cgroup", readOnly: true, fsType: "cgroup2", superOptions: ["rw"] },
      { root: "/", mountPoint: "/sys/fs/cgroup/pids", readOnly: true, fsType: "cgroup", superOptions: ["ro", "pids"] }
    ])
  })

  it("the cgroup file: controllers per hierarchy, v2's empty list, paths with colons", () => {
    assert.deepStrictEqual(Detect.parseCgroupFile("4:memory:/a\n2:cpu,cpuacct:/\n1:name=systemd:/x:y\n0::/b\n"), [
      { id: "4", controllers: ["memory"], path: "/a" },
      { id: "2", controllers: ["cpu", "cpuacct"], path: "/" },
      { id: "1", controllers: ["name=systemd"], path: "/x:y" },
      { id: "0", controllers: [], path: "/b" }
    ])
  })

  it("a cgroup's directory: the mount's root cut from its path; outside the mount, none", () => {
    const mount = { mountPoint: "/sys/fs/cgroup", readOnly: false, fsType: "cgroup2", superOptions: [] }
    assert.strictEqual(Detect.cgroupDir({ ...mount, root: "/" }, "/a/b"), "/sys/fs/cgroup/a/b")
    assert.strictEqual(Detect.cgroupDir({ ...mount, root: "/docker/abc" }, "/docker/abc"), "/sys/fs/cgroup")
    assert.strictEqual(Detect.cgroupDir({ ...mount, root: "/docker/abc" }, "/docker/abc/x"), "/sys/fs/cgroup/x")
    assert.isUndefined(Detect.cgroupDir({ ...mount, root: "/docker/abc" }, "/docker/abcd"))
  })

  it("flat keyed counters", () => {
    assert.strictEqual(Detect.keyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), 3)
    assert.strictEqual(Detect.keyedValue("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n", "max"), 7)
    assert.isUndefined(Detect.keyedValue("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"))
    assert.isUndefined(Detect.keyedValue(undefined, "max"))
  })
})

describe("detect on a fake tree", () => {
  it.scoped("v1: the process's own cgroup of each controller under its mount (co-mounted cpu,cpuacct included)", () =>
    Effect.gen(function*() {
      const { bases, options } = v1Machine(yield* tempDir("cgroup-fake"))
      assert.deepStrictEqual(Cgroup.detect(options), { _tag: "v1", bases, missing: {} })
    }))

  it.scoped("v1: a read-only hierarchy is missing, with why; the others are used", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cgroup-fake")
      const { bases, options } = v1Machine(root, { memoryReadOnly: true })
      assert.deepStrictEqual(Cgroup.detect(options), {
        _tag: "v1",
        bases: { cpu: bases.cpu, pids: bases.pids },
        missing: { memory: `${path.join(root, "fs cgroup", "memory")} is read-only` }
      })
    }))

  it.scoped("v2 delegated: the supervisor moves into <own>/supervisor and the controllers are enabled in <own>", () =>
    Effect.gen(function*() {
      const { options, own } = v2Machine(yield* tempDir("cgroup-fake"))
      const support = Cgroup.detect(options)
      assert.deepStrictEqual(support, { _tag: "v2", base: own, controllers: ["memory", "cpu", "pids"], missing: {} })
      assert.strictEqual(read(path.join(own, "supervisor", "cgroup.procs")), "4242")
      assert.strictEqual(read(path.join(own, "cgroup.subtree_control")), "+memory +cpu +pids")
      // Detected again from inside the leaf (another detection, or a wrapper that moved it first): the same base.
      write(options.cgroup, "0::/system.slice/svc/supervisor\n")
      assert.deepStrictEqual(Cgroup.detect(options), support)
    }))

  it.scoped("v2 with controllers missing: the others are used, the missing ones say why", () =>
    Effect.gen(function*() {
      const { options, own } = v2Machine(yield* tempDir("cgroup-fake"), { controllers: "cpu pids\n" })
      const support = Cgroup.detect(options)
      assert.strictEqual(support._tag, "v2")
      if (support._tag !== "v2") return
      assert.deepStrictEqual(support.controllers, ["cpu", "pids"])
      assert.include(support.missing.memory, `${own} does not pass the memory controller down`)
      assert.include(left(Cgroup.create(support, "a", { memoryBytes: 64 * MiB })), "a memory limit needs")
    }))

  it.scoped("v2 shared with other processes: none, no-internal-processes rule, nothing changed", () =>
    Effect.gen(function*() {
      const { options, own } = v2Machine(yield* tempDir("cgroup-fake"), { procs: "4242\n99\n100\n" })
      const support = Cgroup.detect(options)
      assert.strictEqual(support._tag, "none")
      if (support._tag !== "none") return
      assert.include(support.why, "also holds the processes 99, 100")
      assert.include(support.why, "no-internal-processes rule")
      assert.isFalse(fs.existsSync(path.join(own, "supervisor")))
      assert.strictEqual(read(path.join(own, "cgroup.subtree_control")), "\n")
    }))

  it.scoped("v2 shared with the supervisor's own processes only (agents without limits started first): they move too", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cgroup-fake")
      const proc = path.join(root, "fakeproc")
      // 500 is the supervisor's child (a wrapper), 501 its grandchild with a command holding ") " and spaces; 99 is
      // a stranger (its parent is init).
      write(path.join(proc, "500", "stat"), "500 (sh) S 4242 500 500 0 -1\n")
      write(path.join(proc, "501", "stat"), "501 (my ) agent) S 500 500 500 0 -1\n")
      write(path.join(proc, "99", "stat"), "99 (other) S 1 99 99 0 -1\n")
      const shared = v2Machine(path.join(root, "a"), { procs: "4242\n500\n501\n99\n" })
      const refused = Cgroup.detect({ ...shared.options, proc })
      assert.strictEqual(refused._tag, "none")
      if (refused._tag === "none") assert.include(refused.why, "also holds the processes 99:")
      assert.isFalse(fs.existsSync(path.join(shared.own, "supervisor")))

      const { options, own } = v2Machine(path.join(root, "b"), { procs: "500\n4242\n501\n" })
      const support = Cgroup.detect({ ...options, proc })
      assert.deepStrictEqual(support, { _tag: "v2", base: own, controllers: ["memory", "cpu", "pids"], missing: {} })
      // A plain file keeps the last write: the supervisor went first, then each of its own (501 last).
      assert.strictEqual(read(path.join(own, "supervisor", "cgroup.procs")), "501")
      assert.strictEqual(read(path.join(own, "cgroup.subtree_control")), "+memory +cpu +pids")
    }))

  it.scoped("v2 read-only or with no controller to offer: none, with why", () =>
    Effect.gen(function*() {
      const readOnly = v2Machine(yield* tempDir("cgroup-fake"), { readOnly: true })
      assert.deepStrictEqual(Cgroup.detect(readOnly.options), {
        _tag: "none",
        why: `no writable cgroup: cgroup v2: ${readOnly.mount} is read-only`
      })
      const bare = v2Machine(yield* tempDir("cgroup-fake"), { controllers: "\n" })
      const support = Cgroup.detect(bare.options)
      assert.strictEqual(support._tag, "none")
      if (support._tag === "none") assert.include(support.why, `${bare.own} offers none of memory, cpu, pids`)
    }))

  it.scoped("hybrid with every v1 hierarchy read-only and no v2 controller: none, both reasons", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cgroup-fake")
      const options = machine(root, [
        mountLine(31, path.join(root, "memory"), "cgroup", "rw,memory", "/", "ro"),
        mountLine(33, path.join(root, "unified"), "cgroup2", "rw")
      ], ["4:memory:/", "0::/"])
      fs.mkdirSync(path.join(root, "unified"))
      const support = Cgroup.detect(options)
      assert.strictEqual(support._tag, "none")
      if (support._tag !== "none") return
      assert.include(support.why, `no writable cgroup: ${path.join(root, "memory")} is read-only`)
      assert.include(support.why, "no cgroup v1 pids hierarchy is mounted")
      assert.include(support.why, "cgroup v2:")
    }))

  it.scoped("nothing mounted, or nothing to read: none, with why", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cgroup-fake")
      const options = machine(root, [], ["0::/"])
      assert.deepStrictEqual(Cgroup.detect(options), {
        _tag: "none",
        why: `no cgroup filesystem is mounted (${options.mountinfo})`
      })
      const missing = path.join(root, "nope")
      assert.deepStrictEqual(Cgroup.detect({ ...options, cgroup: missing }), {
        _tag: "none",
        why: `cannot read ${missing}`
      })
    }))
})

describe("create on a fake tree", () => {
  it.scoped("v1: each limit in its hierarchy's leaf, exactly these files; memsw where the kernel has it", () =>
    Effect.gen(function*() {
      const { bases, options } = v1Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(
        Cgroup.create(Cgroup.detect(options), "team:writer", { memoryBytes: 64 * MiB, cpuCores: 0.25, pids: 16 })
      )
      assert.strictEqual(cgroup.mode, "cgroup-v1")
      const [memory, cpu, pids] = cgroup.paths
      const leaf = path.basename(memory)
      assert.match(leaf, /^team_writer-\d+$/)
      assert.deepStrictEqual(cgroup.paths, [
        path.join(bases.memory, Cgroup.supervisorDirName(), leaf),
        path.join(bases.cpu, Cgroup.supervisorDirName(), leaf),
        path.join(bases.pids, Cgroup.supervisorDirName(), leaf)
      ])
      assert.deepStrictEqual(files(memory), ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"])
      assert.strictEqual(read(path.join(memory, "memory.limit_in_bytes")), String(64 * MiB))
      assert.strictEqual(read(path.join(memory, "memory.memsw.limit_in_bytes")), String(64 * MiB))
      assert.deepStrictEqual(files(cpu), ["cpu.cfs_period_us", "cpu.cfs_quota_us"])
      assert.strictEqual(read(path.join(cpu, "cpu.cfs_period_us")), "100000")
      assert.strictEqual(read(path.join(cpu, "cpu.cfs_quota_us")), "25000")
      assert.deepStrictEqual(files(pids), ["pids.max"])
      assert.strictEqual(read(path.join(pids, "pids.max")), "16")
    }))

  it.scoped("v1: no memsw without swap accounting; the smallest CPU quota is 1 ms", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"), { memsw: false })
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", { memoryBytes: 32 * MiB, cpuCores: 0.001 }))
      assert.deepStrictEqual(files(cgroup.paths[0]), ["memory.limit_in_bytes"])
      assert.strictEqual(read(path.join(cgroup.paths[1], "cpu.cfs_quota_us")), "1000")
    }))

  it.scoped("v1 without limits: one leaf for containment, in pids, else memory; nothing written", () =>
    Effect.gen(function*() {
      const { bases, options } = v1Machine(yield* tempDir("cgroup-fake"))
      const support = Cgroup.detect(options)
      const cgroup = right(Cgroup.create(support, "a", {}))
      assert.strictEqual(cgroup.paths.length, 1)
      assert.strictEqual(path.dirname(path.dirname(cgroup.paths[0])), bases.pids)
      assert.deepStrictEqual(files(cgroup.paths[0]), [])
      if (support._tag !== "v1") return
      const noPids = { ...support, bases: { memory: bases.memory, cpu: bases.cpu } }
      assert.strictEqual(path.dirname(path.dirname(right(Cgroup.create(noPids, "a", {})).paths[0])), bases.memory)
    }))

  it.scoped("a limit whose controller is missing, or a bad value: Left with why, nothing made", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cgroup-fake")
      const { bases, options } = v1Machine(root, { memoryReadOnly: true })
      const support = Cgroup.detect(options)
      assert.strictEqual(
        left(Cgroup.create(support, "a", { memoryBytes: 64 * MiB, pids: 4 })),
        `a memory limit needs the cgroup v1 memory controller: ${path.join(root, "fs cgroup", "memory")} is read-only`
      )
      assert.include(left(Cgroup.create(support, "a", { pids: 0 })), "pids must be a positive whole number")
      assert.include(left(Cgroup.create(support, "a", { cpuCores: Number.NaN })), "cpuCores must be a positive")
      assert.include(left(Cgroup.create(support, "a", { memoryBytes: 1.5 })), "memoryBytes must be a positive")
      assert.isFalse(fs.existsSync(path.join(bases.pids, Cgroup.supervisorDirName())))
      assert.strictEqual(left(Cgroup.create({ _tag: "none", why: "no cgroups" }, "a", {})), "no cgroups")
    }))

  it.scoped("v1: a leaf name already taken (an earlier process of the same pid) is skipped", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      const support = Cgroup.detect(options)
      const first = right(Cgroup.create(support, "a", {})).paths[0]
      const n = Number(/-(\d+)$/.exec(first)![1])
      fs.mkdirSync(path.join(path.dirname(first), `a-${n + 1}`))
      assert.strictEqual(path.basename(right(Cgroup.create(support, "a", {})).paths[0]), `a-${n + 2}`)
    }))

  it.scoped("v2: one leaf, memory.max + memory.swap.max 0, cpu.max, pids.max; the controllers enabled above it", () =>
    Effect.gen(function*() {
      const { options, own } = v2Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(
        Cgroup.create(Cgroup.detect(options), "writer", { memoryBytes: 64 * MiB, cpuCores: 1.5, pids: 16 })
      )
      assert.strictEqual(cgroup.mode, "cgroup-v2")
      assert.strictEqual(cgroup.paths.length, 1)
      const leaf = cgroup.paths[0]
      assert.strictEqual(path.dirname(leaf), path.join(own, Cgroup.supervisorDirName()))
      assert.deepStrictEqual(files(leaf), ["cpu.max", "memory.max", "memory.swap.max", "pids.max"])
      assert.strictEqual(read(path.join(leaf, "memory.max")), String(64 * MiB))
      assert.strictEqual(read(path.join(leaf, "memory.swap.max")), "0")
      assert.strictEqual(read(path.join(leaf, "cpu.max")), "150000 100000")
      assert.strictEqual(read(path.join(leaf, "pids.max")), "16")
      assert.strictEqual(read(path.join(path.dirname(leaf), "cgroup.subtree_control")), "+memory +cpu +pids")
    }))

  it.scoped("v2: an agent of another user cannot join (common-ancestor rule): Left; the supervisor's own user can", () =>
    Effect.gen(function*() {
      const { options } = v2Machine(yield* tempDir("cgroup-fake"))
      const support = Cgroup.detect(options)
      const why = left(Cgroup.create(support, "a", { pids: 8 }, { uid: 65534, gid: 65534 }))
      assert.include(why, "uid 65534 cannot move itself")
      assert.include(why, "common ancestor")
      const euid = process.geteuid!()
      assert.isTrue(Either.isRight(Cgroup.create(support, "a", {}, { uid: euid, gid: process.getegid!() })))
    }))
})

describe("a fake cgroup", () => {
  it.scoped("limitHit: v1 oom_kill, failcnt where oom_kill is absent, pids.events max; memory first", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", { memoryBytes: 64 * MiB, pids: 16 }))
      const [memory, pids] = cgroup.paths
      write(path.join(memory, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
      write(path.join(memory, "memory.failcnt"), "12\n")
      write(path.join(pids, "pids.events"), "max 0\n")
      // oom_kill is there and 0: failcnt (limit reached, reclaim sufficed) is not a kill.
      assert.isUndefined(cgroup.limitHit())
      write(path.join(pids, "pids.events"), "max 3\n")
      assert.strictEqual(cgroup.limitHit(), "pids_limit")
      write(path.join(memory, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
      assert.strictEqual(cgroup.limitHit(), "memory_limit")
      // A kernel before 4.13: no oom_kill line, failcnt stands in.
      write(path.join(memory, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n")
      assert.strictEqual(cgroup.limitHit(), "memory_limit")
      write(path.join(memory, "memory.failcnt"), "0\n")
      assert.strictEqual(cgroup.limitHit(), "pids_limit")
    }))

  it.scoped("limitHit: v2 memory.events oom_kill, pids.events max", () =>
    Effect.gen(function*() {
      const { options } = v2Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", { memoryBytes: 64 * MiB, pids: 16 }))
      const leaf = cgroup.paths[0]
      assert.isUndefined(cgroup.limitHit())
      write(path.join(leaf, "memory.events"), "low 0\nhigh 0\nmax 40\noom 2\noom_kill 0\noom_group_kill 0\n")
      write(path.join(leaf, "pids.events"), "max 5\n")
      assert.strictEqual(cgroup.limitHit(), "pids_limit")
      write(path.join(leaf, "memory.events"), "low 0\nhigh 0\nmax 40\noom 2\noom_kill 1\noom_group_kill 0\n")
      assert.strictEqual(cgroup.limitHit(), "memory_limit")
    }))

  it.scoped("wrap: the shell writes its pid, which the command keeps, then runs it with its arguments as given", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", {}))
      const args = ["-c", `echo "$$"; printf '[%s]' "$@"`, "sh", "a b", "it's", "$HOME", ""]
      const wrapped = cgroup.wrap("sh", args)
      const result = ChildProcess.spawnSync(wrapped.command, wrapped.args as Array<string>, { encoding: "utf8" })
      assert.strictEqual(result.status, 0, result.stderr)
      const [pid, printed] = result.stdout.split("\n")
      assert.strictEqual(printed, "[a b][it's][$HOME][]")
      assert.strictEqual(read(path.join(cgroup.paths[0], "cgroup.procs")).trim(), pid)
      assert.strictEqual(Number(pid), result.pid)
    }))

  it.scoped("wrap: a join that fails exits 126 with one line on stderr, and runs nothing", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", {}))
      assert.deepStrictEqual(yield* cgroup.remove, [])
      const wrapped = cgroup.wrap("echo", ["ran"])
      const result = ChildProcess.spawnSync(wrapped.command, wrapped.args as Array<string>, { encoding: "utf8" })
      assert.strictEqual(result.status, 126)
      assert.strictEqual(result.stdout, "")
      assert.strictEqual(
        result.stderr,
        `effect-agent-supervisor: cannot join the cgroup ${cgroup.paths[0]} (writing the pid to its cgroup.procs ` +
          "failed)\n"
      )
    }))

  it.scoped("remove: an empty tree goes whole, per-supervisor directory included; again is harmless", () =>
    Effect.gen(function*() {
      const v1 = v1Machine(yield* tempDir("cgroup-fake"))
      const a = right(Cgroup.create(Cgroup.detect(v1.options), "a", {}))
      const b = right(Cgroup.create(Cgroup.detect(v1.options), "b", {}))
      const supervisorDir = path.join(v1.bases.pids, Cgroup.supervisorDirName())
      assert.deepStrictEqual(a.pids(), [])
      assert.deepStrictEqual(yield* a.killAll, [])
      assert.deepStrictEqual(yield* a.remove, [])
      assert.deepStrictEqual(files(supervisorDir), [path.basename(b.paths[0])])
      assert.deepStrictEqual(yield* b.remove, [])
      assert.isFalse(fs.existsSync(supervisorDir))
      assert.deepStrictEqual(yield* b.remove, [])
      const v2 = v2Machine(yield* tempDir("cgroup-fake"))
      const c = right(Cgroup.create(Cgroup.detect(v2.options), "c", {}))
      assert.deepStrictEqual(yield* c.remove, [])
      assert.deepStrictEqual(files(v2.own).filter((name) => name.startsWith("effect-agent-supervisor-")), [])
    }))

  it.scoped("remove: what it could not remove, one line each", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      // A plain directory with files in it cannot be removed (the kernel's would be): a stand-in for any failure.
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", { pids: 3 }))
      assert.deepStrictEqual(yield* cgroup.remove, [`${cgroup.paths[0]} (ENOTEMPTY)`])
    }))
  it.scoped("removeNow (a process left behind): a short round of kills and one try, nothing waited for", () =>
    Effect.gen(function*() {
      const { options } = v1Machine(yield* tempDir("cgroup-fake"))
      const cgroup = right(Cgroup.create(Cgroup.detect(options), "a", {}))
      // A process the fake cgroup lists for ever, as the kernel lists one in uninterruptible sleep
      const sleeper = ChildProcess.spawn("sleep", ["30"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => sleeper.kill("SIGKILL")))
      fs.writeFileSync(path.join(cgroup.paths[0], "cgroup.procs"), `${sleeper.pid}\n`)
      const started = performance.now()
      assert.deepStrictEqual(yield* cgroup.removeNow, [
        `${cgroup.paths[0]} (ENOTEMPTY; processes ${sleeper.pid} outlived SIGKILL)`
      ])
      // (remove waits 5 s for the kill and 2 s for the leaf)
      assert.isBelow(performance.now() - started, 2_000)
      assert.isTrue(
        sleeper.signalCode === "SIGKILL" ||
          (yield* Effect.promise(() =>
            new Promise<boolean>((resolve) => sleeper.once("exit", (_, signal) => resolve(signal === "SIGKILL")))
          )),
        "it was killed"
      )
    }))
})
