/**
 * Element types the engine knows, with their ONNX enum values and host array types. float32 is the default;
 * int64 is the index type ONNX wants (Gather, ScatterND); bool comes out of comparisons.
 */
export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type HostArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export const BYTES: Record<DType, number> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'float64';
}

/** A fresh zero-filled host array for `n` elements of `dtype`. */
export function allocate(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
      return new Uint16Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Host array of `dtype` holding `values` (numbers; int64 converted to BigInt, bool to 0/1). */
export function hostArray(dtype: DType, values: ArrayLike<number>): HostArray {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]!));
  else if (dtype === 'bool') for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  else if (dtype === 'float16') throw new Error('hostArray: float16 host arrays must be built with a float16 encoder');
  else (out as Float32Array).set(values);
  return out;
}

/** Host array values as plain numbers (int64 through Number, so exact below 2^53). */
export function toNumbers(a: HostArray): number[] {
  return a instanceof BigInt64Array ? Array.from(a, Number) : Array.from(a as ArrayLike<number>);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
