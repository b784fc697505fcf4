// Token budgets: integer accounts, atomic reservations, carve-outs, refunds, resets.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/db/database.js";
import { type AidoError, isAidoError } from "../../src/errors.js";
import { AuditLog } from "../../src/security/audit.js";
import { BudgetLedger, roomOf } from "../../src/security/budget.js";
import { makeTempHome, type TempHome } from "../support/home.js";
import { makeSigner } from "./signer-fixture.js";

let home: TempHome;
let db: Db;
let clock: number;
let ledger: BudgetLedger;

function refusal(fn: () => unknown): AidoError {
  try {
    fn();
  } catch (e) {
    if (isAidoError(e)) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

beforeEach(() => {
  home = makeTempHome();
  db = openDatabase(home.config.dbPath);
  clock = Date.UTC(2025, 0, 1);
  ledger = new BudgetLedger({ db, now: () => clock });
});

afterEach(() => {
  db.close();
  home.cleanup();
});

describe("reserve, commit, refund", () => {
  it("reserves before the call and commits the real usage after", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1000 });
    const r = ledger.reserve("goal:g1", 300);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 0, reserved: 300 });
    ledger.commit(r, 120);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 120, reserved: 0 });
  });

  it("refuses a reservation larger than the room left, with the numbers to act on", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1000 });
    ledger.commit(ledger.reserve("goal:g1", 700), 700);
    ledger.reserve("goal:g1", 200);
    const e = refusal(() => ledger.reserve("goal:g1", 101));
    expect(e.code).toBe("budget_exceeded");
    expect(e.details).toMatchObject({
      account: "goal:g1",
      limit: 1000,
      spent: 700,
      reserved: 200,
      requested: 101,
    });
    expect(ledger.reserve("goal:g1", 100).amount).toBe(100);
  });

  it("records usage above the estimate, and the next reservation then fails", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1000 });
    ledger.commit(ledger.reserve("goal:g1", 100), 1100);
    expect(ledger.get("goal:g1").spent).toBe(1100);
    expect(refusal(() => ledger.reserve("goal:g1", 1)).code).toBe("budget_exceeded");
  });

  it("gives a failed call's reservation back", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 500 });
    const r = ledger.reserve("goal:g1", 500);
    expect(refusal(() => ledger.reserve("goal:g1", 1)).code).toBe("budget_exceeded");
    ledger.refund(r);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 0, reserved: 0 });
    expect(ledger.reserve("goal:g1", 500).amount).toBe(500);
  });

  it("settles a reservation only once", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 500 });
    const r = ledger.reserve("goal:g1", 50);
    ledger.commit(r, 50);
    expect(() => ledger.commit(r, 50)).toThrow(/reservation \d+ on goal:g1 is not open/);
    expect(() => ledger.refund(r)).toThrow(/is not open/);
    expect(() => ledger.refund({ ...r, id: r.id + 1000 })).toThrow(/is not open/);
    expect(ledger.get("goal:g1").spent).toBe(50);
  });

  it("takes integers of tokens only", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 500 });
    expect(() => ledger.reserve("goal:g1", 1.5)).toThrow(
      /estimate must be a non-negative integer of tokens, got 1.5/,
    );
    expect(() => ledger.reserve("goal:g1", -1)).toThrow(/estimate/);
    expect(() => ledger.open("x", { goalId: "g2", limit: Number.POSITIVE_INFINITY })).toThrow(/limit/);
    expect(() => ledger.reserve("nope", 1)).toThrow(/no budget account nope/);
  });

  it("audits a refusal as budget.exceeded when given an audit log", () => {
    const audit = new AuditLog({ db, signer: makeSigner() });
    const audited = new BudgetLedger({ db, audit, now: () => clock });
    audited.open("goal:g9", { goalId: "g9", limit: 10 });
    expect(() => audited.reserve("goal:g9", 11)).toThrow(/budget of goal:g9 exceeded/);
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "budget.exceeded",
      goal_id: "g9",
      payload: { account: "goal:g9", limit: 10, spent: 0, reserved: 0, requested: 11 },
    });
  });
});

