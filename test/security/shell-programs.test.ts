// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// Options that make a program run another program: each is unfolded into the program it
// runs (judged like any command) or refused with a reason naming the option. Tried the
// way an agent holding a grant for the outer program would try them.

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { analyzeCommand } from "../../src/security/shell.js";
import { isDataOnly, judgedByName } from "../../src/security/shell-programs.js";

const names = (cmd: string): string[] => analyzeCommand(cmd).commands.map((c) => c.argv[0]!);
const argvs = (cmd: string): string[][] => analyzeCommand(cmd).commands.map((c) => c.argv);

function refused(cmd: string, why: RegExp): void {
  let error: unknown;
  try {
    analyzeCommand(cmd);
  } catch (e) {
    error = e;
  }
  expect(isAidoError(error, "policy_denied"), `${cmd} was not refused`).toBe(true);
  expect((error as Error).message).toMatch(/^cannot judge command: /);
  expect((error as Error).message).toMatch(why);
}

describe("programs that run programs named in their options", () => {
  it("unfolds sort --compress-program into the program, fed sort's data", () => {
    const a = analyzeCommand("sort --compress-program=gzip -o out big.txt");
    expect(a.commands.map((c) => c.argv)).toEqual([
      ["sort", "--compress-program=gzip", "-o", "out", "big.txt"],
      ["gzip"],
      ["gzip", "-d"],
    ]);
    expect(a.commands[1]!.stdinPiped).toBe(true);
    expect(names("sort --compress-program sh big.txt")).toContain("sh");
    // sort takes the whole value as one file name: there is no `sh` to run here.
    expect(names("sort --compress-program='sh -c id' f")).toContain("sh -c id");
  });

  it("unfolds tar's programs and refuses its remote and script hooks", () => {
    expect(argvs("tar -I 'zstd -19' -cf a.tar.zst d")).toContainEqual(["zstd", "-19"]);
    expect(argvs("tar --to-command='cat > /tmp/x' -xf a.tar")).toContainEqual(["cat"]);
    expect(argvs("tar --checkpoint=1 --checkpoint-action=exec='id' -cf a.tar d")).toContainEqual(["id"]);
    expect(argvs("tar -F 'rm -rf /' -cf a.tar d")).toContainEqual(["rm", "-rf", "/"]);
    refused("tar --rsh-command=/bin/sh -cf host:a.tar d", /--rsh-command/);
    refused("tar -cf host:a.tar d", /remote archive/);
    // Writing, tar runs the compressor through /bin/sh -c (seen with strace); reading, directly.
    expect(analyzeCommand("tar czf out.tgz d").helpers).toEqual(["gzip", "sh"]);
    expect(analyzeCommand("tar xf in.tar").helpers).toContain("xz");
  });

  it("refuses git's configuration and program options, and unfolds ssh URLs", () => {
    refused("git -c core.pager=sh log", /git -c sets git configuration/);
    refused("git -c user.name=a -c core.pager=sh log", /run programs \(core\.pager=sh\)/);
    refused("git -c Core.Pager=sh log", /git -c may set only user\.name/);
    refused("git -c include.path=/workspace/x.cfg -c user.name=a log", /include\.path/);
    refused("git -c user.name.x=a log", /git -c sets/);
    refused("git --config-env=core.sshCommand=X fetch", /configuration/);
    refused("git --exec-path=/workspace/bin status", /--exec-path/);
    refused("git -p log", /pager/);
    refused("git clone -u 'sh -c id' x y", /-u names a program/);
    refused("git fetch --upload-pack=/workspace/x origin", /--upload-pack/);
    refused("git push --receive-pack=x origin", /--receive-pack/);
    refused("git clone 'ext::sh -c id' x", /ext:: URLs run a command/);
    refused("git rebase --exec 'make' main", /--exec/);
    refused("git rebase -x make main", /-x/);
    refused("git bisect run ./test.sh", /bisect run/);
    refused("git submodule foreach 'rm -rf .'", /foreach/);
    refused("git filter-branch --tree-filter 'id' HEAD", /filter-branch/);
    refused("git config core.fsmonitor 'touch /workspace/pwn'", /core.fsmonitor/);
    refused("git config --global alias.x '!sh -c id'", /alias\.x/);
    refused("git $SUB", /run-time/);
    expect(names("git clone git@github.com:a/b.git")).toEqual(["git", "ssh"]);
    expect(names("git push origin HEAD:main")).toEqual(["git"]);
    expect(names("git config user.name bot && git log -1")).toEqual(["git", "git"]);
    // git -c with an identity or display key names no program: how a model commits in a fresh container.
    expect(names("git -c user.name=bot -c user.email=b@x commit -m msg")).toEqual(["git"]);
    expect(names("git -c color.ui=never -c core.quotePath=false log --oneline")).toEqual(["git"]);
  });

  it("runs only git's own subcommands: any other is an alias from .git/config", () => {
    const alias = /git p: an alias or unknown git command: aliases run what \.git\/config says/;
    refused("git p origin HEAD", alias);
    refused("git -C /workspace/repo --no-pager p origin", alias);
    refused("/usr/lib/git-core/git-p origin", alias);
    refused("git PUSH origin", /git PUSH: an alias or unknown git command/);
    refused("git remote-ext x 'sh -c id'", /runs the command its arguments name/);
    refused("git shell -c ls", /git-shell-commands/);
    refused("git for-each-repo --config=k push", /each repository/);
    expect(names("git -C /workspace/repo stash push -m x")).toEqual(["git"]);
    expect(names("/usr/lib/git-core/git-upload-pack /workspace/repo")).toEqual([
      "/usr/lib/git-core/git-upload-pack",
    ]);
  });

  it("unfolds rsync -e and remote paths into ssh, and refuses --rsync-path", () => {
    expect(argvs("rsync -e 'ssh -p 2222' a host:b")).toContainEqual(["ssh", "-p", "2222"]);
    expect(names("rsync -a src/ host:dst/")).toContain("ssh");
    expect(names("rsync -a src/ dst/")).toEqual(["rsync"]);
    refused("rsync --rsync-path='sh -c id' a host:b", /--rsync-path/);
    refused("rsync -e 'sh -c \"id\"' a b:c", /quoting/);
  });

  it("refuses ssh options that run local programs", () => {
    refused("ssh -o ProxyCommand='sh -c id' host", /ProxyCommand/);
    refused("ssh -oLocalCommand=id -o PermitLocalCommand=yes host", /LocalCommand/);
    refused("ssh -F /workspace/cfg host", /-F/);
    refused("scp -S /workspace/evil a host:b", /-S/);
    refused("sftp -D /workspace/server host", /-D names a server program/);
    expect(analyzeCommand("ssh host cat /etc/passwd").commands[0]!.dataArgs).toEqual([2, 3]);
  });

  it("refuses pager and editor commands", () => {
    refused("less '+!id' f", /runs a pager command/);
    refused("more '+|id' f", /pager command/);
    refused("less --lesskey-file=/workspace/k f", /lesskey/);
    expect(names("less +G f && more +10 g")).toEqual(["less", "more"]);
    refused("vim -c '!id' f", /vim -c/);
    refused("vi +'!id' f", /editor commands/);
    refused("view --cmd 'call system(\"id\")' f", /--cmd/);
    refused("vim -S /workspace/x.vim f", /-S/);
    refused("ex f", /ex reads editor commands/);
    refused("man -P 'sh -c id' ls", /-P names a program/);
    refused("man --pager=id ls", /--pager/);
  });

  it("judges awk programs: system(), pipes, program files and extensions are refused", () => {
    expect(names("awk -F: '{print $1}' /etc/passwd")).toEqual(["awk"]);
    expect(names("awk '/a|b/ {n++} END {print n || 0}' f")).toEqual(["awk"]);
    expect(names("awk 'BEGIN { x = 4 / 2; print x }'")).toEqual(["awk"]);
    refused("awk 'BEGIN{system(\"id\")}'", /system\(\)/);
    refused("awk '{print | \"sh\"}' f", /pipes/);
    refused("awk 'BEGIN{\"id\" | getline x}'", /pipes/);
    refused("gawk '@load \"filefuncs\"; {}'", /@-directive/);
    refused('gawk \'BEGIN{f="system"; @f("id")}\'', /@-directive|system/);
    refused("awk -f /workspace/prog.awk f", /reads its program from a file/);
    refused("gawk -l /workspace/ext.so '{}'", /extension/);
    refused("mawk -W exec /workspace/p f", /-W/);
    refused('awk "$PROG" f', /run-time/);
    expect(names("gawk --sandbox 'BEGIN{system(\"id\")}'")).toEqual(["gawk"]);
  });

  it("refuses an awk program that opens files of its own: getline <, print > and >>, ARGV", () => {
    refused(`awk 'BEGIN { getline l < "/w/k"; print l }'`, /reads a file it names \(getline <\)/);
    refused(`awk 'BEGIN { while ((getline < "/w/k") > 0) n++ }'`, /getline </);
    refused(`awk 'BEGIN { getline $ (1) < "/w/k" }'`, /getline </);
    refused(`awk '{ print > "/w/o" }' f`, /writes a file it names/);
    refused(`awk '{ print $1, $2 >> $3 }' f`, /writes a file it names/);
    refused(`awk '{ printf("%s", $0) > "/w/o" }' f`, /writes a file it names/);
    refused(`awk '{ print "a" > "/dev/stderr" "x" }' f`, /writes a file it names/);
    refused(`awk 'BEGIN { ARGV[1] = "/w/k"; ARGC = 2 } { print }'`, /uses ARGV/);
    refused(`awk 'BEGIN { split("/w/k", ARGV) }'`, /uses ARGV/);
    expect(names(`awk '$1 > 5 { print $1 }' f`)).toEqual(["awk"]);
    expect(names(`awk '{ print ($1 > 5) }' f`)).toEqual(["awk"]);
    expect(names(`awk '{ if (x < 3) getline; print x > "/dev/stderr" }' f`)).toEqual(["awk"]);
    expect(names(`awk '{ print "a>b" }' f`)).toEqual(["awk"]);
    expect(names(`gawk --sandbox '{ print > "/w/o" }' f`)).toEqual(["gawk"]);
  });

  it("judges sed scripts: e and s///e refused, w files written, -f refused", () => {
    expect(names("sed -n 's/a/b/gp' f")).toEqual(["sed"]);
    expect(names("sed -e ':a;N;$!ba;s/\\n/ /g' f")).toEqual(["sed"]);
    expect(names("sed '/x/i\\\ninserted' f")).toEqual(["sed"]);
    refused("sed 's/.*/id/e' f", /s\/\/\/e/);
    refused("sed '1e id' f", /runs a command \(e\)/);
    refused("sed -e 'p' -e 'e id' f", /\(e\)/);
    refused("sed -f /workspace/s.sed f", /-f reads its script/);
    refused("sed -nf s.sed f", /-f reads its script/);
    const w = analyzeCommand("sed -n 'w /workspace/out.txt' f && sed 's/a/b/w /output/log' g");
    expect(w.commands.flatMap((c) => c.files)).toEqual([
      { path: "/workspace/out.txt", dynamic: false, write: true },
      { path: "/output/log", dynamic: false, write: true },
    ]);
    expect(names("sed --sandbox 's/.*/id/e' f")).toEqual(["sed"]);
  });

  it("judges sed -i's backup as a write beside each file, and refuses a suffix that moves it", () => {
    const files = (cmd: string) => analyzeCommand(cmd).commands[0]!.files;
    expect(files("sed -i.bak s/a/b/ /w/f /w/g")).toEqual([
      { path: "/w/f.bak", dynamic: false, write: true },
      { path: "/w/g.bak", dynamic: false, write: true },
    ]);
    expect(files("sed --in-place=.o -e s/a/b/ /w/f")).toEqual([
      { path: "/w/f.o", dynamic: false, write: true },
    ]);
    expect(files("sed -i s/a/b/ /w/f")).toEqual([]);
    refused("sed -i'../s/*' s/a/b/ f", /backup suffix "\.\.\/s\/\*"/);
    refused("sed --in-place='old_*' s/a/b/ d/f", /backup suffix "old_\*"/);
    refused("sed -i/x s/a/b/ f", /backup suffix/);
  });

  it("refuses zip -TT and lists unzip for zip -T", () => {
    refused("zip -TT 'sh -c id' a.zip f", /-TT/);
    refused("zip --unzip-command='id' -T a.zip f", /unzip-command/);
    expect(analyzeCommand("zip -T a.zip f").helpers).toEqual(["unzip"]);
  });

  it("unfolds the runners of other programs", () => {
    expect(argvs("watch -n1 'date; ls'")).toEqual([["date"], ["ls"]]);
    expect(argvs("watch -x ls -l")).toEqual([["ls", "-l"]]);
    expect(argvs("script -qc 'make test' /dev/null")).toEqual([["make", "test"]]);
    expect(argvs("flock /tmp/l -c 'ls x'")).toEqual([["ls", "x"]]);
    expect(argvs("flock /tmp/l ls x")).toEqual([["ls", "x"]]);
    expect(argvs("stdbuf -oL ionice -c3 nohup setsid nice -n5 timeout 9 ls")).toEqual([["ls"]]);
    expect(argvs("env -S 'ls -l' x")).toEqual([["ls", "-l", "x"]]);
    refused("env -S 'ls \"$X\"'", /env -S/);
    expect(argvs("split -l 10 --filter='gzip > $FILE.gz' big")).toContainEqual(["gzip"]);
    expect(argvs("install -s --strip-program=/workspace/s a b")).toContainEqual(["/workspace/s"]);
    expect(argvs("diff3 --diff-program=/workspace/d a b c")).toContainEqual(["/workspace/d"]);
    expect(argvs("ldd /workspace/app")).toContainEqual(["/workspace/app"]);
    expect(argvs("/lib64/ld-linux-x86-64.so.2 /workspace/app x")).toEqual([["/workspace/app", "x"]]);
    refused("ld.so --preload /workspace/x.so /bin/ls", /--preload/);
    expect(analyzeCommand("find . -fprint /workspace/list -name '*.py'").commands[0]!.files).toEqual([
      { path: "/workspace/list", dynamic: false, write: true },
    ]);
  });

  it("unfolds logsave and fstab-decode, and refuses init-script runners", () => {
    expect(argvs("logsave /tmp/log ls -l")).toEqual([
      ["logsave", "/tmp/log", "ls", "-l"],
      ["ls", "-l"],
    ]);
    expect(analyzeCommand("logsave /tmp/log ls").commands[0]!.files).toEqual([
      { path: "/tmp/log", dynamic: false, write: true },
    ]);
    expect(argvs("fstab-decode sh -c 'ls x'")).toEqual([["ls", "x"]]);
    refused("service ssh start", /init scripts/);
    refused("invoke-rc.d x start", /init scripts/);
  });

  it("refuses programs whose commands cannot be known from the text", () => {
    refused("parallel echo ::: a b", /parallel/);
    refused("run-parts /workspace/hooks", /run-parts/);
    refused("scriptlive -t t -I i", /scriptlive/);
    refused("apt-get install x", /apt-get installs/);
    refused("dpkg -i x.deb", /dpkg/);
    expect(names("dpkg -l")).toEqual(["dpkg"]);
    refused("sg grp -c id", /sg runs/);
    refused("wget --use-askpass=/workspace/x http://h/", /askpass/);
    refused("busybox ash -c id", /busybox ash/);
    expect(argvs("busybox rm x")).toEqual([["rm", "x"]]);
  });

  it("marks patterns and code as data, never as paths", () => {
    expect(analyzeCommand("grep -r 'a/b' src/").commands[0]!.dataArgs).toEqual([2]);
    expect(analyzeCommand("grep -e x/y -f pats.txt .").commands[0]!.dataArgs).toEqual([2]);
    expect(analyzeCommand("find . -path './node_modules/*' -prune").commands[0]!.dataArgs).toEqual([3]);
    expect(analyzeCommand("python3 -c 'open(\"/x\")' a").commands[0]!.dataArgs).toEqual([2]);
    expect(analyzeCommand("echo /workspace/secret/k.txt").commands[0]!.dataArgs).toEqual([1]);
    expect(analyzeCommand("jq '.a/2' f.json").commands[0]!.dataArgs).toEqual([1]);
  });

  it("reads prove, pdb3 and perl's versioned names as the interpreters they are", () => {
    // Their code is data, their files are paths; their grant decides what the code does.
    expect(analyzeCommand("prove -e 'perl -w' -I lib t/x.t").commands[0]!.dataArgs).toEqual([2]);
    expect(analyzeCommand("pdb3 -c 'until 9' s.py").commands[0]!.dataArgs).toEqual([2]);
    expect(analyzeCommand("perl5.36.0 -e 'print 1' f").commands[0]!.dataArgs).toEqual([2]);
    for (const name of ["prove", "pdb3", "pdb3.11", "perl5.36.0", "perl5.36-x86_64-linux-gnu"]) {
      expect(isDataOnly(name), name).toBe(true);
      expect(judgedByName(name), name).toBe(false);
    }
  });
});

