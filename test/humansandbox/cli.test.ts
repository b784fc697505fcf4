// `aido sandbox up / run / logs / destroy` end to end against the real engine: the PRD
// walkthrough, the lockdown (no network, read-only inputs, timeouts), TTL expiry, the
// --json shapes, env values kept out of the evidence, and the git diff of outputs.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerNameOf } from "../../src/humansandbox/container.js";
import { canMakeUndeletable, freezeFolder } from "../support/undeletable.js";
import { makeProject, type Project } from "./fixture.js";

let p: Project;
const docker = new Docker();

beforeAll(async () => {
  p = await makeProject();
  p.write("data/users.csv", "id,name\n1,ada\n2,linus\n");
  p.write("out/users.sql", "-- old\n");
  execFileSync("git", ["-C", p.dir, "add", "."]);
  execFileSync("git", ["-C", p.dir, "commit", "-qm", "start"]);
});
afterAll(async () => {
  await p?.cleanup();
});

const containerExists = async (id: string) =>
  docker
    .getContainer(containerNameOf(id))
    .inspect()
    .then(
      () => true,
      () => false,
    );

describe("the PRD workflow: sandbox up, run migration.py, read logs and outputs, destroy", () => {
  it("works end to end, with --json shapes for up, list, run, logs and destroy", async () => {
    p.write(
      "sandbox.yaml",
      [
        "name: migrate-users",
        "runtime: python:3.11",
        "ttl: 15m",
        "inputs: [data/users.csv]",
        "outputs: [out/users.sql]",
        "permissions: { filesystem: readwrite, network: false }",
        "env: { DB_NAME: production_users_db }",
        "resources: { cpu: 1, memory: 512m, timeout: 60s }",
      ].join("\n"),
    );
    p.write(
      "migration.py",
      [
        "import csv, os",
        "rows = list(csv.DictReader(open('/inputs/data/users.csv')))",
        "os.makedirs('/output/out', exist_ok=True)",
        "with open('/output/out/users.sql', 'w') as f:",
        "    for r in rows:",
        "        f.write(f\"INSERT INTO users VALUES ({r['id']}, '{r['name']}');\\n\")",
        "print(f\"migrated {len(rows)} rows into {os.environ['DB_NAME']}\")",
      ].join("\n"),
    );

    const up = await p.aido("sandbox", "up", "--json");
    expect(up.code, up.err.join("\n")).toBe(0);
    const box = up.json<{ id: string; state: string; image: string; network: boolean; runs: number }>();
    expect(box.id).toMatch(/^[0-9a-f]{12}$/);
    expect(box).toMatchObject({ state: "running", network: false, runs: 0 });
    expect(up.err.join("\n")).toMatch(/runtime python:3\.11 -> .*Python 3\.11/);

    const list = await p.aido("sandbox", "list", "--json");
    expect(list.json<Array<{ id: string; state: string }>>().find((s) => s.id === box.id)?.state).toBe(
      "running",
    );

    const run = await p.aido("run", "migration.py");
    expect(run.code, run.err.join("\n")).toBe(0);
    expect(run.out).toEqual(["migrated 2 rows into [env:DB_NAME]"]);

    const logs = await p.aido("logs", "--json");
    const l = logs.json<{
      run_id: string;
      stdout: string;
      summary: { exit_code: number; task: { argv: string[] } };
    }>();
    expect(l.run_id).toBe("run-001");
    expect(l.stdout).toBe("migrated 2 rows into [env:DB_NAME]\n");
    expect(l.summary).toMatchObject({ exit_code: 0, task: { argv: ["python3", "/workspace/migration.py"] } });
    expect((await p.aido("logs")).out).toEqual(["migrated 2 rows into [env:DB_NAME]"]);

    expect(p.read("out/users.sql")).toBe(
      "INSERT INTO users VALUES (1, 'ada');\nINSERT INTO users VALUES (2, 'linus');\n",
    );
    const folder = join(p.dir, ".aido", "sandboxes", box.id);
    const diff = readFileSync(join(folder, "outputs.diff"), "utf8");
    expect(diff).toContain("-- old");
    expect(diff).toContain("+INSERT INTO users VALUES (1, 'ada');");
    const summary = JSON.parse(readFileSync(join(folder, "summary.json"), "utf8"));
    expect(summary).toMatchObject({
      exit_code: 0,
      timed_out: false,
      image: box.image,
      env_names: ["DB_NAME"],
      limits: { memory_mb: 512, cpus: 1 },
      flags: { network: false, dangerous_allow_mutations: false },
      outputs: { collected: ["out/users.sql"] },
    });
    expect(typeof summary.duration_ms).toBe("number");

    const destroy = await p.aido("sandbox", "destroy", "--json");
    expect(destroy.json()).toMatchObject({ id: box.id, state: "destroyed", purged: false });
    expect(await containerExists(box.id)).toBe(false);
    expect(existsSync(join(folder, "work"))).toBe(false);
    const events = readFileSync(join(folder, "events.log"), "utf8")
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x).event);
    expect(events).toEqual(["created", "run_started", "run_completed", "destroyed"]);

    const again = await p.aido("run", "migration.py");
    expect(again.code).toBe(1);
    expect(again.err.join("\n")).toMatch(/was destroyed/);
  });
});

