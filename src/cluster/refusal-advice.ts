// cluster/refusal-advice.ts — what a person is to look at when Redis refused a node (its text,
// Redis's own with ours around it): the node's ACL user only for an ACL refusal (NOPERM,
// WRONGPASS, NOAUTH); a key holding another type than a node writes there (WRONGTYPE: a Redis
// writer's junk) is that key, which the text names; a read-only replica is the URL; anything
// else (no memory, a failed save) the Redis server's state. No import: `aido cluster status`
// and the watch read it without loading a Redis client (the dashboard keeps a copy:
// src/ui/web/pages/cluster.tsx refusalAdvice).

/** Refusals that an ACL user or its password explains (what "check the ACL user" is for). */
const ACL = /\b(NOPERM|WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/;

/** Whether a refusal's text (Redis's, or ours around it) is one an ACL user explains. */
export function isAclRefusal(text: string): boolean {
  return ACL.test(text);
}

/** What to look at for a refusal whose text is `why`. */
export function refusalAdvice(why: string): string {
  if (isAclRefusal(why)) return "check the ACL user in the node's Redis URL";
  if (/\bWRONGTYPE\b/.test(why))
    return "a key in Redis holds another type than the cluster writes there (a Redis writer's?): see the key named, not this node's user";
  if (/\bREADONLY\b/.test(why))
    return "the node's Redis URL names a read-only replica (after a failover?): point it at the primary";
  return "see the Redis server's own state (its memory, its disk, its log), not this node's user";
}