describe("run-time words where a program takes the value of an option", () => {
  const RUNTIME = /with a run-time argument .* may turn out to be an option/;

  it("accepts a quoted run-time word as the value of a data option", () => {
    expect(names('tar -xf "$f"')).toEqual(["tar"]);
    expect(names('tar xzf "$f" -C /tmp')).toEqual(["tar"]);
    expect(names('tar -C "$d" -x -f "$f" --force-local')).toEqual(["tar"]);
    expect(names('tar --file "$f" -t')).toEqual(["tar"]);
    expect(names('git commit -m "$msg"')).toEqual(["git"]);
    expect(names('git -C /workspace/repo commit -q -am "fix: $msg" --author "$who"')).toEqual(["git"]);
    expect(names('git tag -a v1 -m "$msg"')).toEqual(["git"]);
    expect(names('git checkout -b "$branch"')).toEqual(["git"]);
    expect(names('git stash push -m "$msg"')).toEqual(["git"]);
    expect(names('find . -name "$p" -type f')).toEqual(["find"]);
    expect(names('find /workspace -newer "$ref" -exec ls {} +')).toEqual(["find", "ls"]);
  });

  it("lists rsh for a run-time archive name (it may be host:file), and marks a run-time -C folder as run-time", () => {
    expect(analyzeCommand('tar -xf "$f"').helpers).toContain("rsh");
    expect(analyzeCommand('tar --force-local -xf "$f"').helpers).not.toContain("rsh");
    expect(analyzeCommand('tar -x -f a.tar -C "$d"').commands[0]!.localDirs).toEqual([
      { path: '"$d"', dynamic: true },
    ]);
  });

  it("takes an unquoted glob as find's pattern when no match can spell a find primary", () => {
    expect(names("find . -name *.txt")).toEqual(["find"]);
    expect(names("find . -path */src/*")).toEqual(["find"]);
    refused("find . -name *", RUNTIME);
    refused("find . -name *[.]txt", RUNTIME);
    refused("find . -newer *.txt", RUNTIME);
  });

  it("refuses a word that field splitting could cut, a value slot after an option the table does not know, and program options", () => {
    refused("tar -xf $f", RUNTIME);
    refused('tar -cf out.tar "$f"', RUNTIME);
    refused('tar --exclude -f "$x" -cf out.tar .', RUNTIME);
    refused('tar -H -f "$x" -cf out.tar .', RUNTIME);
    refused('git commit --cleanup -m "$x"', RUNTIME);
    refused('git fetch -m "$x"', RUNTIME);
    refused('git commit --mess "$x"', RUNTIME);
    refused('find . -printf -name "$x"', RUNTIME);
    refused('find . -D tree -name "$x"', RUNTIME);
    refused('tar -cf out.tar --to-command "$x" .', RUNTIME);
    refused(
      'tar --checkpoint=1 --checkpoint-action "e$x" -cf /tmp/o.tar .',
      /--checkpoint-action with a run-time value/,
    );
    refused('tar -I "g$x" -cf /tmp/o.tar .', /tar -I with a run-time value/);
  });
});

