// Red team: OpenSSL reads its configuration from the file OPENSSL_CONF names, and that
// configuration loads providers (and engines) from any path: shared objects whose
// constructors run inside the program. curl loads it at start, whatever the URL, so an
// agent granted only `exec: curl *` that can write a file ran code of its own in curl, past
// every exec grant, as LD_PRELOAD would (Landlock governs execve, not a library's mmap).
// The loader-injection rule knew LD_* and GCONV_PATH but not OPENSSL_CONF,
// OPENSSL_MODULES or OPENSSL_ENGINES. Through the real gate, in a real container: each way of
// setting them is refused before anything runs, audited, and the constructor's canary does
// not exist; curl without them still runs. curl has ways of its own to the same object:
// --engine PATH (any prefix of it), -K/--config FILE and a .curlrc under a HOME, CURL_HOME
// or XDG_CONFIG_HOME the command sets, each an `engine` line: refused too. And a .curlrc
// the agent writes in its own HOME (its temp folder) in one exec was read by curl in the
// next: every exec now runs with CURL_HOME at an empty, read-only .curlrc in the image,
// which curl reads first, and no command may set or unset CURL_HOME.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "./fixture.js";
import { expectRefused, openSharedBench, type SharedBench } from "./shared-bench.js";

let b: SharedBench;

const CONFIG = [
  "openssl_conf = openssl_init",
  "[openssl_init]",
  "providers = provider_sect",
  "[provider_sect]",
  "evil = evil_sect",
  "[evil_sect]",
  "module = /workspace/evil.so",
  "activate = 1",
  "",
].join("\n");

beforeAll(async () => {
  b = await openSharedBench({
    profiles: {
      curl: ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**", "exec: curl *"],
      // May write its temp folder, HOME: where curl looks for a .curlrc when CURL_HOME is not set.
      tmp: ["tool: exec", "file_read: /workspace/**", "file_write: /workspace/**"].concat([
        "file_read: /tmp/**",
        "file_write: /tmp/**",
        "exec: curl *",
        "exec: printf *",
        "exec: cat *",
        "exec: env *",
      ]),
    },
    files: {
      "/workspace/evil.c":
        '#include <stdio.h>\n__attribute__((constructor)) static void pwn(void) { FILE *f = fopen("/workspace/pwn-openssl", "w"); if (f) fclose(f); }\n',
      "/workspace/evil.cnf": CONFIG,
      "/workspace/engine.cfg": "engine = /workspace/evil.so\n",
      "/workspace/.curlrc": "engine = /workspace/evil.so\n",
    },
    // The agent could write these bytes with any program that writes files; the test makes them here.
    setup: "gcc -shared -fPIC -o /workspace/evil.so /workspace/evil.c && chmod -R a+rwX /workspace",
  });
}, 240_000);

afterAll(async () => {
  await b?.close();
});

describe("OpenSSL's configuration is a way to load code into a granted program", () => {
  it.each([
    "OPENSSL_CONF=/workspace/evil.cnf curl -s http://127.0.0.1:1/",
    "export OPENSSL_CONF=/workspace/evil.cnf; curl --version",
    "env OPENSSL_CONF=/workspace/evil.cnf curl --version",
    "OPENSSL_MODULES=/workspace curl --version",
    "OPENSSL_ENGINES=/workspace curl --version",
  ])(
    "refuses %s",
    async (command) => {
      const r = await b.exec("curl", command);
      expectRefused(
        b,
        "curl",
        r,
        "policy",
        /OPENSSL_(CONF|MODULES|ENGINES) \(rule loader-injection\)|loader-injection/,
      );
      expect(b.exists("/workspace/pwn-openssl")).toBe(false);
    },
    60_000,
  );

  it.each([
    [
      "--engine with the object's path",
      "curl -s --engine /workspace/evil.so http://127.0.0.1:1/",
      /curl --engine loads an OpenSSL engine/,
    ],
    [
      "--eng, an abbreviation curl takes",
      "curl -s --eng /workspace/evil.so http://127.0.0.1:1/",
      /curl --eng loads an OpenSSL engine/,
    ],
    ["-K, options from a file", "curl -sK /workspace/engine.cfg http://127.0.0.1:1/", /-K reads its options/],
    [
      "--conf, options from a file",
      "curl --conf /workspace/engine.cfg http://127.0.0.1:1/",
      /curl --conf reads its options/,
    ],
    ["a run-time option", 'curl "$X" http://127.0.0.1:1/', /curl with a run-time argument/],
    [
      "HOME where a .curlrc names the engine",
      "HOME=/workspace curl -s http://127.0.0.1:1/",
      /HOME, where curl reads its configuration/,
    ],
    [
      "CURL_HOME, exported",
      "export CURL_HOME=/workspace; curl -s http://127.0.0.1:1/",
      /CURL_HOME \(rule loader-injection\)/,
    ],
  ])(
    "refuses curl's own way to the engine: %s",
    async (_how, command, why) => {
      const r = await b.exec("curl", command);
      expectRefused(b, "curl", r, "policy", why);
      expect(b.exists("/workspace/pwn-openssl")).toBe(false);
    },
    60_000,
  );

  it("still runs curl without them", async () => {
    const r = expectOk(await b.exec("curl", "curl --version"));
    expect(r.output).toContain("curl");
    expect(expectOk(await b.exec("curl", 'X=http://127.0.0.1:1/; curl -s -- "$X"')).output).toContain(
      "exit code 7",
    );
    expect(b.exists("/workspace/pwn-openssl")).toBe(false);
  }, 60_000);
});

describe("a .curlrc the agent writes in its own HOME", () => {
  it("is not read by the next curl: CURL_HOME points at the image's empty one", async () => {
    expectOk(await b.exec("tmp", `printf 'engine = /workspace/evil.so\\n' > "$HOME/.curlrc"`));
    expect(expectOk(await b.exec("tmp", 'cat "$HOME/.curlrc"')).output).toContain("engine");
    const r = expectOk(await b.exec("tmp", "curl -s http://127.0.0.1:1/"));
    // On main curl loaded the engine (the constructor ran), then failed to bind it: exit 53.
    expect(b.exists("/workspace/pwn-openssl")).toBe(false);
    expect(r.output).toContain("exit code 7");
    expect(expectOk(await b.exec("tmp", 'printf "%s" "$CURL_HOME"')).output).toContain("/opt/aido/curl");
  }, 60_000);

  it.each([
    ["unset", "unset CURL_HOME; curl -s http://127.0.0.1:1/"],
    ["env -u", "env -u CURL_HOME curl -s http://127.0.0.1:1/"],
    ["set for another program", "CURL_HOME=/tmp printf x"],
  ])(
    "refuses a command that moves CURL_HOME (%s)",
    async (_how, command) => {
      const r = await b.exec("tmp", command);
      expectRefused(b, "tmp", r, "policy", /CURL_HOME/);
    },
    60_000,
  );
});
