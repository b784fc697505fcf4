// cli/commands/manifest.ts — `aido manifest validate FILE...`: the strict loader, as a
// check a person or CI can run. Exit 0 when every file is valid, 1 otherwise.

import { errorMessage } from "../../errors.js";
import { loadManifestFile } from "../../manifest/load.js";
import { formatGrant } from "../../security/grants.js";
import { type Command, jsonOption, parseCommandArgs, printJson, UsageError } from "../command.js";
import { commandSpec } from "./index.js";

export const manifestValidate: Command = {
  ...commandSpec("manifest validate"),
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(this, ctx.argv, jsonOption);
    if (positionals.length === 0) throw new UsageError(`no manifest given\nusage: ${this.usage}`);
    const results = positionals.map((file) => {
      try {
        const m = loadManifestFile(file);
        return { file, ok: true as const, name: m.name, capabilities: m.capabilities.map(formatGrant) };
      } catch (e) {
        return { file, ok: false as const, error: errorMessage(e) };
      }
    });
    if (values.json) printJson(ctx.io, results);
    else {
      for (const r of results) {
        if (r.ok) ctx.io.out(`ok       ${r.file} (${r.name}, ${r.capabilities.length} capabilities)`);
        else ctx.io.err(`invalid  ${r.error}`);
      }
    }
    return results.every((r) => r.ok) ? 0 : 1;
  },
};
