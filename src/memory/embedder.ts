// memory/embedder.ts — the one seam between memory and whatever turns text into vectors,
// and the local default. The local embedder needs no download, no key and no network:
// it is a deterministic feature-hashing model over words, word pairs and character
// 3-/4-grams. It is LEXICAL, not semantic: "car" and "automobile" share nothing. It finds
// memories that use the same words (or close spellings), which is what an agent usually
// looks for; configure an embeddings endpoint (memory.embedder: openai) for meaning.

export interface Embedder {
  /** Model name; together with `dimensions` it picks the vector table. */
  readonly id: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<Float32Array[]>;
}

export const LOCAL_EMBEDDER_ID = "local-hash-v1";
export const LOCAL_EMBEDDER_DIMENSIONS = 384;

/** Small words carry little meaning; they still count, at a quarter of the weight. */
const STOPWORDS = new Set(
  "a an and are as at be by for from has have in is it its of on or that the this to was were will with".split(
    " ",
  ),
);

const WEIGHT = { word: 1, stopword: 0.25, bigram: 0.7, trigram: 0.3, fourgram: 0.3 } as const;

export class LocalHashEmbedder implements Embedder {
  readonly id = LOCAL_EMBEDDER_ID;
  readonly dimensions: number;

  constructor(dimensions: number = LOCAL_EMBEDDER_DIMENSIONS) {
    if (!Number.isInteger(dimensions) || dimensions < 8 || dimensions > 8192) {
      throw new RangeError(`local embedder dimensions must be an integer in 8..8192, got ${dimensions}`);
    }
    this.dimensions = dimensions;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  embedOne(text: string): Float32Array {
    const v = new Float32Array(this.dimensions);
    const words = tokenize(text);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      this.add(v, `w:${w}`, STOPWORDS.has(w) ? WEIGHT.stopword : WEIGHT.word);
      if (i + 1 < words.length) this.add(v, `b:${w} ${words[i + 1]}`, WEIGHT.bigram);
      const padded = `#${w}#`;
      for (let j = 0; j + 3 <= padded.length; j++) this.add(v, `3:${padded.slice(j, j + 3)}`, WEIGHT.trigram);
      for (let j = 0; j + 4 <= padded.length; j++)
        this.add(v, `4:${padded.slice(j, j + 4)}`, WEIGHT.fourgram);
    }
    let norm = 0;
    for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
    if (norm === 0) {
      // No words at all (empty or only punctuation): a fixed unit vector, so that
      // distances stay defined (a zero vector has no cosine).
      v[0] = 1;
      return v;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < v.length; i++) v[i]! *= inv;
    return v;
  }

  private add(v: Float32Array, feature: string, weight: number): void {
    const h = hash32(feature);
    const index = (h & 0x7fffffff) % this.dimensions;
    v[index]! += h & 0x80000000 ? -weight : weight;
  }
}

/** Lower-cased runs of letters and digits (any script), after Unicode compatibility folding. */
export function tokenize(text: string): string[] {
  return (
    text
      .normalize("NFKC")
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so that every bit depends on every input bit. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
