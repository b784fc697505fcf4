// cluster/cancel-marks.ts — the owner's marks of goals a cancel is ending before they run
// here or are given back (ClusterGoalRunner.cancel). A mark is set before the cancel's Redis
// write and holds its outcome: true once the write ended the goal, false when it could not
// (the mark is then gone, and the goal starts or is given back as if never asked). Only a
// take of the goal (this node's worker handling its job, from before the claim to the end)
// reads a mark, before it submits the goal here or gives it back; so a mark that ended its
// goal stays while a take of it is under way and goes once none is. A goal no take here
// reaches (one a node claimed before it restarted) leaves no mark behind, and a cancel that
// comes between a claim and the local start is still read by that take.

export class CancelMarks {
  private readonly marks = new Map<string, Promise<boolean>>();
  /** Takes of each goal under way, from before the claim to their end. */
  private readonly takes = new Map<string, number>();

  /** One take of the goal: while one is under way its mark stays; after the last, it goes. */
  async take<T>(goalId: string, fn: () => Promise<T>): Promise<T> {
    this.takes.set(goalId, (this.takes.get(goalId) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const left = (this.takes.get(goalId) ?? 1) - 1;
      if (left > 0) this.takes.set(goalId, left);
      else this.takes.delete(goalId);
      const mark = this.marks.get(goalId);
      if (mark) void mark.then(() => this.dropUnread(goalId, mark));
    }
  }

  /**
   * A cancel begins ending the goal: the mark is set now (a take meanwhile waits for it), and
   * the returned function settles it with whether the cancel's write ended the goal.
   */
  begin(goalId: string): (took: boolean) => void {
    let resolve: (took: boolean) => void = () => {};
    const mark = new Promise<boolean>((r) => {
      resolve = r;
    });
    this.marks.set(goalId, mark);
    return (took) => {
      if (!took && this.marks.get(goalId) === mark) this.marks.delete(goalId);
      resolve(took);
      if (took) this.dropUnread(goalId, mark);
    };
  }

  /** Whether a cancel ended the goal (one still being written is waited for). */
  async took(goalId: string): Promise<boolean> {
    for (let mark = this.marks.get(goalId); mark; mark = this.marks.get(goalId)) {
      if (await mark) return true;
    }
    return false;
  }

  /** A take read the mark and dropped the goal: it is done with. */
  forget(goalId: string): void {
    this.marks.delete(goalId);
  }

  /** A settled mark no take of its goal is under way to read: nothing will read it. */
  private dropUnread(goalId: string, mark: Promise<boolean>): void {
    if (!this.takes.has(goalId) && this.marks.get(goalId) === mark) this.marks.delete(goalId);
  }
}
