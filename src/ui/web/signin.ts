// ui/web/signin.ts — the script of the page a sign-in link answers with (daemon/ui/server.ts
// signInVisit): it keeps the page key that page carries in this origin's localStorage,
// where only the dashboard's own origin (scheme, host and port) can read it, then replaces
// the page with the dashboard (the hash route kept), so the spent code leaves the address
// bar and the tab's history. api.ts sends the key with every API request.

import { PAGE_KEY_STORAGE } from "./api.js";

/** The sign-in page's meta element carrying the key (PAGE_KEY_META in daemon/ui/server.ts). */
const key = document.querySelector<HTMLMetaElement>('meta[name="aido-page-key"]')?.content;
if (key) localStorage.setItem(PAGE_KEY_STORAGE, key);
location.replace(`/${location.hash}`);
