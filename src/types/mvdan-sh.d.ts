// types/mvdan-sh.d.ts — the slice of mvdan-sh (the GopherJS build of mvdan.cc/sh/v3/syntax)
// that security/shell-ast.ts uses. Parse returns a wrapper around the Go value; the Go value
// itself (reachable as __internal_object__) is what shell-ast.ts reads, because every field
// read through the wrapper re-wraps Go structs and costs as much as parsing did.

declare module "mvdan-sh" {
  /** A Go value as GopherJS lays it out: struct fields as properties, slices as {$array, $offset, $length}. */
  export interface GoValue {
    readonly constructor: { readonly string?: string; readonly nil?: unknown };
    readonly [field: string]: unknown;
  }

  export interface ShFileWrapper {
    readonly __internal_object__: GoValue;
  }

  export interface ShParser {
    /** Parses a whole program; throws an object whose Error() names the position on a syntax error. */
    Parse(src: string, name: string): ShFileWrapper;
  }

  export interface ShSyntax {
    NewParser(...options: unknown[]): ShParser;
    /** Parser option choosing the language variant (LangBash, LangPOSIX, LangMirBSDKorn). */
    Variant(lang: unknown): unknown;
    /** Parser option keeping comments in the tree (the analyzer checks them, then drops them). */
    KeepComments(keep: boolean): unknown;
    readonly LangPOSIX: unknown;
  }

  const sh: { syntax: ShSyntax };
  export default sh;
}
