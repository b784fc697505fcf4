// tools/exec-paths.ts — the files an exec names, judged before anything runs, so a model
// gets a precise refusal ("argument 1 of cat: /workspace/secret/k.txt needs file_read")
// instead of an EACCES from the Landlock domain its exec runs in (which is the wall: it
// also bounds what programs open on their own, what a glob expands to, and what a command
// creates and then follows, none of which can be judged in advance).
//
// What is judged: arguments that look like paths (absolute, ./x, ../x, anything with a /,
// the value of --opt=PATH or key=PATH; not patterns, URLs, or arguments a program takes as
// code or data), redirection targets, files named inside options (sed `w FILE`, find
// -fprint), and cd targets. Each is resolved in the container (sandbox.realpath: symlinks
// followed there, `..` after them) from every directory the command may start in
// (security/shell-dirs.ts). A path under the goal's mounts must be covered by the agent's
// grants: file_write for what is written (redirections, cp's destination...), file_read
// for what is read (< redirections, cd targets), either for an argument whose direction
// the program alone knows. Every resolved path, inside the mounts or not, goes to the
// policy too (operator `path:` rules, the system-path rule). A relative path that is not
// explicit (`a/b`, not `./a/b`) is judged only when its folder exists: `s/a/b/` is more
// often a sed script than a file. A run-time word is judged by the fixed folder in front of it
// (knownPart) and, where it is a variable whole (`"$d/f"`, `"$1"`), as each value the command
// gives it, as the literal would be (exec-values.ts; one set at run time is refused; removals
// take their values there too, exec-removals.ts). Every static word of every command is also collected
// with the folders it may be opened from (not resolved: exec-scope.ts does that, only
// when a human's standing answer is involved).

import { posix } from "node:path";
import { AidoError, ErrorCode } from "../errors.js";
import { isWithin } from "../fs/within.js";
import type { Need } from "../gate/types.js";
import type { SandboxHandle } from "../sandbox/types.js";
import { isInterpreterName } from "../security/policy-rules.js";
import type { CommandAnalysis, Redirect, ResolvedPath, SimpleCommand } from "../security/shell.js";
import { possibleDirs } from "../security/shell-dirs.js";
import {
  commandName,
  findDeletes,
  pathOf,
  pathTexts,
  removedOperands,
  symlinkOperands,
  writeTargets,
} from "../security/shell-operands.js";
import { programReads } from "../security/shell-writes.js";
import { passedOnPieces } from "../security/shell-writes-build.js";
import { codeWords } from "./exec-code.js";
import { refuseEnvWrites } from "./exec-env-writes.js";
import {
  execStartVars,
  type KnownVars,
  knownPart,
  knownVars,
  RUN_TIME_TEXT,
  type StartVars,
} from "./exec-known.js";
import { runTimeNamed } from "./exec-merge.js";
import { refuseRebound } from "./exec-rebound.js";
import { assignedPaths, cwdPath, refuseOldPwd, runsRuntimeRemoval } from "./exec-removals.js";
import {
  hasSubstitution,
  readRemoval,
  substitutionRemoval,
  substitutionValue,
  xargsRemoval,
} from "./exec-substitutions.js";
import { boundWords } from "./exec-values.js";

export { CONTAINER_HOME } from "./exec-known.js";

import { Resolver, type StartDir } from "./exec-resolver.js";
import { fileWords, type ScopeWord } from "./exec-scope.js";

export { MAX_EXEC_PATHS, MOUNT_ROOTS } from "./exec-resolver.js";

export interface ExecPaths {
  needs: Need[];
  paths: ResolvedPath[];
  /**
   * Every static word that could name a file, with the canonical folders it may be opened
   * from: resolved only when the call reaches the approval stage (exec-scope.ts).
   */
  words: ScopeWord[];
}

const describeRedirect = (r: Redirect): string =>
  `the redirection ${r.fd === 0 || r.fd === 1 ? "" : r.fd}${r.op}`;

