import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { constant, defaultBias, kaimingUniformDefault, normal } from './init.js';
import { Module, Param } from './module.js';

/** The standard layers, with PyTorch's parameter names, shapes and default initialisation. */

export class Linear extends Module {
  weight: Param;
  bias: Param | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = new Param(kaimingUniformDefault([outFeatures, inFeatures]));
    this.bias = opts.bias === false ? null : new Param(defaultBias(outFeatures, [outFeatures, inFeatures]));
  }
  forward(x: Tensor): Tensor {
    return E.linear(x, this.weight.value, this.bias?.value);
  }
}

export interface ConvConfig {
  stride?: number | number[];
  padding?: number | number[] | [number, number][];
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

const tuple = (v: number | number[], n: number) => (typeof v === 'number' ? Array(n).fill(v) : v);

/** Conv1d/2d/3d: weight out × in/groups × k…. */
export class ConvNd extends Module {
  weight: Param;
  bias: Param | null;
  constructor(
    dims: number,
    inChannels: number,
    outChannels: number,
    kernel: number | number[],
    readonly cfg: ConvConfig = {},
  ) {
    super();
    const shape = [outChannels, inChannels / (cfg.groups ?? 1), ...tuple(kernel, dims)];
    this.weight = new Param(kaimingUniformDefault(shape));
    this.bias = cfg.bias === false ? null : new Param(defaultBias(outChannels, shape));
  }
  forward(x: Tensor): Tensor {
    return E.conv(x, this.weight.value, this.bias?.value, this.cfg);
  }
}

export class Conv1d extends ConvNd {
  constructor(i: number, o: number, k: number | number[], c?: ConvConfig) {
    super(1, i, o, k, c);
  }
}
export class Conv2d extends ConvNd {
  constructor(i: number, o: number, k: number | number[], c?: ConvConfig) {
    super(2, i, o, k, c);
  }
}
export class Conv3d extends ConvNd {
  constructor(i: number, o: number, k: number | number[], c?: ConvConfig) {
    super(3, i, o, k, c);
  }
}

/** ConvTranspose1d/2d/3d: weight in × out/groups × k…. */
export class ConvTransposeNd extends Module {
  weight: Param;
  bias: Param | null;
  constructor(
    dims: number,
    inChannels: number,
    outChannels: number,
    kernel: number | number[],
    readonly cfg: ConvConfig & { outputPadding?: number | number[] } = {},
  ) {
    super();
    const shape = [inChannels, outChannels / (cfg.groups ?? 1), ...tuple(kernel, dims)];
    this.weight = new Param(kaimingUniformDefault(shape));
    this.bias = cfg.bias === false ? null : new Param(defaultBias(outChannels, shape));
  }
  forward(x: Tensor): Tensor {
    return E.convTranspose(x, this.weight.value, this.bias?.value, this.cfg);
  }
}

export class Embedding extends Module {
  weight: Param;
  constructor(
    readonly num: number,
    readonly dim: number,
  ) {
    super();
    this.weight = new Param(normal([num, dim]));
  }
  forward(ids: Tensor): Tensor {
    return E.embedding(this.weight.value, ids);
  }
}

export class LayerNorm extends Module {
  weight: Param | null;
  bias: Param | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    this.weight = affine ? new Param(constant([dim], 1)) : null;
    this.bias = affine ? new Param(constant([dim], 0)) : null;
  }
  forward(x: Tensor): Tensor {
    return E.layerNorm(x, this.weight?.value ?? null, this.bias?.value ?? null, this.eps);
  }
}

export class GroupNorm extends Module {
  weight: Param | null;
  bias: Param | null;
  constructor(
    readonly groups: number,
    readonly channels: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    this.weight = affine ? new Param(constant([channels], 1)) : null;
    this.bias = affine ? new Param(constant([channels], 0)) : null;
  }
  forward(x: Tensor): Tensor {
    return E.groupNorm(x, this.groups, this.weight?.value ?? null, this.bias?.value ?? null, this.eps);
  }
}

export class RMSNorm extends Module {
  weight: Param;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = new Param(constant([dim], 1));
  }
  forward(x: Tensor): Tensor {
    return E.rmsNorm(x, this.weight.value, this.eps);
  }
}