describe("lockdown", () => {
  let id: string;
  beforeAll(async () => {
    p.write(
      "locked.yaml",
      [
        "runtime: python:3.11",
        "inputs: [data/users.csv]",
        "outputs: [out/**]",
        "env: { API_KEY: sk-live-0123456789abcdef }",
        "resources: { timeout: 2s }",
      ].join("\n"),
    );
    const up = await p.aido("sandbox", "up", "-f", "locked.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    id = up.out[0] as string;
  });

  it("has no network: a connection attempt fails inside the sandbox", async () => {
    p.write(
      "net.py",
      "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    print('CONNECTED')\nexcept OSError as e:\n    print('blocked:', e)\n    raise SystemExit(3)\n",
    );
    const r = await p.aido("run", "net.py");
    expect(r.code).toBe(3);
    expect(r.out.join("\n")).toMatch(/^blocked:/);
  });

  it("cannot write to an input, and the host file stays unchanged", async () => {
    const before = p.read("data/users.csv");
    const r = await p.aido("run", "sh", "-c", "echo pwned > /inputs/data/users.csv");
    expect(r.code).not.toBe(0);
    expect(r.err.join("\n")).toMatch(/Read-only file system/);
    expect(p.read("data/users.csv")).toBe(before);
  });

  it("kills a run past its timeout, reports 124 and says timeout in the evidence", async () => {
    const r = await p.aido("run", "--json", "sh", "-c", "echo started; sleep 30; echo never");
    expect(r.code).toBe(124);
    const s = r.json<{ timed_out: boolean; stopped_by: string; exit_status: number; run_id: string }>();
    expect(s).toMatchObject({ timed_out: true, stopped_by: "timeout", exit_status: 124 });
    const logs = await p.aido("logs", "--json", "--run", s.run_id);
    const l = logs.json<{ stdout: string; stderr: string }>();
    expect(l.stdout).toBe("started\n");
    expect(l.stderr).toMatch(/timed out after 2000 ms/);
  });

  it("never collects a symlink the script planted in /output", async () => {
    const r = await p.aido(
      "run",
      "--json",
      "sh",
      "-c",
      "mkdir -p /output/out && ln -sf /etc/hostname /output/out/leak",
    );
    const s = r.json<{ outputs: { collected: string[]; skipped: Array<{ path: string }> } }>();
    expect(s.outputs.skipped.map((x) => x.path)).toContain("out/leak");
    expect(existsSync(join(p.dir, "out", "leak"))).toBe(false);
  });

  it.skipIf(!canMakeUndeletable)(
    "records the run when an output cannot be written in the project, and says why",
    async () => {
      // A collection that threw after the task ended (once: more folders than "out/**" could
      // match; then: a project folder nothing can be written in) left no summary.json and no
      // run_completed, so a task could erase the record of its own run (exit code, bytes,
      // network counts); later it failed the run with nothing collected listed, while what
      // was copied before was in the project. Now that output is skipped, and said.
      mkdirSync(join(p.dir, "out", "frozen"), { recursive: true });
      const thaw = freezeFolder(join(p.dir, "out", "frozen"));
      const folder = join(p.dir, ".aido", "sandboxes", id);
      let r: Awaited<ReturnType<Project["aido"]>>;
      try {
        r = await p.aido("run", "sh", "-c", "mkdir -p /output/out/frozen && echo x > /output/out/frozen/new");
      } finally {
        thaw();
      }
      expect(r.code, r.err.join("\n")).toBe(0);
      const events = readFileSync(join(folder, "events.log"), "utf8")
        .trim()
        .split("\n")
        .map((x) => JSON.parse(x));
      const last = events.findLast((e) => e.event === "run_started");
      expect(events.at(-1)).toMatchObject({ event: "run_completed", run_id: last.run_id, exit_code: 0 });
      const summary = JSON.parse(readFileSync(join(folder, "runs", last.run_id, "summary.json"), "utf8"));
      expect(summary).toMatchObject({ exit_code: 0 });
      expect(summary.error).toBeUndefined();
      expect(summary.outputs.collected).not.toContain("out/frozen/new");
      expect(summary.outputs.skipped).toContainEqual({
        path: "out/frozen/new",
        reason: expect.stringMatching(/^could not be written in the project \((EPERM|EACCES)\)$/),
      });
      execFileSync("rm", ["-r", join(folder, "output", "out", "frozen"), join(p.dir, "out", "frozen")]);
    },
  );

  it("never copies a sparse output's holes into the project", async () => {
    // One ftruncate makes a file of any size that costs the task nothing; the copy wrote
    // its holes out in full (a terabyte would fill the project's disk). 1 GiB here.
    p.write(
      "sparse.py",
      [
        "import os",
        "os.makedirs('/output/out', exist_ok=True)",
        "with open('/output/out/huge', 'w') as f: os.truncate(f.fileno(), 1 << 30)",
        "with open('/output/out/small', 'w') as f: f.write('ok\\n')",
      ].join("\n"),
    );
    const r = await p.aido("run", "--json", "sparse.py");
    expect(r.code, r.err.join("\n")).toBe(0);
    const s = r.json<{
      outputs: { collected: string[]; skipped: Array<{ path: string; reason: string }> };
    }>();
    expect(s.outputs.collected).toContain("out/small");
    expect(s.outputs.skipped).toContainEqual({
      path: "out/huge",
      reason: expect.stringMatching(/^sparse: 1073741824 bytes of which \d+ were never written/),
    });
    expect(existsSync(join(p.dir, "out", "huge"))).toBe(false);
    expect(p.read("out/small")).toBe("ok\n");
  });

  it("never follows a link or opens a FIFO a script planted at the next run's stream files", async () => {
    // A host file the person can write, and a script that guesses the next run's stream
    // names (/aido/stream is a host folder it can write) and plants a link to that file at
    // one and a FIFO at the other.
    p.write("notes.txt", "the person's notes\n");
    const victim = join(p.dir, "notes.txt");
    const owner = lstatSync(victim).uid;
    p.write(
      "plant.py",
      [
        "import os, re",
        "mine = [f for f in os.listdir('/aido/stream') if f.endswith('.out')][0]",
        "n = int(re.search(r'\\d+', mine).group()) + 1",
        `os.symlink(${JSON.stringify(victim)}, f'/aido/stream/run-{n:03d}.out')`,
        "os.mkfifo(f'/aido/stream/run-{n:03d}.err')",
        "print('planted', n)",
      ].join("\n"),
    );
    const planted = await p.aido("run", "plant.py");
    expect(planted.code, planted.err.join("\n")).toBe(0);
    expect(planted.out[0]).toMatch(/^planted \d+$/);
    // The host file is untouched, and the next run starts and writes its own output.
    const next = await p.aido("run", "--json", "sh", "-c", "echo next; echo warn >&2");
    expect(p.read("notes.txt")).toBe("the person's notes\n");
    expect(lstatSync(victim).uid).toBe(owner);
    expect(next.code, next.err.join("\n")).toBe(0);
    const { run_id } = next.json<{ run_id: string }>();
    expect(Number(run_id.slice("run-".length))).toBe(Number(planted.out[0]?.split(" ")[1]));
    const logs = (await p.aido("logs", "--json", "--run", run_id)).json<{ stdout: string; stderr: string }>();
    expect(logs).toMatchObject({ stdout: "next\n", stderr: "warn\n" });
  });

  it("never brings a setuid or setgid bit on an output into the project", async () => {
    // The exec helper's seccomp filter keeps the script itself from setting the bits, so
    // the bits are set on the host copy of /output while the script sleeps, as a script
    // on a runtime without that filter could have.
    const run = p.aido(
      "run",
      "--json",
      "sh",
      "-c",
      "mkdir -p /output/out && cp /bin/true /output/out/suid && sleep 1",
    );
    const hostCopy = join(p.dir, ".aido", "sandboxes", id, "output", "out", "suid");
    for (let i = 0; i < 200 && !existsSync(hostCopy); i++) await new Promise((r) => setTimeout(r, 20));
    chmodSync(hostCopy, 0o6755);
    const r = await run;
    expect(r.code, r.err.join("\n")).toBe(0);
    const s = r.json<{ outputs: { collected: string[] } }>();
    expect(s.outputs.collected).toContain("out/suid");
    const mode = lstatSync(join(p.dir, "out", "suid")).mode & 0o7777;
    expect(mode.toString(8)).toBe("755");
  });

  it("keeps env values out of every evidence file, even when the script prints them", async () => {
    const r = await p.aido(
      "run",
      "sh",
      "-c",
      "echo key=$API_KEY; echo key=$API_KEY >&2; mkdir -p /output/out; echo $API_KEY > /output/out/k.txt",
    );
    expect(r.out).toEqual(["key=[env:API_KEY]"]);
    expect(p.read("out/k.txt")).toBe("sk-live-0123456789abcdef\n"); // an output is the user's, not evidence
    const files = p.evidenceFiles();
    expect(files.some((f) => f.path.endsWith("outputs.diff") && f.text.includes("[env:API_KEY]"))).toBe(true);
    for (const f of files) expect(f.text, f.path).not.toContain("sk-live-0123456789abcdef");
    expect(
      JSON.parse(readFileSync(join(p.dir, ".aido", "sandboxes", id, "sandbox.json"), "utf8")).env_names,
    ).toEqual(["API_KEY"]);
  });

  it("follows a run that is still going until it ends", async () => {
    const running = p.aido("run", "sh", "-c", "echo one; sleep 1; echo two");
    await new Promise((r) => setTimeout(r, 700));
    const follow = await p.aido("logs", "--follow");
    expect(follow.out).toEqual(["one", "two"]);
    expect((await running).code).toBe(0);
  });

  it("passes a failing command's exit code through", async () => {
    expect((await p.aido("run", "sh", "-c", "exit 7")).code).toBe(7);
  });
});

describe("escape hatches and TTL", () => {
  it("refuses --network without a confirmation when not on a terminal", async () => {
    const r = await p.aido("sandbox", "up", "--network");
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toMatch(/warning: --network[\s\S]*--yes/);
  });

  it("records --network and --dangerous-allow-mutations given with --yes as warnings in the evidence", async () => {
    p.write("open.yaml", "runtime: python:3.11\nttl: 5m\ninputs: [data/users.csv]\n");
    const up = await p.aido(
      "sandbox",
      "up",
      "-f",
      "open.yaml",
      "--network",
      "--dangerous-allow-mutations",
      "--yes",
      "--json",
    );
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.json<{ id: string; network: boolean }>().id;
    const folder = join(p.dir, ".aido", "sandboxes", id);
    const rec = JSON.parse(readFileSync(join(folder, "sandbox.json"), "utf8"));
    expect(rec.flags).toEqual({ network: true, dangerous_allow_mutations: true, confirmed_by: "--yes" });
    const warnings = readFileSync(join(folder, "events.log"), "utf8")
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x))
      .filter((e) => e.event === "warning")
      .map((e) => e.flag);
    expect(warnings).toEqual(["--network", "--dangerous-allow-mutations"]);
    const info = await docker.getContainer(containerNameOf(id)).inspect();
    expect(info.HostConfig.NetworkMode).toBe("bridge");
    expect(info.Mounts.find((m) => m.Destination === "/inputs/data/users.csv")?.RW).toBe(true);
    expect((await p.aido("sandbox", "destroy", id)).code).toBe(0);
  });

  it("refuses a run in a sandbox whose ttl ran out, with the reason, and sweeps it", async () => {
    p.write("short.yaml", "runtime: python:3.11\nttl: 1s\n");
    const up = await p.aido("sandbox", "up", "-f", "short.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    const id = up.out[0] as string;
    await new Promise((r) => setTimeout(r, 1500));
    const r = await p.aido("run", "echo", "hi");
    expect(r.code).toBe(1);
    expect(r.err.join("\n")).toMatch(new RegExp(`sandbox ${id} expired at .*ttl 1 s`));
    expect(await containerExists(id)).toBe(false);
    const list = (await p.aido("sandbox", "list", "--json")).json<
      Array<{ id: string; state: string; destroy_reason: string }>
    >();
    expect(list.find((s) => s.id === id)).toMatchObject({
      state: "destroyed",
      destroy_reason: "ttl expired",
    });
  });
});