describe("a commit past its reservation (a provider that broke the call's bound)", () => {
  it("is charged everywhere and audited as budget.overspent in the same transaction", () => {
    const audit = new AuditLog({ db, signer: makeSigner() });
    const audited = new BudgetLedger({ db, audit, now: () => clock });
    audited.open("goal:g8", { goalId: "g8", limit: 1000 });
    audited.open("agent:x", { goalId: "g8", parentId: "goal:g8", limit: 300 });
    audited.commit(audited.reserve("agent:x", 200), 650);
    expect(audited.get("goal:g8")).toMatchObject({ spent: 650, reserved: 0 });
    expect(audit.tail(1)[0]).toMatchObject({
      kind: "budget.overspent",
      goal_id: "g8",
      payload: { account: "agent:x", reserved: 200, actual: 650, overspent: 450 },
    });
    audited.commit(audited.reserve("goal:g8", 1), 1);
    expect(audit.tail(10).filter((e) => e.kind === "budget.overspent")).toHaveLength(1);
  });
});

describe("carve-outs and the goal cap", () => {
  beforeEach(() => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1000 });
  });

  it("carves a child's budget out of its parent's remaining budget", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 600 });
    expect(roomOf(ledger.get("goal:g1"))).toBe(400);
    const e = refusal(() => ledger.open("agent:b", { goalId: "g1", parentId: "goal:g1", limit: 401 }));
    expect(e.code).toBe("budget_exceeded");
    expect(e.details).toMatchObject({ account: "goal:g1", requested: 401 });
    expect(() => ledger.reserve("goal:g1", 401)).toThrow(/budget of goal:g1 exceeded/);
  });

  it("keeps a child inside its carve-out", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 100 });
    ledger.reserve("agent:a", 100);
    expect(refusal(() => ledger.reserve("agent:a", 1)).details).toMatchObject({ account: "agent:a" });
  });

  it("returns a closed child's unspent carve-out and charges the parent what it spent", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 600 });
    ledger.open("agent:a1", { goalId: "g1", parentId: "agent:a", limit: 200 });
    ledger.commit(ledger.reserve("agent:a1", 150), 150);
    ledger.commit(ledger.reserve("agent:a", 100), 100);
    ledger.reserve("agent:a", 50); // left open: refunded on close
    ledger.close("agent:a");
    expect(ledger.get("agent:a1").closed).toBe(1);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 250, reserved: 0, carved: 0 });
    expect(() => ledger.reserve("agent:a", 1)).toThrow(/agent:a is closed/);
  });

  it("charges what a child spends to every ancestor at once, without moving their room inside the carve-out", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 500 });
    ledger.open("agent:b", { goalId: "g1", parentId: "agent:a", limit: 100 });
    const r = ledger.reserve("agent:b", 60);
    expect(ledger.get("agent:a")).toMatchObject({ reserved: 60, carved: 40 });
    expect(ledger.get("goal:g1")).toMatchObject({ reserved: 60, carved: 440 });
    ledger.commit(r, 50);
    expect(ledger.get("agent:b")).toMatchObject({ spent: 50, total_spent: 50 });
    expect(ledger.get("agent:a")).toMatchObject({ spent: 50, reserved: 0, carved: 50 });
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 50, reserved: 0, carved: 450 });
    expect(roomOf(ledger.get("goal:g1"))).toBe(500);
    expect(roomOf(ledger.get("agent:a"))).toBe(400);
  });

  it("charges usage beyond a child's limit to every ancestor's room", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 500 });
    ledger.open("agent:b", { goalId: "g1", parentId: "agent:a", limit: 100 });
    ledger.commit(ledger.reserve("agent:b", 100), 700);
    expect(ledger.get("agent:a")).toMatchObject({ spent: 700, carved: 0 });
    expect(roomOf(ledger.get("agent:a"))).toBe(-200);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 700, carved: 0 });
    expect(roomOf(ledger.get("goal:g1"))).toBe(300);
    ledger.close("agent:a");
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 700, carved: 0, reserved: 0 });
  });

  it("blocks every account of a goal whose cap an overrun used up", () => {
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 500 });
    ledger.open("agent:b", { goalId: "g1", parentId: "goal:g1", limit: 500 });
    ledger.commit(ledger.reserve("agent:a", 10), 600); // 100 over a's limit lands on the goal
    const e = refusal(() => ledger.reserve("agent:b", 1));
    expect(e.details).toMatchObject({ account: "goal:g1" });
  });

  it("allows one root account per goal, and children only within the same goal", () => {
    expect(() => ledger.open("goal:g1-again", { goalId: "g1", limit: 10 })).toThrow(
      /goal g1 already has a root/,
    );
    expect(() => ledger.open("agent:x", { goalId: "g2", parentId: "goal:g1", limit: 10 })).toThrow(
      /for goal g2 but its parent goal:g1 is for goal g1/,
    );
    expect(() => ledger.open("goal:g1", { goalId: "g3", limit: 10 })).toThrow(/already exists/);
  });
});

