// daemon/ui/download-tickets.ts — one-time addresses the dashboard's page saves a goal's
// output file from. A link to /api/goals/…/outputs/… cannot carry the page key (a header),
// and fetching the file into a blob holds all of it in the tab's memory; so the page asks
// for a ticket (POST /api/downloads, page key checked like any API call) and lets the
// browser download /download/<ticket> itself, streamed to disk. A ticket is 32 random
// bytes, names one goal's one output file, is spent by its first GET and lapses after a
// minute (a HEAD, which download managers and some browsers send first, leaves it open).
// Its address still needs the session cookie (guard.ts isPageFile): a ticket that leaks
// (a proxy's log, the browser's download list) opens nothing without it, and a
// stolen cookie opens nothing without a ticket only the page can get.

import { randomBytes } from "node:crypto";

/** How long a ticket stays open: the page uses it at once. */
const TICKET_TTL_MS = 60_000;
/** Open tickets at most; the oldest goes first (a page that asks and never downloads). */
const MAX_OPEN = 64;
/** A ticket as it appears in its address: 43 base64url characters. */
const TICKET = /^[A-Za-z0-9_-]{43}$/;

export interface Download {
  goalId: string;
  /** The output file's name as the outputs listing gives it. */
  name: string;
}

export class DownloadTickets {
  /** Open tickets, oldest first (a Map keeps insertion order). */
  private readonly open = new Map<string, Download & { expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new ticket for `download`, usable once within TICKET_TTL_MS. */
  issue(download: Download): string {
    this.dropExpired();
    while (this.open.size >= MAX_OPEN) {
      const oldest = this.open.keys().next().value as string;
      this.open.delete(oldest);
    }
    const ticket = randomBytes(32).toString("base64url");
    this.open.set(ticket, { ...download, expiresAt: this.now() + TICKET_TTL_MS });
    return ticket;
  }

  /**
   * The download `ticket` opens, without spending it (a HEAD, a retry after a 503);
   * undefined for one unknown, spent or lapsed.
   */
  peek(ticket: string): Download | undefined {
    const d = TICKET.test(ticket) ? this.open.get(ticket) : undefined;
    return d !== undefined && d.expiresAt > this.now() ? { goalId: d.goalId, name: d.name } : undefined;
  }

  /** The download `ticket` opens, spending it; undefined for one unknown, spent or lapsed. */
  take(ticket: string): Download | undefined {
    if (!TICKET.test(ticket)) return undefined;
    const d = this.open.get(ticket);
    if (d === undefined) return undefined;
    this.open.delete(ticket);
    return d.expiresAt > this.now() ? { goalId: d.goalId, name: d.name } : undefined;
  }

  /** Every open ticket is void (a new token: the old one's tickets die with its cookies). */
  clear(): void {
    this.open.clear();
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [t, d] of this.open) if (d.expiresAt <= now) this.open.delete(t);
  }
}