// A task still running while `aido run` works on the folders the sandbox shares with it:
// here a second `aido run` in the same sandbox, its task racing the host's removal of the
// stream folder and its collection of outputs.
describe("a task racing aido run", () => {
  let id: string;
  beforeAll(async () => {
    p.write(
      "race.yaml",
      ["runtime: python:3.11", "outputs: [out/**]", "resources: { timeout: 30s }"].join("\n"),
    );
    const up = await p.aido("sandbox", "up", "-f", "race.yaml");
    expect(up.code, up.err.join("\n")).toBe(0);
    id = up.out[0] as string;
  });
  afterAll(async () => {
    await p.aido("sandbox", "destroy", id);
  });

  it("never deletes host files when a task swaps a folder at a stream name for a link while aido removes it", async () => {
    // A task still running (here during a second `aido run` in the same sandbox) leaves a
    // folder of many files at the next run's stream name; once that run starts removing
    // them, it renames the folder away and puts a link to a host folder at its name.
    // Removal by path would go on unlinking the same names in the host folder.
    const count = 2000;
    const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(5, "0")}`);
    const victim = join(p.dir, "precious");
    mkdirSync(victim);
    for (const n of names) writeFileSync(join(victim, n), "keep\n");
    p.write(
      "swap.py",
      [
        "import os, re, time",
        "mine = [f for f in os.listdir('/aido/stream') if f.endswith('.out')][0]",
        "n = int(re.search(r'\\d+', mine).group()) + 1",
        "top = f'/aido/stream/run-{n:03d}.out'",
        "d = top + '/d'",
        "os.makedirs(d)",
        `for i in range(${count}): open(f'{d}/f{i:05d}', 'w').close()`,
        "m = os.stat(d).st_mtime_ns",
        "open('/aido/stream/planted', 'w').close()",
        "end = time.time() + 20",
        "while time.time() < end and os.stat(d).st_mtime_ns == m: time.sleep(0.0002)",
        "os.rename(d, top + '/x')",
        `os.symlink(${JSON.stringify(victim)}, d)`,
        "print('swapped', n)",
      ].join("\n"),
    );
    const stream = join(p.dir, ".aido", "sandboxes", id, "stream");
    const attacker = p.aido("run", "swap.py");
    for (let i = 0; i < 250 && !existsSync(join(stream, "planted")); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(join(stream, "planted"))).toBe(true);
    const next = await p.aido("run", "--json", "sh", "-c", "echo next");
    const swapped = await attacker;
    expect(swapped.out[0], swapped.err.join("\n")).toMatch(/^swapped \d+$/);
    expect(names.filter((n) => !existsSync(join(victim, n)))).toEqual([]);
    // The run itself starts, and nothing is left at the stream names.
    expect(next.code, next.err.join("\n")).toBe(0);
    expect(readdirSync(stream).filter((n) => n.startsWith("run-"))).toEqual([]);
  });

  it("never collects a host file when a task swaps an output folder for a link while aido collects", async () => {
    // A task still running made files in /output/out/sub and keeps swapping that folder
    // with a link to a host folder holding the same names (renameat2 RENAME_EXCHANGE: the
    // name is never missing). A walk that saw a folder, then copies opened by path, read
    // the host's files into the project.
    const count = 300;
    const victim = join(p.dir, "secret");
    mkdirSync(victim);
    for (let i = 0; i < count; i++) writeFileSync(join(victim, `f${i}`), "host secret\n");
    p.write(
      "exchange.py",
      [
        "import ctypes, os, time",
        "rename2 = ctypes.CDLL(None, use_errno=True).renameat2",
        "os.makedirs('/output/out/sub', exist_ok=True)",
        `for i in range(${count}): open(f'/output/out/sub/f{i}', 'w').write('mine\\n')`,
        `os.symlink(${JSON.stringify(victim)}, '/output/alt')`,
        "swap = lambda: rename2(-100, b'/output/out/sub', -100, b'/output/alt', 2)",
        "open('/aido/stream/exchanging', 'w').close()",
        "end = time.time() + 25",
        "while time.time() < end and not os.path.exists('/aido/stream/stop'):",
        "    time.sleep(0.003)",
        "    assert swap() == 0",
        "    time.sleep(0.001)",
        "    assert swap() == 0",
        "os.unlink('/output/alt')",
        "print('exchanged')",
      ].join("\n"),
    );
    const stream = join(p.dir, ".aido", "sandboxes", id, "stream");
    const attacker = p.aido("run", "exchange.py");
    for (let i = 0; i < 500 && !existsSync(join(stream, "exchanging")); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(join(stream, "exchanging"))).toBe(true);
    // A few runs, each collecting out/** while the folder flips.
    const leaked: string[] = [];
    let fromSub = 0;
    for (let n = 0; n < 4 && leaked.length === 0; n++) {
      const next = await p.aido("run", "--json", "true");
      expect(next.code, next.err.join("\n")).toBe(0);
      const { outputs } = next.json<{ outputs: { collected: string[] } }>();
      const sub = outputs.collected.filter((rel) => rel.startsWith("out/sub/"));
      fromSub += sub.length;
      leaked.push(...sub.filter((rel) => p.read(rel) !== "mine\n"));
    }
    writeFileSync(join(stream, "stop"), "");
    const swapped = await attacker;
    expect(swapped.out[0], swapped.err.join("\n")).toBe("exchanged");
    expect(leaked).toEqual([]);
    expect(fromSub).toBeGreaterThan(0);
  }, 120_000);
});