/** Where the code judged runs: see execPaths. */
export interface ExecPlace {
  /**
   * The caller's private folder, given only when the exec runs confined with HOME and TMPDIR
   * there (sandbox/executor/exec.ts): a path in it needs no grant.
   */
  privateTmp?: string;
  /**
   * HOME and TMPDIR the code starts with (default: the exec's own, execStartVars): `~` and what
   * a program writes in $TMPDIR by default are judged where they lead. A script a command runs
   * starts with what the command gave it (`HOME=D sh s.sh`: D; exec-known.ts scriptStartVars).
   */
  start?: StartVars;
}

/**
 * The file needs of an analysed exec command and the canonical paths behind them (see the
 * header), for code that starts in any of `cwds` (a script run after a `cd` may start in several),
 * run as `place` says. Without a private folder, HOME is /tmp and TMPDIR unset, as an unconfined
 * exec has them.
 */
export async function execPaths(
  sandbox: SandboxHandle,
  analysis: CommandAnalysis,
  cwds: readonly string[],
  place: ExecPlace = {},
): Promise<ExecPaths> {
  const out: ExecPaths = { needs: [], paths: [], words: [] };
  const seen = new Set<string>();
  analysis = runTimeNamed(analysis);
  const start = place.start ?? execStartVars(place.privateTmp);
  for (const cwd of cwds) {
    const one = await pathsFrom(
      sandbox,
      analysis,
      cwd,
      place.privateTmp,
      knownVars(start, analysis.assignedNames),
    );
    for (const n of one.needs) {
      const key = JSON.stringify(n);
      if (!seen.has(key)) out.needs.push(n);
      seen.add(key);
    }
    out.paths.push(...one.paths);
    out.words.push(...one.words);
  }
  return out;
}

/**
 * The canonical directories command `index` of `analysis` may start in, for code started in
 * `cwd` with `start` (a `cd ~` goes where HOME leads).
 */
export async function startDirs(
  sandbox: SandboxHandle,
  analysis: CommandAnalysis,
  index: number,
  cwd: string,
  start: StartVars,
): Promise<string[] | undefined> {
  const judged = runTimeNamed(analysis);
  const vars = knownVars(start, judged.assignedNames);
  const paths = possibleDirs(judged, index, { known: (t) => knownDir(t, vars) });
  if (paths === undefined) return undefined;
  const r = new Resolver(sandbox, cwd, undefined);
  return [...new Set((await Promise.all(paths.map((p) => r.dir(p)))).map((d) => d.canonical))];
}

