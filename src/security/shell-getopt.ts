// security/shell-getopt.ts — GNU getopt_long as a program reads its own arguments, for the
// tables that say what a program writes (shell-writes.ts): permuted operands, clusters,
// values attached or in the next word, `--name=V`, any prefix of a long name, `--`.

export interface Getopt {
  /** Short letters that take a value. */
  short: string;
  /** Long names (every one the program has that could be abbreviated into a listed one), true: takes a value. */
  long: Record<string, boolean>;
}

export interface Read {
  /** Each option by its full name (a short letter stays a letter), with its value. */
  opts: { name: string; value?: string; at: number }[];
  operands: { value: string; at: number }[];
}

/**
 * getopt_long as GNU programs read their arguments: permuted, clusters, values attached
 * or in the next word, `--name=V`, and any prefix of a long name. A prefix that fits
 * several names is read as each of them (the program refuses it, but the reading must not
 * miss a write): as one taking a value if any does.
 */
export function getopt(argv: readonly string[], from: number, spec: Getopt): Read {
  const out: Read = { opts: [], operands: [] };
  const names = Object.keys(spec.long);
  for (let at = from; at < argv.length; at++) {
    const a = argv[at]!;
    if (a === "--") {
      for (let k = at + 1; k < argv.length; k++) out.operands.push({ value: argv[k]!, at: k });
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const full = name in spec.long ? [name] : names.filter((n) => n.startsWith(name));
      const takes = full.some((n) => spec.long[n]);
      const value = eq >= 0 ? a.slice(eq + 1) : takes ? argv[at + 1] : undefined;
      const valueAt = eq >= 0 ? at : takes ? at + 1 : at;
      for (const n of full.length > 0 ? full : [name]) out.opts.push({ name: n, value, at: valueAt });
      if (eq < 0 && takes) at++;
      continue;
    }
    if (!a.startsWith("-") || a === "-") {
      out.operands.push({ value: a, at });
      continue;
    }
    for (let k = 1; k < a.length; k++) {
      const l = a[k]!;
      if (!spec.short.includes(l)) {
        out.opts.push({ name: l, at });
        continue;
      }
      if (k + 1 < a.length) out.opts.push({ name: l, value: a.slice(k + 1), at });
      else out.opts.push({ name: l, value: argv[at + 1], at: ++at });
      break;
    }
  }
  return out;
}

export const has = (r: Read, ...names: string[]): boolean => r.opts.some((o) => names.includes(o.name));
export const values = (r: Read, ...names: string[]): { value: string; at: number }[] =>
  r.opts.flatMap((o) =>
    names.includes(o.name) && o.value !== undefined ? [{ value: o.value, at: o.at }] : [],
  );
export const longs = (valued: string[], flags: string[]): Record<string, boolean> =>
  Object.fromEntries([...valued.map((n) => [n, true]), ...flags.map((n) => [n, false])]);
