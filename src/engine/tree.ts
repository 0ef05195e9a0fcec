import { Tensor } from './tensor.js';

/** Nested arrays and plain objects with tensor leaves: what traced functions take and return. */
export type Tree = Tensor | Tree[] | { [key: string]: Tree };

export interface TreeDef {
  kind: 'leaf' | 'array' | 'object';
  keys?: string[];
  children?: TreeDef[];
}

export function flatten(tree: Tree): [Tensor[], TreeDef] {
  const leaves: Tensor[] = [];
  const walk = (t: Tree): TreeDef => {
    if (t instanceof Tensor) {
      leaves.push(t);
      return { kind: 'leaf' };
    }
    if (Array.isArray(t)) return { kind: 'array', children: t.map(walk) };
    if (t && typeof t === 'object') {
      const keys = Object.keys(t);
      return { kind: 'object', keys, children: keys.map((k) => walk(t[k]!)) };
    }
    throw new Error(`expected tensors (or arrays/objects of tensors), got ${typeof t}`);
  };
  const def = walk(tree);
  return [leaves, def];
}

export function unflatten(def: TreeDef, leaves: Tensor[]): Tree {
  let i = 0;
  const build = (d: TreeDef): Tree => {
    if (d.kind === 'leaf') return leaves[i++]!;
    if (d.kind === 'array') return d.children!.map(build);
    const o: Record<string, Tree> = {};
    d.keys!.forEach((k, j) => {
      o[k] = build(d.children![j]!);
    });
    return o;
  };
  return build(def);
}

/** A string that identifies a tree's structure and its leaves' shapes and dtypes (a compile-cache key). */
export function signature(def: TreeDef, leaves: Tensor[]): string {
  const s = (d: TreeDef): string =>
    d.kind === 'leaf'
      ? 'L'
      : d.kind === 'array'
        ? `[${d.children!.map(s).join(',')}]`
        : `{${d.keys!.map((k, i) => `${k}:${s(d.children![i]!)}`).join(',')}}`;
  return `${s(def)}|${leaves.map((t) => `${t.dtype}${t.shape.join('x')}`).join(';')}`;
}
