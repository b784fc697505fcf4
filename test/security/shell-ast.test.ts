// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell text, not templates
// The parser layer: mvdan-sh's POSIX variant reads what dash reads, and the token numbers
// the analyzer compares against are the ones this build of mvdan-sh produces. If a new
// mvdan-sh moves them, these fail (and the analyzer refuses what it does not recognise).

import { describe, expect, it } from "vitest";
import { isAidoError } from "../../src/errors.js";
import { onlyFields, parseShell, type ShNode, TOKEN } from "../../src/security/shell-ast.js";

const first = (code: string): ShNode => (parseShell(code).Stmts as ShNode[])[0]!;
const arg = (code: string, i = 1): ShNode => ((first(code).Cmd as ShNode).Args as ShNode[])[i]!;
const part = (code: string): ShNode => (arg(code).Parts as ShNode[])[0]!;

describe("the POSIX parser", () => {
  it("reads ((...)) as nested subshells, as dash does", () => {
    const cmd = first("((${X:-sh -c id}))").Cmd as ShNode;
    expect(cmd.type).toBe("Subshell");
    expect(((cmd.Stmts as ShNode[])[0]!.Cmd as ShNode).type).toBe("Subshell");
  });

  it("reads $'...' as a literal $ and a single-quoted string", () => {
    const parts = arg("echo $'x\\' ; id").Parts as ShNode[];
    expect(parts.map((p) => p.type)).toEqual(["Lit", "SglQuoted"]);
    expect((parseShell("echo $'x\\' ; id ; echo ' #'").Stmts as ShNode[]).length).toBe(3);
  });

  it("reads `a &> f` as a background command and a redirection", () => {
    const stmts = parseShell("a &> f").Stmts as ShNode[];
    expect(stmts).toHaveLength(2);
    expect(stmts[0]!.Background).toBe(true);
  });

  it("keeps {a,b} one literal word", () => {
    expect(part("echo {a,b}")).toMatchObject({ type: "Lit", Value: "{a,b}" });
  });

  it.each([
    ["a |& b"],
    ["a=(1 2)"],
    ["cat <(ls)"],
    ["echo ${x/a/b}"],
    ["function f { :; }"],
    ["for ((i=0;i<1;i++)); do :; done"],
    ["echo @(a|b)"],
    ["cat <<< x"],
  ])("refuses bash-only syntax at parse time: %s", (code) => {
    let error: unknown;
    try {
      parseShell(code);
    } catch (e) {
      error = e;
    }
    expect(isAidoError(error, "policy_denied")).toBe(true);
  });
});

describe("token numbers", () => {
  it("match the redirection operators", () => {
    const ops = (code: string) => (first(code).Redirs as ShNode[]).map((r) => r.Op);
    expect(ops("a > f >> g < h <> i <&3 >&2 >| j")).toEqual([
      TOKEN.rdrOut,
      TOKEN.appOut,
      TOKEN.rdrIn,
      TOKEN.rdrInOut,
      TOKEN.dplIn,
      TOKEN.dplOut,
      TOKEN.clbOut,
    ]);
    expect(ops("a <<E\nx\nE")).toEqual([TOKEN.hdoc]);
    expect(ops("a <<-E\nx\nE")).toEqual([TOKEN.dashHdoc]);
  });

  it("match the list and pipe operators and ;;", () => {
    expect((first("a && b").Cmd as ShNode).Op).toBe(TOKEN.andStmt);
    expect((first("a || b").Cmd as ShNode).Op).toBe(TOKEN.orStmt);
    expect((first("a | b").Cmd as ShNode).Op).toBe(TOKEN.pipe);
    expect(((first("case x in a) b;; esac").Cmd as ShNode).Items as ShNode[])[0]!.Op).toBe(
      TOKEN.dblSemicolon,
    );
  });

  it("match the parameter expansion operators", () => {
    const op = (code: string) => (part(code).Exp as ShNode).Op;
    expect(op("echo ${x-a}")).toBe(TOKEN.minus);
    expect(op("echo ${x:-a}")).toBe(TOKEN.colMinus);
    expect(op("echo ${x+a}")).toBe(TOKEN.plus);
    expect(op("echo ${x:+a}")).toBe(TOKEN.colPlus);
    expect(op("echo ${x=a}")).toBe(TOKEN.assgn);
    expect(op("echo ${x:=a}")).toBe(TOKEN.colAssgn);
    expect(op("echo ${x?a}")).toBe(TOKEN.quest);
    expect(op("echo ${x:?a}")).toBe(TOKEN.colQuest);
    expect(op("echo ${x#a}")).toBe(TOKEN.hash);
    expect(op("echo ${x##a}")).toBe(TOKEN.dblHash);
    expect(op("echo ${x%a}")).toBe(TOKEN.perc);
    expect(op("echo ${x%%a}")).toBe(TOKEN.dblPerc);
  });

  it("match the arithmetic operators", () => {
    const op = (code: string) => (part(`echo $((${code}))`).X as ShNode).Op;
    expect(op("a=1")).toBe(TOKEN.assgn);
    expect(op("a+=1")).toBe(TOKEN.addAssgn);
    expect(op("a>>=1")).toBe(TOKEN.shrAssgn);
    expect(op("a+b")).toBe(TOKEN.plus);
    expect(op("a*b")).toBe(TOKEN.mul);
    expect(op("a/b")).toBe(TOKEN.slash);
    expect(op("a<<b")).toBe(TOKEN.hdoc);
    expect(op("a&&b")).toBe(TOKEN.andStmt);
    expect(op("a&b")).toBe(TOKEN.and);
    expect(op("a^b")).toBe(TOKEN.caret);
    expect(op("a,b")).toBe(TOKEN.comma);
    expect(op("!a")).toBe(TOKEN.not);
    expect(op("~a")).toBe(TOKEN.bitNegation);
    expect(op("a++")).toBe(TOKEN.inc);
  });
});

describe("onlyFields", () => {
  it("refuses a node with a set field nobody reads, naming it", () => {
    expect(() => onlyFields({ type: "Stmt", Cmd: null, Coprocess: true }, ["Cmd"], "a statement")).toThrow(
      /cannot judge command: a statement with Coprocess/,
    );
    expect(() =>
      onlyFields({ type: "Stmt", Cmd: null, Comments: [null] }, ["Cmd"], "a statement"),
    ).not.toThrow();
  });
});