describe("reset period", () => {
  it("resets spent at the first reservation after each period ends", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 100, periodSeconds: 3600 });
    ledger.commit(ledger.reserve("goal:g1", 100), 100);
    clock += 3599_000;
    expect(refusal(() => ledger.reserve("goal:g1", 1)).code).toBe("budget_exceeded");
    expect(ledger.available("goal:g1")).toBe(0);
    clock += 1000;
    expect(ledger.available("goal:g1")).toBe(100);
    ledger.reserve("goal:g1", 60);
    expect(ledger.get("goal:g1")).toMatchObject({
      spent: 0,
      total_spent: 100,
      reserved: 60,
      period_start: Date.UTC(2025, 0, 1, 1),
    });
    clock += 5 * 3600_000 + 7;
    ledger.reserve("goal:g1", 40);
    expect(ledger.get("goal:g1").period_start).toBe(Date.UTC(2025, 0, 1, 6));
  });

  // The attack of issue 11: a goal capped at 30,000 tokens, a child of 10,000 that resets
  // every 2 s and spends ~9,000 a call. Each reset restores the child's own limit only:
  // past its carve-out it spends the goal's room, and the goal refuses once that is gone.
  it("never lets a child's reset period spend past the goal cap", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 30_000 });
    ledger.open("agent:c", { goalId: "g1", parentId: "goal:g1", limit: 10_000, periodSeconds: 2 });
    let spent = 0;
    let calls = 0;
    let e: AidoError | undefined;
    for (; calls < 20; calls++) {
      let r: ReturnType<BudgetLedger["reserve"]>;
      try {
        r = ledger.reserve("agent:c", 4_500);
      } catch (err) {
        e = err as AidoError;
        break;
      }
      ledger.commit(r, 4_000);
      spent += 4_000;
      clock += 2_000;
    }
    expect(e?.code).toBe("budget_exceeded");
    expect(e?.details).toMatchObject({ account: "goal:g1" });
    expect(calls).toBe(7); // 28,000 spent; the 8th call's 4,500 do not fit in the 2,000 left
    expect(ledger.get("goal:g1")).toMatchObject({ spent, total_spent: spent, reserved: 0, carved: 0 });
    expect(ledger.get("agent:c").total_spent).toBe(spent);
    ledger.close("agent:c");
    expect(ledger.get("goal:g1")).toMatchObject({ spent: 28_000, carved: 0 });
  });

  it("keeps an ancestor's spending through its child's resets, and frees it only at its own", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1_000_000 });
    ledger.open("agent:p", { goalId: "g1", parentId: "goal:g1", limit: 1000, periodSeconds: 60 });
    ledger.open("agent:c", { goalId: "g1", parentId: "agent:p", limit: 400, periodSeconds: 1 });
    ledger.commit(ledger.reserve("agent:c", 400), 400);
    clock += 1000;
    ledger.commit(ledger.reserve("agent:c", 400), 400);
    expect(ledger.get("agent:p")).toMatchObject({ spent: 800, carved: 0 });
    clock += 1000;
    expect(ledger.available("agent:c")).toBe(200); // its own 400 again, but the parent has 200 left
    expect(refusal(() => ledger.reserve("agent:c", 201)).details).toMatchObject({ account: "agent:p" });
    clock += 58_000;
    expect(ledger.available("agent:c")).toBe(400);
    expect(ledger.get("goal:g1").spent).toBe(800);
  });
});