async function pathsFrom(
  sandbox: SandboxHandle,
  analysis: CommandAnalysis,
  cwd: string,
  privateTmp: string | undefined,
  vars: KnownVars,
): Promise<ExecPaths> {
  const r = new Resolver(sandbox, cwd, privateTmp);
  // `cd ~`, `cd $HOME`, `cd` (HOME): where HOME leads, when that is known.
  const knownTarget = (target: string) => knownDir(target, vars);
  const dirsOf = async (index: number | undefined, local = true): Promise<StartDir[] | undefined> => {
    const paths = possibleDirs(analysis, index, { local, known: knownTarget });
    return paths === undefined ? undefined : Promise.all(paths.map((p) => r.dir(p)));
  };
  // What a program writes in $TMPDIR by default (mktemp, tempfile): where vars says it lands.
  // A TMPDIR the command sets is refused for them (WRITE_ENV); one a script was handed from a
  // run-time value is not known: refused below.
  const tmpdir = vars.tmpdirDefault;
  const redirectsDone = new Set<Redirect>();
  const redirect = async (
    x: Redirect,
    dirs: StartDir[] | undefined,
    index: number | undefined,
  ): Promise<void> => {
    if (redirectsDone.has(x)) return;
    redirectsDone.add(x);
    const access = x.read && x.write ? "readwrite" : x.write ? "write" : "read";
    if (!x.dynamic) return r.judge(x.target, dirs, access, describeRedirect(x), true);
    await runTimePath(x.target, dirs, access, describeRedirect(x), x.write, index);
  };
  const words: ScopeWord[] = [];
  const knownValues = { vars, assigned: (w: string) => assignedPaths(w, analysis, vars) };
  // A path known only at run time (a redirect target, a file named in options): refused where
  // written if bound only at run time (`f() { echo x > "$1"; }; f D`), judged with each value its
  // variables are given, and by the fixed folder in front of it (`curl -o "/workspace/out/$F"`).
  async function runTimePath(
    text: string,
    dirs: StartDir[] | undefined,
    access: "read" | "write" | "readwrite",
    via: string,
    write: boolean,
    index: number | undefined,
  ): Promise<void> {
    if (write) refuseRebound(text, analysis, { via, acts: "writes" }, index);
    await bound(text, dirs, access, via, write ? "writes" : "reads");
    const known = knownPart(text, vars);
    if (known) await r.judge(known.path, dirs, known.whole ? access : "any", via, true);
  }
  // `sh -c 'cp E "$1"' _ D`, `d=D; echo x > "$d/f"`: a variable the command gives values is judged
  // with each of them as the literal word would be (exec-values.ts); one set at run time is refused.
  async function bound(
    text: string,
    dirs: StartDir[] | undefined,
    access: "read" | "write" | "readwrite" | "any",
    via: string,
    acts: string,
    logical = false,
  ): Promise<void> {
    for (const w of boundWords(text, analysis, `what ${via} ${acts}`) ?? []) {
      const value = hasSubstitution(w) ? substitutionValue(w, knownValues) : w;
      if (value !== undefined && !RUN_TIME_TEXT.test(value)) {
        if (value === "" || (value === "-" && access === "write")) continue;
        const p = access === "any" ? pathOf(value) : { path: value, explicit: true };
        if (p) await r.judge(p.path, dirs, access, via, p.explicit, logical);
        continue;
      }
      const known = knownPart(value ?? w, vars);
      if (known) await r.judge(known.path, dirs, known.whole ? access : "any", via, true);
    }
  }
  for (const [i, c] of analysis.commands.entries()) {
    const dirs = await dirsOf(i);
    const name = commandName(c);
    const from = dirs === undefined ? null : [...new Set(dirs.map((d) => d.canonical))];
    // What an interpreter is handed and a program run by path are code: the scope holds their content.
    const runs = isInterpreterName(name) ? { runs: true as const } : {};
    for (const text of fileWords(c)) words.push({ text, dirs: from, ...runs });
    // Code named only at run time cannot be pinned: no standing answer covers the call.
    const loose = unpinnedCode(c, name);
    if (loose !== undefined) words.push({ text: name, dirs: from, unpinned: loose });
    // A makefile, a package.json's scripts, `java F.java`: code other programs run (exec-code.ts).
    const other = c.dynamic ? undefined : codeWords(c, name);
    if (other !== undefined && "unpinned" in other)
      words.push({ text: name, dirs: from, unpinned: other.unpinned });
    else for (const text of other?.runs ?? []) words.push({ text, dirs: from, runs: true });
    if (!c.dynamic && !c.argDynamic[0] && c.argv[0]?.includes("/")) {
      words.push({ text: c.argv[0], dirs: from, runs: true });
    }
    // What a known program writes, by argv index: the path itself (`sort -o/out` writes /out),
    // or one made from it (`gzip F` writes F.gz).
    const targets = writeTargets(c);
    refuseEnvWrites(name, targets.length > 0, analysis.assignedNames);
    const writes = new Map<number, string[]>();
    for (const t of targets) if (t.at >= 0) writes.set(t.at, [...(writes.get(t.at) ?? []), t.path]);
    // `find D -delete` removes what is in D (written), and D itself unless -mindepth keeps it.
    // A command it runs may remove what find found (`-exec sh -c 'rm -rf "$1"' sh {} \;`).
    const runsRemoval = name === "find" && runsRuntimeRemoval(analysis, i, vars);
    const deletes = findDeletes(c, runsRemoval);
    // What is removed (or renamed away) is judged as such: the private folder itself needs a grant.
    const removed = removedOperands(c, runsRemoval);
    // `echo ~ | xargs rm -rf`: what the stage before xargs prints is what it removes.
    const fed = xargsRemoval(analysis, i, knownValues, `${name} run by xargs`, {
      dirs: from ?? undefined,
      privateTmp,
      remover: c,
    });
    if (fed !== undefined) await r.judge(fed, dirs, "write", `${name} run by xargs`, true, false, true);
    for (const at of deletes?.at ?? []) writes.set(at, [...(writes.get(at) ?? []), c.argv[at]!]);
    // What it reads from another folder (`patch -d D -i P` reads D/P): judged there too.
    for (const p of programReads(c, name)) {
      const via = `argument ${p.at} of ${name}`;
      const known = c.argDynamic[p.at] ? knownPart(p.value, vars) : { path: p.value, whole: true };
      if (known) await r.judge(known.path, dirs, known.whole ? "read" : "any", via, true);
    }
    // What gcc hands on to ld, as and cc1 in pieces (`-Wl,-T,../F`): judged as their own words are.
    for (const p of passedOnPieces(name, c.argv)) {
      if (c.argDynamic[p.at]) continue; // the word's known part is judged below
      for (const text of pathTexts(p.value)) {
        const q = pathOf(text);
        if (q) await r.judge(q.path, dirs, "any", `argument ${p.at} of ${name}`, q.explicit);
      }
    }
    for (let k = 1; k < c.argv.length; k++) {
      if (c.dataArgs.includes(k)) continue;
      const arg = c.argv[k]!;
      const written = writes.get(k) ?? [];
      const removing = removed.includes(k);
      // What is removed is the name (a link, not where it leads: exec-resolver.ts); find -H or -L
      // follows a starting point that is a link and deletes in what it leads to: judged there too.
      const follows = deletes?.at.includes(k) === true;
      // The word itself, when it is not what is written (`gzip -k F` reads F), may name a file too.
      const read = written.includes(arg) ? [] : pathTexts(arg);
      if (c.argDynamic[k]) {
        const via = `argument ${k} of ${name}`;
        // `set -- D; cd "$1"`, `f() { cp e "$1"; }; f D`: a word bound only at run time, where it
        // names the folder the shell moves to or what is written, is not judged without its value.
        if (isCd(name) && !arg.startsWith("-")) {
          refuseRebound(arg, analysis, { via: "the cd target", acts: "names" }, i);
          const logical = !c.argv.slice(1, k).includes("-P");
          await bound(arg, dirs, "read", "the cd target", "names", logical);
        }
        for (const text of removing ? [] : written) {
          refuseRebound(text, analysis, { via, acts: "writes" }, i);
          if (writtenPath(text, name) !== undefined) await bound(text, dirs, "write", via, "writes");
        }
        for (const text of read) await bound(text, dirs, "any", via, "names");
        // `cat /workspace/secret/*`, `cat ~/x`: the part known before run time is judged.
        const texts = [...written.map((t) => [t, "write"] as const), ...read.map((t) => [t, "any"] as const)];
        for (const [text, access] of texts) {
          const cwd = removing && access === "write" ? cwdPath(text) : undefined;
          if (cwd !== undefined) {
            // `cd ~ && rm -rf "$PWD/"`: the folder the command is in (or a path from it), where that is known.
            await r.judge(cwd, dirs, "write", via, true, false, true);
            continue;
          }
          const place = { dirs: from ?? undefined, privateTmp, remover: c };
          if (removing && access === "write" && hasSubstitution(text)) {
            // `rm -rf "$(dirname ~/x)"`: the path it prints, where known; else refused or left to the domain.
            const value = substitutionRemoval(text, knownValues, via, place);
            if (value !== undefined) {
              await r.judge(value, dirs, "write", via, true, false, true);
              continue;
            }
          }
          if (removing && access === "write") {
            refuseOldPwd(text, via);
            refuseRebound(text, analysis, { via, acts: "removes" }, i);
            // `d=$TMPDIR; rm -rf "$d"`: each known value the command gives the variable (`d=$(echo ~)`: the path it prints).
            for (const p of assignedPaths(text, analysis, vars)) {
              const path = hasSubstitution(p) ? substitutionRemoval(p, knownValues, via, place) : p;
              if (path !== undefined) await r.judge(path, dirs, "write", via, true, false, true);
            }
            // `echo ~ | { read d; rm -rf "$d"; }`: what the stage piped into read prints.
            for (const p of readRemoval(text, analysis, knownValues, via, place))
              await r.judge(p, dirs, "write", via, true, false, true);
          }
          const known = knownPart(text, vars);
          // Only a word that is the path whole names what is removed (`rm -r ~/*`: not the folder).
          const removes = removing && access === "write" && known?.whole === true;
          if (known) await r.judge(known.path, dirs, known.whole ? access : "any", via, true, false, removes);
          if (known && removes && follows) await r.judge(known.path, dirs, "write", via, true);
        }
        continue;
      }
      if (isCd(name) && !arg.startsWith("-")) {
        // The folder itself is read (listed, searched): file_read, like exec's own cwd.
        const logical = !c.argv.slice(1, k).includes("-P");
        await r.judge(arg, dirs, "read", "the cd target", true, logical);
        continue;
      }
      // A written word is a path however it is spelled: `rm notes.txt` after `cd pub` writes pub/notes.txt.
      for (const text of written) {
        const p = writtenPath(text, name);
        if (p !== undefined)
          await r.judge(p, dirs, "write", `argument ${k} of ${name}`, true, false, removing);
        if (p !== undefined && removing && follows)
          await r.judge(p, dirs, "write", `argument ${k} of ${name}`, true);
      }
      for (const text of read) {
        const p = pathOf(text);
        if (p) await r.judge(p.path, dirs, "any", `argument ${k} of ${name}`, p.explicit);
      }
    }
    for (const t of targets) {
      if (!t.implied) continue;
      // A folder or file no argument names (`tar -x` extracts into the cwd, split makes ./xaa).
      const via = `what ${name} writes`;
      // `~/.less` (lesskey's default): the container's HOME, which the command does not set.
      if (t.inTmpdir && !t.dynamic && isWithin("/tmp", t.path)) {
        if (tmpdir === undefined) {
          throw new AidoError(
            ErrorCode.policyDenied,
            `cannot judge what ${name} writes: it writes in $TMPDIR, which is set from a value known only at run time`,
            { rule: "unjudgeable" },
          );
        }
        await r.judge(tmpdir + t.path.slice("/tmp".length), dirs, "write", via, true);
      } else if (!t.dynamic && !t.path.startsWith("~/")) await r.judge(t.path, dirs, "write", via, true);
      else {
        const known = knownPart(t.path, vars);
        if (known) await r.judge(known.path, dirs, known.whole ? "write" : "any", via, true);
      }
    }
    await symlinkTargets(r, c, dirs, vars);
    if (c.localDirs.length > 0) {
      // `env -C DIR`, `git -C DIR`, `tar -C DIR`: the folder it runs in is read, like a cd target.
      const base = await dirsOf(i, false);
      for (const d of c.localDirs) {
        const via = `the folder ${name} runs in`;
        if (!d.dynamic) await r.judge(d.path, base, "read", via, true, true);
        else {
          refuseRebound(d.path, analysis, { via, acts: "names" }, i);
          await bound(d.path, base, "read", via, "names", true);
        }
      }
    }
    for (const f of c.files) {
      const access = f.write ? "write" : "read";
      const via = `a file named in ${name}'s options`;
      if (!f.dynamic) await r.judge(f.path, dirs, access, via, true);
      else await runTimePath(f.path, dirs, access, via, f.write, i);
    }
    for (const x of c.redirects) await redirect(x, dirs, i);
  }
  for (const f of analysis.wrapperFiles) {
    const paths = possibleDirs(analysis, f.at, { place: f, known: knownTarget });
    const dirs = paths === undefined ? undefined : await Promise.all(paths.map((p) => r.dir(p)));
    const via = `a file named in ${f.program}'s options`;
    const access = f.write ? "write" : "read";
    if (!f.dynamic) {
      words.push({
        text: f.path,
        dirs: dirs === undefined ? null : [...new Set(dirs.map((d) => d.canonical))],
      });
      await r.judge(f.path, dirs, access, via, true);
      continue;
    }
    await runTimePath(f.path, dirs, access, via, f.write, f.at);
  }
  // Redirections of statements with no command (`> file`, `X=1 < file`) may stand anywhere.
  const anywhere = analysis.redirects.some((x) => !redirectsDone.has(x)) ? await dirsOf(undefined) : [];
  for (const x of analysis.redirects) await redirect(x, anywhere, undefined);
  return { needs: r.needs, paths: r.paths, words };
}

