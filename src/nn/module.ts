import { concrete, type Tensor } from '../engine/core.js';
import { VtokError } from '../util/errors.js';

/**
 * Modules in PyTorch's shape: a tree of named submodules and parameters, with dotted names
 * ("encoder.down.0.block.1.conv1.weight") so reference state_dicts load by name. Children are found from the
 * object's own fields in declaration order (a field holding a Module, a Param, or an array of Modules — the
 * ModuleList case, named by index). Values are tensors; while a training step is traced they are swapped for
 * the step's symbolic inputs (see bindParams).
 */
export class Param {
  constructor(
    public value: Tensor,
    readonly trainable = true,
  ) {}
  get shape(): readonly number[] {
    return this.value.shape;
  }
}

/** A persistent non-trainable tensor (PyTorch's registered buffer). */
export const buffer = (t: Tensor): Param => new Param(t, false);

export abstract class Module {
  training = true;

  /** Children, in declaration order. */
  children(): [string, Module | Param][] {
    const out: [string, Module | Param][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module || v instanceof Param) out.push([k, v]);
      else if (Array.isArray(v) && v.length && v.every((m) => m instanceof Module || m instanceof Param)) {
        v.forEach((m, i) => {
          out.push([`${k}.${i}`, m]);
        });
      }
    }
    return out;
  }

  /** Every parameter and buffer, with its dotted name. */
  namedParams(prefix = ''): [string, Param][] {
    const out: [string, Param][] = [];
    for (const [k, v] of this.children()) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (v instanceof Param) out.push([name, v]);
      else out.push(...v.namedParams(name));
    }
    return out;
  }

  trainableParams(): [string, Param][] {
    return this.namedParams().filter(([, p]) => p.trainable);
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, v] of this.children())
      if (v instanceof Module) out.push(...v.namedModules(prefix ? `${prefix}.${k}` : k));
    return out;
  }

  /** Number of trainable parameter values. */
  parameterCount(): number {
    return this.trainableParams().reduce((n, [, p]) => n + p.value.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParams().map(([n, p]) => [n, p.value]));
  }

  /**
   * Loads tensors by name. Every problem is collected and reported at once: missing keys, unexpected keys, and
   * shape or dtype mismatches (with both shapes). strict=false tolerates missing/unexpected, never mismatches.
   */
  loadStateDict(
    state: Map<string, Tensor>,
    opts: { strict?: boolean; source?: string } = {},
  ): { missing: string[]; unexpected: string[] } {
    const own = new Map(this.namedParams());
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of state) {
      const p = own.get(k);
      if (!p) continue;
      if (p.value.shape.join() !== t.shape.join() || p.value.dtype !== t.dtype) {
        mismatched.push(
          `${k}: checkpoint has ${t.dtype}[${t.shape}], model expects ${p.value.dtype}[${p.value.shape}]`,
        );
      }
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`mis-shaped: ${mismatched.join('; ')}`);
    if (opts.strict !== false && missing.length) problems.push(`missing ${missing.length} key(s): ${list(missing)}`);
    if (opts.strict !== false && unexpected.length)
      problems.push(`unexpected ${unexpected.length} key(s): ${list(unexpected)}`);
    if (problems.length) throw new VtokError(`cannot load weights: ${problems.join('; ')}`, opts.source);
    for (const [k, t] of state) {
      const p = own.get(k);
      if (p) p.value = concrete(t.data, t.shape, t.dtype);
    }
    return { missing, unexpected };
  }
}

function list(keys: string[]): string {
  return keys.length > 8 ? `${keys.slice(0, 8).join(', ')}, … (${keys.length - 8} more)` : keys.join(', ');
}

/** Runs `fn` with the given parameters' values replaced (e.g. by symbolic step inputs), restoring them after. */
export function bindParams<T>(params: Param[], values: Tensor[], fn: () => T): T {
  const saved = params.map((p) => p.value);
  params.forEach((p, i) => {
    p.value = values[i]!;
  });
  try {
    return fn();
  } finally {
    params.forEach((p, i) => {
      p.value = saved[i]!;
    });
  }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }
  override children(): [string, Module | Param][] {
    return this.layers.map((m, i) => [String(i), m]);
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = (l as unknown as { forward(t: Tensor): Tensor }).forward(y);
    return y;
  }
}
