// daemon/ui/assets.ts — the page's files: the regular files at the top of
// <package>/dist/ui/ (what scripts/build-ui.mjs writes), listed once when the UI server
// starts (config ui.assetsDir; the same folder whether Aido runs from dist/ or from
// source). A request names a file; the name is looked up in that listing and only a
// listed file is read, so no request text is ever joined onto a path (`..`, encoded
// slashes, NUL and absolute paths simply are not names in the list).

import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
};

export interface Asset {
  body: Buffer;
  type: string;
}

export class AssetTable {
  private readonly files = new Map<string, Asset>();

  constructor(readonly dir: string) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return; // not built: `/` says so
    }
    for (const name of names) {
      const type = TYPES[extname(name)];
      if (type === undefined || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) continue;
      const path = join(dir, name);
      if (!lstatSync(path).isFile()) continue;
      this.files.set(name, { body: readFileSync(path), type });
    }
  }

  get(name: string): Asset | undefined {
    return this.files.get(name);
  }

  get built(): boolean {
    return this.files.has("index.html");
  }
}