/** The builtins that move the shell to their operand. */
const isCd = (name: string): boolean => name === "cd" || name === "chdir";

/**
 * The folder a run-time cd target names when it is HOME or TMPDIR with a known value (`cd ~`,
 * `cd`). Not one that starts with `-` (`HOME=- sh s.sh`): cd reads it as an option, and `-` as
 * `cd -`, back to the folder before.
 */
function knownDir(target: string, vars: KnownVars): string | undefined {
  const part = knownPart(target, vars);
  return part?.whole && !part.path.startsWith("-") ? part.path : undefined;
}

/**
 * `ln -s T L` makes a link the kernel follows from L's folder: a relative T is judged from
 * there (from L itself too, which may be a folder the link goes in), as a read or write of
 * whatever it names, like ln's other arguments. Where that folder is known only at run time
 * (`ln -s ../k "$D/l"`), the target cannot be judged: refused.
 */
async function symlinkTargets(
  r: Resolver,
  c: CommandAnalysis["commands"][number],
  dirs: StartDir[] | undefined,
  vars: KnownVars,
): Promise<void> {
  const ln = symlinkOperands(c);
  if (!ln) return;
  for (const t of ln.targets) {
    const part = t.dynamic ? knownPart(t.value, vars) : { path: t.value, whole: true };
    if (!part || part.path.startsWith("/")) continue;
    const via = `argument ${t.at} of ln -s, the link's target from the link's folder`;
    for (const place of ln.places) {
      if (place.dynamic) {
        throw new AidoError(
          ErrorCode.policyDenied,
          `cannot judge ln -s with a relative target ("${t.value}"): the link made in a folder known only at run time ("${place.path}") points wherever its folder leads; give the target as an absolute path`,
          { rule: "unjudgeable" },
        );
      }
      const folders = place.folder ? [place.path] : [place.path, posix.dirname(place.path)];
      for (const folder of new Set(folders)) {
        const written = `${folder}/${part.path}`;
        await r.judge(written, dirs, "any", via, true);
      }
    }
  }
}

