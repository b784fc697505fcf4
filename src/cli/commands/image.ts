// cli/commands/image.ts — `aido image build`: builds (or finds up to date) the sandbox
// image every goal container runs, through sandbox/image.ts. Every step of a long build
// is printed as it happens (to stderr when --json keeps stdout for the result).

import { errorMessage } from "../../errors.js";
import { ensureImage } from "../../sandbox/image.js";
import { type Command, jsonOption, parseCommandArgs, printJson } from "../command.js";
import { commandSpec } from "./index.js";

export const imageBuild: Command = {
  ...commandSpec("image build"),
  async run(ctx) {
    const { values } = parseCommandArgs(
      this,
      ctx.argv,
      {
        ...jsonOption,
        force: { type: "boolean" },
        offline: { type: "boolean" },
        mirror: { type: "string" },
      },
      false,
    );
    const progress = (line: string) => (values.json ? ctx.io.err(line) : ctx.io.out(line));
    const config = await ctx.config();
    progress(`image ${config.sandbox.image}: checking`);
    try {
      const r = await ensureImage(config, {
        onProgress: (m) => progress(`  ${m}`),
        ...(values.force ? { force: true } : {}),
        ...(values.offline ? { offline: true } : {}),
        ...(values.mirror ? { mirror: values.mirror } : {}),
      });
      if (values.json) printJson(ctx.io, r);
      else
        ctx.io.out(
          r.source === "cached"
            ? `image ${r.image} is up to date`
            : `image ${r.image} built (base: ${r.source}) in ${(r.durationMs / 1000).toFixed(1)} s`,
        );
      return 0;
    } catch (e) {
      ctx.io.err(`aido image build: ${errorMessage(e)}`);
      return 1;
    }
  },
};
