// test/ui/output-listing.test.ts — the dashboard's listing of a goal's outputs is bounded by
// what it looks at, not only by what it lists: a goal can leave a huge number of entries
// that are not files (links, here) in its output, and every listing, download ticket and
// download walked all of them on the daemon's event loop. Past the cap the listing says it
// is partial. Over real HTTP against a real daemon.

import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { manifest, useDaemonPerTest } from "../daemon/fixture.js";
import { turn } from "../support/provider-server.js";
import { openUi, postJson, raw, signIn } from "./fixture.js";

const suite = useDaemonPerTest();

describe("the output listing of a goal that left many entries", () => {
  it("looks at no more than its cap, says the listing is partial, and still serves what it lists", async () => {
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    // Listed first (folders are walked in name order): a file that is always in the listing.
    mkdirSync(join(g.output_dir, "a"));
    writeFileSync(join(g.output_dir, "a", "report.md"), "# Report\n");
    const links = join(g.output_dir, "links");
    mkdirSync(links);
    for (let i = 0; i < 25_000; i++) symlinkSync("/etc/hostname", join(links, `l${i}`));
    // Signed in only now: a kept-alive connection left idle past the server's keep-alive
    // timeout while the links are made (seconds on a busy machine) would be reset under the
    // next request.
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });

    const listing = await get(`/api/goals/${goal_id}/outputs`);
    expect(listing.status).toBe(200);
    const body = JSON.parse(String(listing.body)) as { files: { name: string }[]; truncated?: boolean };
    expect(body.truncated).toBe(true);
    expect(body.files.map((f) => f.name)).toEqual(["a/report.md"]);
    const file = await get(`/api/goals/${goal_id}/outputs/a/report.md`);
    expect(file.status).toBe(200);
    expect(String(file.body)).toBe("# Report\n");
  });

  it("is not marked partial when everything was looked at", async () => {
    const fx = await suite.start();
    const ui = await openUi(fx);
    const session = await signIn(ui);
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    writeFileSync(join(g.output_dir, "report.md"), "# Report\n");
    const r = await raw(ui.port, {
      path: `/api/goals/${goal_id}/outputs`,
      headers: { Host: ui.host, ...session },
    });
    expect(JSON.parse(String(r.body))).toEqual({ files: [{ name: "report.md", size: 9 }] });
  });
});

describe("the output listing of files whose names are not UTF-8", () => {
  it("lists them with an inert name, serves each by it, and serves neither of two names listed alike", async () => {
    // Names were read as strings: a byte that is not UTF-8 became U+FFFD, the name reached
    // nothing, and the file (or a folder and all in it) was left out of the listing in silence.
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    const at = (...names: string[]) =>
      Buffer.concat([
        Buffer.from(g.output_dir),
        ...names.flatMap((n) => [Buffer.from("/"), Buffer.from(n, "latin1")]),
      ]);
    writeFileSync(at("r\xff.txt"), "bytes\n");
    mkdirSync(at("d\xfe"));
    writeFileSync(at("d\xfe", "f.txt"), "inner\n");
    // One name not UTF-8, and one whose real name reads as that one is listed.
    writeFileSync(at("q\xff.txt"), "not UTF-8\n");
    writeFileSync(at("q\\xff.txt"), "backslash\n");
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });
    const listing = await get(`/api/goals/${goal_id}/outputs`);
    expect(JSON.parse(String(listing.body))).toEqual({
      files: [
        { name: "d\\xfe/f.txt", size: 6 },
        { name: "q\\xff.txt", size: 10 },
        { name: "q\\xff.txt", size: 10 },
        { name: "r\\xff.txt", size: 6 },
      ],
    });
    const file = (name: string) =>
      get(`/api/goals/${goal_id}/outputs/${name.split("/").map(encodeURIComponent).join("/")}`);
    const served = await file("r\\xff.txt");
    expect(served.status).toBe(200);
    expect(String(served.body)).toBe("bytes\n");
    const inner = await file("d\\xfe/f.txt");
    expect(String(inner.body)).toBe("inner\n");
    expect((await file("q\\xff.txt")).status).toBe(404);
  });
});

describe("the output listing of a name that begins with a byte order mark", () => {
  it("lists it with the mark, apart from the file named without it, and serves each", async () => {
    // displayName decoded names with a TextDecoder that drops a leading BOM: "\uFEFFb.txt" was
    // listed as "b.txt", a name another file had, and then neither of them was served.
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    writeFileSync(join(g.output_dir, "b.txt"), "plain\n");
    writeFileSync(join(g.output_dir, "\uFEFFb.txt"), "marked\n");
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const get = (path: string) => raw(ui.port, { path, headers: { Host: ui.host, ...session } });
    const listing = await get(`/api/goals/${goal_id}/outputs`);
    expect(JSON.parse(String(listing.body))).toEqual({
      files: [
        { name: "b.txt", size: 6 },
        { name: "\uFEFFb.txt", size: 7 },
      ],
    });
    expect(String((await get(`/api/goals/${goal_id}/outputs/b.txt`)).body)).toBe("plain\n");
    const marked = await get(`/api/goals/${goal_id}/outputs/${encodeURIComponent("\uFEFFb.txt")}`);
    expect(marked.status).toBe(200);
    expect(String(marked.body)).toBe("marked\n");
  });
});

describe("the output listing of a file deep under names that are not UTF-8", () => {
  it("gives the page a ticket for it, however long its listed name", async () => {
    // Each byte that is not UTF-8 is listed as four characters (\xff): five folders of 250
    // such bytes make a listed name of 5,000 characters and more, and a ticket's name was
    // capped at 4,096: the page listed the file and could not download it.
    const fx = await suite.start();
    suite.server.script('manifest "writer"', [turn.text("done")]);
    const c = await fx.client();
    const { goal_id } = await c.call("goal.submit", { goal: "write", manifest: manifest("writer") });
    const g = await c.call("goal.wait", { goal_id, timeout_ms: 20_000 }, { timeoutMs: 25_000 });
    const long = Buffer.alloc(250, 0xff);
    let at = Buffer.from(g.output_dir);
    for (let i = 0; i < 5; i++) {
      at = Buffer.concat([at, Buffer.from("/"), long]);
      mkdirSync(at);
    }
    writeFileSync(Buffer.concat([at, Buffer.from("/deep.txt")]), "deep\n");
    const ui = await openUi(fx);
    const session = await signIn(ui);
    const listing = await raw(ui.port, {
      path: `/api/goals/${goal_id}/outputs`,
      headers: { Host: ui.host, ...session },
    });
    const [file] = (JSON.parse(String(listing.body)) as { files: { name: string }[] }).files;
    expect(file?.name).toBe(`${Array(5).fill("\\xff".repeat(250)).join("/")}/deep.txt`);
    const issued = await postJson(ui, session, "/api/downloads", { goal_id, name: file?.name });
    expect(issued.status, JSON.stringify(issued.json)).toBe(200);
    const got = await raw(ui.port, {
      path: (issued.json as { url: string }).url,
      headers: { Host: ui.host, Cookie: session.Cookie },
    });
    expect(String(got.body)).toBe("deep\n");
  });
});