/**
 * The path a word a program writes names: any text, a bare name too (`rm notes.txt` removes
 * ./notes.txt), but `-` (stdout for most), and rsync's remote destinations (`host:path`).
 */
function writtenPath(text: string, program: string): string | undefined {
  if (text === "" || text === "-") return undefined;
  if (program === "rsync" && /^[A-Za-z][A-Za-z0-9+.-]*:\/\/|^[^/:]+::?[^/]/.test(text)) return undefined;
  return text;
}

/**
 * Why the code `c` runs cannot be pinned to a content, or undefined: an interpreter handed a
 * word known only at run time (`f=fix.py; python3 "$f"`, `python3 ./fi[x].py`), its program on
 * stdin (`python3 < fix.py`, `cat fix.py | python3`) or a module it looks up (`python3 -m fix`),
 * or a program whose own path is known only at run time (`"$PWD"/fix.py`). Each reran a file
 * rewritten after an Allow Session unasked: exec-scope.ts digests only the files it can name.
 */
function unpinnedCode(c: SimpleCommand, name: string): string | undefined {
  if (c.argDynamic[0]) return `the program it runs ("${c.argv[0]}") is named at run time`;
  if (!isInterpreterName(name)) return undefined;
  const k = c.argDynamic.findIndex((d, i) => i > 0 && d);
  if (k > 0) return `what ${name} runs may be named at run time ("${c.argv[k]}")`;
  if (c.stdinProgram || c.redirects.some((r) => r.fd === 0 && r.read))
    return `${name} reads its program from its input`;
  if (c.argv.includes("-m")) return `${name} -m runs a module it finds at run time`;
  return undefined;
}