describe("available", () => {
  it("is the largest reservation reserve would accept, at every level", () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 1000 });
    ledger.open("agent:a", { goalId: "g1", parentId: "goal:g1", limit: 300 });
    expect(ledger.available("agent:a")).toBe(300);
    expect(ledger.available("goal:g1")).toBe(700);
    ledger.commit(ledger.reserve("goal:g1", 650), 650);
    expect(ledger.available("agent:a")).toBe(300); // the carve-out is the child's
    ledger.commit(ledger.reserve("agent:a", 10), 400); // 100 beyond its carve-out
    expect(roomOf(ledger.get("goal:g1"))).toBe(-50);
    expect(ledger.available("goal:g1")).toBe(0);
    expect(ledger.available("agent:a")).toBe(0);
    ledger.close("agent:a");
    expect(ledger.available("agent:a")).toBe(0);
  });
});

describe("concurrency", () => {
  it("never overspends with reservers interleaved in one process", async () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 5000 });
    let committed = 0;
    const worker = async () => {
      for (let i = 0; i < 200; i++) {
        try {
          const r = ledger.reserve("goal:g1", 7 + (i % 13));
          await new Promise((res) => setTimeout(res, i % 3));
          if (i % 5 === 0) ledger.refund(r);
          else {
            ledger.commit(r, r.amount);
            committed += r.amount;
          }
        } catch (e) {
          if (!isAidoError(e, "budget_exceeded")) throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(committed).toBeLessThanOrEqual(5000);
    expect(ledger.get("goal:g1")).toMatchObject({ spent: committed, reserved: 0 });
  });

  it("never overspends with reservers in several processes on the same database", async () => {
    ledger.open("goal:g1", { goalId: "g1", limit: 20_000 });
    ledger.open("agent:shared", { goalId: "g1", parentId: "goal:g1", limit: 3000 });
    const spender = fileURLToPath(new URL("./fixtures/budget-spender.ts", import.meta.url));
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", spender, home.config.dbPath, "agent:shared"],
          {
            stdio: ["ignore", "pipe", "inherit"],
          },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        child.on("error", reject);
        child.on("exit", (code) =>
          code === 0 ? resolve(Number(out.trim())) : reject(new Error(`spender exited ${code}`)),
        );
      });
    const totals = await Promise.all([run(), run(), run()]);
    const sum = totals.reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThanOrEqual(3000);
    expect(ledger.get("agent:shared")).toMatchObject({ spent: sum, reserved: 0 });
    expect(sum).toBeGreaterThan(3000 - 120);
  });

  it("never lets children with reset periods in several processes spend past their parent", async () => {
    const realLedger = new BudgetLedger({ db });
    realLedger.open("goal:g2", { goalId: "g2", limit: 6000 });
    for (const c of ["agent:p1", "agent:p2", "agent:p3"])
      realLedger.open(c, { goalId: "g2", parentId: "goal:g2", limit: 1000, periodSeconds: 1 });
    const spender = fileURLToPath(new URL("./fixtures/budget-spender.ts", import.meta.url));
    const run = (account: string) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", spender, home.config.dbPath, account, "3500"],
          { stdio: ["ignore", "pipe", "inherit"] },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        child.on("error", reject);
        child.on("exit", (code) =>
          code === 0 ? resolve(Number(out.trim())) : reject(new Error(`spender exited ${code}`)),
        );
      });
    const totals = await Promise.all(["agent:p1", "agent:p2", "agent:p3"].map(run));
    const sum = totals.reduce((a, b) => a + b, 0);
    // Three children of 1000 a second for 3.5 s could spend 10,500; the goal holds 6000.
    expect(sum).toBeLessThanOrEqual(6000);
    expect(sum).toBeGreaterThan(6000 - 3 * 40);
    expect(Math.max(...totals)).toBeGreaterThan(1000); // resets did let a child past its own limit
    expect(realLedger.get("goal:g2")).toMatchObject({ spent: sum, total_spent: sum, reserved: 0 });
  });
});

