// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// test/redteam/corpus/cases-shell.ts — corpus entries about the shell language itself:
// dialect confusion, quoting, expansions, substitutions, wrappers, here-documents,
// eval/trap/alias/functions. Every attack of issue 10's "Why" section is here verbatim.

import { allow, type Case, refuse, SETS_PATH } from "./case.js";

const D = "dialect confusion";
const Q = "quoting and escapes";
const E = "expansions";
const S = "substitutions";
const W = "wrappers";
const H = "here-documents";
const F = "eval, trap, alias, functions";

const RUNS_BASH = /runs bash, whose language is not POSIX sh/;
const DYNAMIC = /dynamic-command/;
const NO_TOUCH = /no capability grants exec of "touch/;

export const SHELL_CASES: Case[] = [
  // --- the issue's attacks, verbatim -----------------------------------------------------
  {
    ...refuse(
      D,
      "bare",
      '((${X:-sh -c "id; echo x > /workspace/f"}))',
      "capability",
      /no capability grants exec/,
    ),
    canary: "/workspace/f",
  },
  {
    ...refuse(D, "root", '((${X:-sh -c "id; echo x > /workspace/f"}))', "policy", DYNAMIC),
    canary: "/workspace/f",
  },
  refuse(D, "narrow", "echo $'x\\' ; id ; echo ' #'", "policy", /\$'\.\.\.' or \$"\.\.\." quoting/),
  refuse(D, "root", "echo $'x\\' ; touch PWN ; echo ' #'", "policy", /\$'\.\.\.'/),
  refuse(D, "root", "((${X:-rm -rf /workspace/public}))", "policy", DYNAMIC),
  refuse(D, "root", "((${X:-chmod u+s /workspace/s/ok.sh}))", "policy", DYNAMIC),
  refuse(D, "root", "((${X:-env LD_PRELOAD=/workspace/x.so touch PWN}))", "policy", DYNAMIC),
  refuse(D, "gitter", "((${X:-git push origin main}))", "capability", /no capability grants exec/),
  // --- bash syntax and other shells ----------------------------------------------------------
  refuse(D, "root", "bash -c 'touch PWN'", "policy", RUNS_BASH),
  refuse(D, "root", "env bash -c 'touch PWN'", "policy", RUNS_BASH),
  refuse(D, "root", "zsh -c 'touch PWN'", "policy", /runs zsh/),
  refuse(D, "root", "busybox sh -c 'touch PWN'", "policy", /runs busybox sh/),
  refuse(D, "root", "[[ -f /etc/passwd ]] && touch PWN", "policy", /\[\[ is not a sh/),
  refuse(D, "root", "let x=1; touch PWN", "policy", /let is not a sh/),
  refuse(D, "root", "coproc touch PWN", "policy", /coproc/),
  refuse(D, "root", "declare -x X=1; touch PWN", "policy", /declare is not a sh/),
  refuse(D, "root", "source /workspace/s/pwn.sh", "policy", /source is not a sh \(dash\) builtin; use \./),
  refuse(D, "root", "select x in a; do touch PWN; done", "policy", /cannot parse/),
  refuse(D, "root", "function f { touch PWN; }; f", "policy", /cannot parse/),
  refuse(D, "root", "cat <(touch PWN)", "policy", /cannot parse/),
  refuse(D, "root", "touch PWN |& cat", "policy", /cannot parse/),
  refuse(D, "root", "a=(1 2); touch PWN", "policy", /cannot parse/),
  refuse(D, "root", "echo ${x/a/b}; touch PWN", "policy", /cannot parse/),
  refuse(D, "root", 'echo $"x"; touch PWN', "policy", /\$"\.\.\."/),
  refuse(D, "root", "case x in x) :;& esac; touch PWN", "policy", /cannot parse/),
  // A here-document ending in "EOF\r": dash ends it there (CR is part of the word), mvdan-sh did not.
  refuse(D, "root", "cat <<EOF\r\nx\r\nEOF\r\ntouch PWN\nEOF\n", "policy", /control character \(U\+000D\)/),
  refuse(D, "root", "echo a;\x7ftouch PWN", "policy", /control character \(U\+007F\)/),
  refuse(D, "root", "echo a;\u0085touch PWN", "policy", /control character \(U\+0085\)/),
  // mvdan-sh starts a comment at a # glued to a quote or an expansion; dash keeps it in the word.
  refuse(D, "root", "echo 'x'#$(touch PWN)", "policy", /a # right after a quote or an expansion/),
  refuse(D, "root", "echo ${x}#$(touch PWN)", "policy", /a # right after a quote/),
  // mvdan-sh ends a `$` at a backslash-newline; dash joins the lines first and expands what follows.
  refuse(D, "root", 'echo $\\\n#"$(touch PWN)"', "policy", /a \$ followed by a line continuation/),
  refuse(D, "root", 'echo "$\\\n(touch PWN)"', "policy", /a \$ followed by a line continuation/),
  refuse(D, "root", "cat <<EOF\n$\\\n(touch PWN)\nEOF\n", "policy", /a \$ followed by a line continuation/),
  // mvdan-sh ends a token at a backslash-newline after an operator character, a quote or an
  // expansion, and at the start of a here-document line; dash joins the lines first.
  refuse(D, "root", 'echo "x"\\\n#"$(touch PWN)"', "policy", /a line continuation right after """/),
  refuse(D, "root", "cat <<EOF\n\\\nEOF\ntouch PWN\nEOF\n", "policy", /right after the start of a line/),
  refuse(D, "root", "cat <<\\\n-EOF\n\tEOF\ntouch PWN\n-EOF\n", "policy", /right after "<"/),
  refuse(
    D,
    "root",
    "cat <<-EOF\nx \\\n\tEOF\necho '$(touch PWN)'\nEOF\n",
    "policy",
    /in a <<- here-document/,
  ),
  // dash reads a here-document begun in $(...) right after the ), mvdan-sh on the next line.
  refuse(D, "root", "echo $(cat <<EOF)EOF\ntouch PWN\nEOF\n", "policy", /a here-document inside \$\(/),
  // GopherJS encoded a lone surrogate and the ; after it as one character; dash read U+FFFD and ;.
  refuse(D, "root", "echo \uD800;touch PWN", "policy", /lone surrogate U\+D800/),
  allow(D, "root", "ls -d /workspace \\\n  /tmp &&\\\necho a |\\\ncat", ["ls", "echo", "cat"]),
  allow(D, "root", "cat <<'EOF'\nx = (1 +\\\n  2)\n\\\nEOF\n", ["cat"]),
  // mvdan-sh reads 'x'2>&1 as a redirection of 2; dash reads the word x2 (here: touch PWN2).
  refuse(D, "root", "eval 'touch PWN'2>&1", "policy", /descriptor number glued to the word/),
  // The same before a here-document (found by scripts/shell-differential.ts, seed 23).
  refuse(D, "root", "sh -c 'touch PWN'1<<EOF\nEOF\n", "policy", /descriptor number glued to the word/),
  refuse(D, "root", "echo $1\\\n#$(touch PWN)", "policy", /a # right after a quote or an expansion/),
  refuse(D, "root", "cat <<'E'#x; touch PWN\nE\n", "policy", /a # right after a quote or an expansion/),
  // dash reads one digit as a descriptor: 10>&1 is the word 10 and >&1 (sh 10>&1 runs ./10).
  refuse(D, "root", "touch PWN 10>&1", "policy", /a descriptor number of more than one digit/),
  allow(D, "root", "echo a#b; echo c # d\nls -d /workspace 2>&1", ["echo", "ls"]),
  allow(D, "root", "echo {a,b} {1..3}", ["echo"]),
  allow(D, "root", "ls -d /workspace &> /tmp/amp.txt", ["ls"]),
  allow(D, "root", "time ls -d /workspace", ["time", "ls"]),
  // --- quoting and escapes: read as dash reads them ------------------------------------------
  allow(Q, "root", "echo ${x:-'}'}; ls -d /workspace/public", ["echo", "ls"]),
  allow(Q, "root", '"l"s -d /workspace/public', ["ls"]),
  allow(Q, "root", "\\l\\s -d /workspace", ["ls"]),
  allow(Q, "root", "l\\\ns -d /workspace", ["ls"]),
  allow(Q, "root", 'echo "$(echo ")")"; ls -d /tmp', ["echo", "ls"]),
  allow(Q, "root", "echo x #; touch PWN", ["echo"]),
  allow(Q, "root", "echo 'a;touch PWN'", ["echo"]),
  allow(Q, "root", 'echo "a\\$(touch PWN)"', ["echo"]),
  allow(Q, "root", "echo \\$\\(touch PWN\\)", ["echo"]),
  allow(Q, "root", "echo 'x\\' ; ls -d /workspace", ["echo", "ls"]),
  allow(Q, "root", 'echo "\\`touch PWN\\`"', ["echo"]),
  allow(Q, "root", "echo '`touch PWN`'", ["echo"]),
  allow(Q, "root", "x=$(cat <<EOF\n)\nEOF\n); ls -d /tmp", ["cat", "ls"]),
  refuse(Q, "root", 'echo "`touch PWN`"', "policy", /backquoted command substitution/),
  refuse(Q, "root", "echo `touch PWN`", "policy", /backquoted/),
  refuse(Q, "root", "! ! touch PWN", "policy", /cannot parse/),
  // --- parameter, arithmetic and tilde expansions --------------------------------------------
  refuse(E, "narrow", "echo ${x:-$(touch PWN)}", "capability", NO_TOUCH),
  refuse(E, "narrow", 'echo "${x#"$(touch PWN)"}"', "capability", NO_TOUCH),
  refuse(E, "narrow", "echo ${x:=$(touch PWN)}", "capability", NO_TOUCH),
  refuse(E, "root", "echo ${PATH:=/workspace/bin}; ls", "policy", SETS_PATH),
  refuse(E, "root", "echo $((PATH=5)); ls", "policy", SETS_PATH),
  refuse(E, "root", "y='PATH=5'; echo $(($y)); ls", "policy", /expansion inside \$\(\(\.\.\.\)\)/),
  refuse(E, "root", "echo $(( $(echo 1) + 1 ))", "policy", /inside \$\(\(/),
  refuse(E, "root", "$(echo touch) PWN", "policy", DYNAMIC),
  refuse(E, "root", "${CMD:-touch} PWN", "policy", DYNAMIC),
  refuse(E, "root", "export PS4='$(touch PWN)'; set -x; true", "policy", /loader-injection/),
  refuse(E, "root", "read PATH < /workspace/public/notes.txt; ls", "policy", SETS_PATH),
  refuse(
    E,
    "root",
    "read LD_PRELOAD < /workspace/public/notes.txt; export LD_PRELOAD; ls",
    "policy",
    /loader-injection/,
  ),
  refuse(E, "root", "echo $((SHELL=1)); script -qc ls /dev/null", "policy", /loader-injection/),
  allow(E, "root", "echo $((x+1)) $(($#*2)) ${#HOME}", ["echo"]),
  allow(E, "root", "cat ~/.profile", ["cat"]),
  allow(E, "root", "ls /workspace/publ*", ["ls"]),
  allow(E, "root", 'X=$(ls /workspace); echo "$X"', ["ls", "echo"]),
  allow(E, "root", "IFS=/; set -- a/b; echo $1", ["set", "echo"]),
  // --- command substitutions ----------------------------------------------------------------
  refuse(S, "narrow", "echo $(touch PWN)", "capability", NO_TOUCH),
  refuse(S, "narrow", "case $(touch PWN) in *) :;; esac", "capability", NO_TOUCH),
  refuse(S, "narrow", "for f in $(touch PWN); do :; done", "capability", NO_TOUCH),
  refuse(
    S,
    "narrow",
    "x=$(cat <<EOF\n$(touch PWN)\nEOF\n)",
    "capability",
    /no capability grants exec of "(cat|touch)/,
  ),
  refuse(S, "narrow", "echo $(echo $(echo $(touch PWN)))", "capability", NO_TOUCH),
  refuse(S, "narrow", "echo > $(touch PWN)", "capability", NO_TOUCH),
  refuse(S, "narrow", "echo $(case x in x) touch PWN;; esac)", "capability", NO_TOUCH),
  allow(S, "root", "echo $(ls /workspace/public)", ["echo", "ls"]),
  // --- wrappers ---------------------------------------------------------------------------------
  refuse(W, "root", "timeout 5 sudo touch PWN", "policy", /priv-escalation/),
  refuse(W, "narrow", "env -i sh -c 'touch PWN'", "capability", NO_TOUCH),
  refuse(W, "narrow", "nice -n5 nohup touch PWN", "capability", NO_TOUCH),
  refuse(W, "narrow", "xargs touch < /workspace/list.txt", "capability", NO_TOUCH),
  refuse(W, "narrow", "command -p touch PWN", "capability", NO_TOUCH),
  refuse(W, "narrow", "exec touch PWN", "capability", NO_TOUCH),
  refuse(W, "narrow", "stdbuf -oL ionice -c3 setsid touch PWN", "capability", NO_TOUCH),
  refuse(W, "narrow", "env -S 'touch PWN'", "capability", NO_TOUCH),
  refuse(W, "root", "env -S 'touch \"$X\"'", "policy", /env -S with quotes/),
  refuse(W, "narrow", "script -qc 'touch PWN' /dev/null", "capability", NO_TOUCH),
  refuse(W, "narrow", "flock /tmp/l -c 'touch PWN'", "capability", NO_TOUCH),
  refuse(W, "narrow", "watch -n1 'touch PWN'", "capability", NO_TOUCH),
  refuse(W, "root", "su -c 'touch PWN'", "policy", /priv-escalation/),
  refuse(W, "root", "unshare -r touch PWN", "policy", /container-escape/),
  refuse(W, "root", "chroot / touch PWN", "policy", /container-escape/),
  refuse(W, "root", "./timeout 5 sudo id", "policy", /cannot read the script/),
  refuse(W, "root", "xargs -I{} sh -c 'touch {}' < /workspace/list.txt", "policy", DYNAMIC),
  allow(W, "root", "timeout 5 ls /workspace/public", ["timeout", "ls"]),
  allow(W, "root", "env X=1 nice -n1 ls -d /workspace", ["env", "nice", "ls"]),
  allow(W, "root", "sh -c 'ls /workspace/public | wc -l'", ["sh", "ls", "wc"]),
  allow(W, "root", "xargs -a /workspace/list.txt echo", ["xargs", "echo"]),
  allow(W, "root", "find /workspace/public -name '*.txt' -exec cat {} +", ["find", "cat"]),
  allow(W, "root", "find /workspace/public -name '*.txt' -execdir cat {} \\;", ["find", "cat"]),
  allow(W, "root", "setsid -w ls -d /workspace", ["setsid", "ls"]),
  allow(W, "root", "timeout 10 sh -c 'ls /workspace/public'", ["timeout", "sh", "ls"]),
  // --- here-documents -----------------------------------------------------------------------------
  refuse(H, "root", "sh <<EOF\n$(echo touch) PWN\nEOF", "policy", /here-document/),
  refuse(
    H,
    "root",
    "sh <<EOF\necho \\$HOME; touch PWN\nEOF",
    "policy",
    /here-document with expansions or backslashes/,
  ),
  refuse(H, "root", "bash <<'EOF'\ntouch PWN\nEOF", "policy", RUNS_BASH),
  refuse(H, "narrow", "sh <<'EOF'\ntouch PWN\nEOF", "capability", NO_TOUCH),
  refuse(
    H,
    "narrow",
    "cat <<EOF\n$(touch PWN)\nEOF",
    "capability",
    /no capability grants exec of "(cat|touch)/,
  ),
  refuse(
    H,
    "root",
    "sh < /workspace/evil.sh",
    "policy",
    /reads its program from a file redirection|pipe-to-shell/,
  ),
  refuse(H, "root", "cat /workspace/evil.sh | sh", "policy", /pipe-to-shell/),
  // A here-document on another descriptor is data there: sh reads its program from the pipe.
  refuse(H, "root", "echo 'touch PWN' | sh 3<<'EOF'\n:\nEOF\n", "policy", /pipe-to-shell/),
  refuse(H, "root", "echo 'touch PWN' | sh 3<&0 <<'EOF' 0<&3\n:\nEOF\n", "policy", /pipe-to-shell/),
  // A program on stdin that moves descriptor 0: dash reads the rest of it from there.
  refuse(
    H,
    "root",
    "echo 'touch PWN' | sh 3<&0 <<'EOF'\nexec 0<&3\nEOF\n",
    "policy",
    /exec moving descriptor 0/,
  ),
  refuse(H, "root", "exec 3< /workspace/evil.sh; sh <&3", "policy", /pipe-to-shell/),
  refuse(H, "root", "exec < /workspace/evil.sh; sh", "policy", /pipe-to-shell/),
  allow(H, "root", "python3 - <<'EOF'\nprint('hi')\nEOF", ["python3"]),
  allow(H, "root", "cat <<'EOF'\n$(touch PWN)\nEOF", ["cat"]),
  allow(H, "root", "sh -s <<'EOF'\nls /workspace/public\nEOF", ["sh", "ls"]),
  allow(H, "root", ". /dev/stdin <<'EOF'\nls -d /workspace\nEOF", [".", "ls"]),
  allow(H, "root", "cat <<-'EOF'\n\tsudo is only text here\n\tEOF", ["cat"]),
  // --- eval, trap, alias, functions ------------------------------------------------------------------
  refuse(F, "narrow", "eval 'touch PWN'", "capability", NO_TOUCH),
  refuse(F, "root", 'eval "$(cat /workspace/evil.sh)"', "policy", DYNAMIC),
  refuse(F, "root", "X='touch PWN'; eval $X", "policy", DYNAMIC),
  refuse(F, "narrow", "trap 'touch PWN' EXIT", "capability", NO_TOUCH),
  refuse(F, "root", 'trap "$CMD" EXIT', "policy", DYNAMIC),
  refuse(F, "root", "alias ls='touch PWN'\nls", "policy", /alias: dash expands aliases/),
  refuse(F, "root", "unalias -a; touch PWN", "policy", /unalias/),
  refuse(
    F,
    "narrow",
    "cat() { touch PWN; }; cat x",
    "capability",
    /no capability grants exec of "(touch|cat)/,
  ),
  refuse(F, "root", "cd() { touch PWN; }; cd /tmp", "policy", /a function named cd/),
  refuse(F, "root", "sh() { touch PWN; }; sh -c ls", "policy", /a function named sh/),
  refuse(F, "root", "f() { f | f & }; f", "policy", /fork-bomb/),
  refuse(F, "root", "eval 'su''do touch PWN'", "policy", /priv-escalation/),
  allow(F, "root", "walk() { ls -d /workspace; }; walk", ["ls", "walk"]),
  allow(F, "root", "g() if true; then ls -d /tmp; fi; g", ["true", "ls", "g"]),
];
