// types/mvdan-sh.d.ts — the slice of mvdan-sh (the GopherJS build of mvdan.cc/sh/v3/syntax)
// that security/shell.ts uses. Nodes are Go structs seen from JavaScript: fields are read
// by their Go names and may be null; NodeType names the struct ("CallExpr", "Word", ...).

declare module "mvdan-sh" {
  /** A syntax node. Fields are Go field names; which ones exist depends on NodeType(node). */
  export interface ShNode {
    Pos(): { Offset(): number };
    End(): { Offset(): number };
    // biome-ignore lint/suspicious/noExplicitAny: Go struct fields differ per node type.
    readonly [field: string]: any;
  }

  export interface ShParser {
    /** Parses a whole program; throws an object whose Error() names the position on a syntax error. */
    Parse(src: string, name: string): ShNode;
  }

  export interface ShSyntax {
    NewParser(...options: unknown[]): ShParser;
    NodeType(node: ShNode): string;
    /** Calls fn for node and, while fn returns true, for each child; fn(null) closes a node. */
    Walk(node: ShNode, fn: (node: ShNode | null) => boolean): void;
    DebugPrint(node: ShNode): void;
  }

  const sh: { syntax: ShSyntax };
  export default sh;
}
