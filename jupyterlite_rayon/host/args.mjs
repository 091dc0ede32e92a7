// args.mjs: checking what callers pass before anything reaches wasm: kernel arguments against
// the export's signature, thread counts, byte counts and addresses.

// The one thread-count check: an integer from 1 to `max` (the build's jr_max_threads).
export function checkThreadCount(n, max, where) {
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new RangeError(`${where}: threads must be an integer from 1 to ${max}, got ${n}`);
  }
}

// A byte count or address of the 32-bit memory.
export function checkU32(value, where, what) {
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 32 - 1) {
    throw new RangeError(`${where}: ${what}, got ${value}`);
  }
}

// Turns JS arguments into what a wasm export takes, or throws a clear error. Without this an
// absurd length like 2**40 would silently wrap to a small i32.
export function convertArgs(kernel, sig, args) {
  if (!sig) return args;
  if (args.length !== sig.params.length) {
    throw new TypeError(`${kernel} takes ${sig.params.length} arguments ` +
      `(${sig.params.join(', ')}), got ${args.length}`);
  }
  return args.map((v, i) => {
    const t = sig.params[i];
    const where = `${kernel}: argument ${i + 1}`;
    if (t === 'i32') {
      if (typeof v === 'bigint') v = Number(v);
      if (!Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 32 - 1) {
        throw new RangeError(`${where} must be an integer that fits 32 bits ` +
          `(pointers and lengths are below 2**32), got ${String(v)}`);
      }
      return v;
    }
    if (t === 'i64') {
      if (typeof v === 'number') {
        if (!Number.isSafeInteger(v)) {
          throw new RangeError(`${where} must be an integer (a BigInt beyond 2**53), got ${v}`);
        }
        return BigInt(v);
      }
      if (typeof v !== 'bigint' || v < -(2n ** 63n) || v >= 2n ** 64n) {
        throw new RangeError(`${where} must be a 64-bit integer, got ${String(v)}`);
      }
      return v;
    }
    if (t === 'f64' || t === 'f32') {
      if (typeof v !== 'number') throw new TypeError(`${where} must be a number, got ${typeof v}`);
      return v;
    }
    return v;
  });
}