describe("words xargs appends to a wrapper", () => {
  it("refuses a wrapper given no command, whose command the appended words would be", () => {
    for (const w of [
      "env",
      "nice",
      "nice -n",
      "timeout 5",
      "setsid -w",
      "stdbuf -o0",
      "flock /tmp/l",
      "busybox",
    ]) {
      refused(
        `xargs ${w}`,
        new RegExp(
          `xargs appends arguments read at run time to ${w.split(" ")[0]}, which runs them as a command`,
        ),
      );
    }
    refused("xargs -0 env A=1", /to env, which runs them/);
    refused("xargs xargs", /xargs appends arguments read at run time to xargs, which runs them/);
  });

  it("runs a wrapper whose command is written out, and a shell's script, with the words as arguments", () => {
    expect(argvs("xargs nice cat")).toEqual([["cat"]]);
    expect(argvs("xargs env A=1 timeout 5 cat")).toEqual([["cat"]]);
    expect(argvs("xargs sh ./s.sh")).toEqual([["sh", "./s.sh"]]);
    refused("xargs sh", /sh run by xargs takes its script from the arguments added at run time/);
  });
});

describe("curl's ways to load a shared object", () => {
  it("refuses --engine and -K/--config, however abbreviated or clustered", () => {
    refused("curl --engine /w/e.so https://h/", /curl --engine loads an OpenSSL engine/);
    refused("curl --en /w/e.so https://h/", /curl --en loads/);
    refused("curl -sSK /w/c https://h/", /-K reads its options/);
    refused("curl --config /w/c https://h/", /reads its options/);
    refused("curl --con /w/c https://h/", /reads its options/);
    refused('curl -s "$URL"', /curl with a run-time argument/);
    expect(names("curl -sS -o /w/o -H 'K: v' https://h/")).toEqual(["curl"]);
    expect(names("curl -sHK https://h/")).toEqual(["curl"]);
    expect(names('curl -s -- "$URL"')).toEqual(["curl"]);
  });
});

describe("git options that name a program, however they are written", () => {
  it("refuses git grep -O and a short program option with its value attached or in a cluster", () => {
    refused("git grep -O'touch x' hello", /git grep -O/);
    refused("git grep -iOcmd hello", /one of -O/);
    refused("git grep --open-files-in-pager=cmd hello", /--open-files-in-pager names a program/);
    refused("git clone -ucmd a b", /one of -u, -c/);
    refused("git clone -ccore.sshCommand=x a b", /one of -u, -c/);
    refused("git rebase -xcmd HEAD~1", /one of -x, -i/);
    refused("git submodule--helper foreach 'touch x'", /git submodule--helper runs/);
    refused("/usr/lib/git-core/git-submodule--helper foreach 'touch x'", /git submodule--helper runs/);
    refused("git bisect--helper --bisect-run touch x", /git bisect--helper runs/);
    expect(names("git grep -n -e Ofoo hello")).toEqual(["git"]);
    expect(names("git clone -q --branch=main a b")).toEqual(["git"]);
  });
});