describe("the ledger's sums under a random sequence of operations", () => {
  // A model kept beside the ledger: every account's spent and reserved are its subtree's,
  // every parent's carved is the undrawn part of its open children's carve-outs. Catches a
  // charge that forgets a level or a carve-out that drifts, whatever the order of operations.
  it("keeps spent, reserved and carved equal to what the operations imply", () => {
    let seed = 0x2f6e2b1;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    interface Model {
      id: string;
      parent: string | null;
      limit: number;
      open: boolean;
      spentSelf: number;
    }
    const accounts = new Map<string, Model>();
    const reservations: { r: ReturnType<BudgetLedger["reserve"]>; open: boolean }[] = [];
    ledger.open("goal:r", { goalId: "r", limit: 1_000_000 });
    accounts.set("goal:r", { id: "goal:r", parent: null, limit: 1_000_000, open: true, spentSelf: 0 });
    const subtree = (id: string): Model[] => [
      accounts.get(id) as Model,
      ...[...accounts.values()].filter((a) => a.parent === id).flatMap((a) => subtree(a.id)),
    ];
    let refused = 0;
    for (let step = 0; step < 600; step++) {
      const open = [...accounts.values()].filter((a) => a.open);
      const pick = open[rand(open.length)] as Model;
      const op = rand(10);
      try {
        if (op < 2 && accounts.size < 40) {
          const id = `agent:${step}`;
          const limit = 1 + rand(40_000);
          ledger.open(id, { goalId: "r", limit, parentId: pick.id });
          accounts.set(id, { id, parent: pick.id, limit, open: true, spentSelf: 0 });
        } else if (op < 6) {
          reservations.push({ r: ledger.reserve(pick.id, rand(3_000)), open: true });
        } else if (op < 9) {
          const live = reservations.filter((x) => x.open && accounts.get(x.r.accountId)?.open);
          const x = live[rand(live.length)];
          if (!x) continue;
          x.open = false;
          if (op === 8) ledger.refund(x.r);
          else {
            // Now and then a provider breaks the bound and spends more than was reserved.
            const actual = rand(4) === 0 ? x.r.amount + rand(500) : rand(x.r.amount + 1);
            ledger.commit(x.r, actual);
            (accounts.get(x.r.accountId) as Model).spentSelf += actual;
          }
        } else if (pick.parent !== null) {
          ledger.close(pick.id);
          for (const a of subtree(pick.id)) a.open = false;
          for (const x of reservations) if (!accounts.get(x.r.accountId)?.open) x.open = false;
        }
      } catch (e) {
        if (!isAidoError(e)) throw e;
        refused++;
      }
      for (const a of accounts.values()) {
        const row = ledger.get(a.id);
        const tree = subtree(a.id);
        const spent = tree.reduce((n, m) => n + m.spentSelf, 0);
        const reserved = reservations
          .filter((x) => x.open && tree.some((m) => m.id === x.r.accountId))
          .reduce((n, x) => n + x.r.amount, 0);
        expect({ id: a.id, spent: row.spent, total: row.total_spent, reserved: row.reserved }).toEqual({
          id: a.id,
          spent,
          total: spent,
          reserved,
        });
        if (!a.open) continue;
        const carved = [...accounts.values()]
          .filter((c) => c.parent === a.id && c.open)
          .map((c) => ledger.get(c.id))
          .reduce((n, c) => n + Math.max(0, c.limit_tokens - c.total_spent - c.reserved), 0);
        expect({ id: a.id, carved: row.carved }).toEqual({ id: a.id, carved });
      }
    }
    // The sequence exercised refusals as well as successes.
    expect(refused).toBeGreaterThan(5);
    expect(refused).toBeLessThan(400);
  });
});
