// Shared helpers of the node tests: the built pool modules, pools, arrays in pool memory, and a
// tiny wasm assembler for hand-made foreign modules (traps, extra modules).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DTYPES as ABI_DTYPES } from '../../jupyterlite_rayon/host/abi.mjs';
import { createPool } from '../../jupyterlite_rayon/host/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// Absolute paths as JS string literals, for code run in another process or worker.
export const HOST_PATH = JSON.stringify(path.join(ROOT, 'jupyterlite_rayon', 'host', 'index.mjs'));
export const HELPERS_PATH = JSON.stringify(fileURLToPath(import.meta.url));

// Runs an ES module snippet in a fresh Node process with a deadline, so a hang fails the test
// instead of hanging it; resolves with the exit code (or signal), whether it was killed, output.
export function runNode(code, { timeout = 60000, flags = [] } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [...flags, '--input-type=module', '-e', code], { timeout },
      (error, stdout, stderr) => resolve({ code: error ? error.code ?? error.signal : 0,
        killed: !!(error && error.killed), stdout, stderr }));
  });
}
// JR_WASM_DIR: test other builds of the modules (default: the package's own).
export const WASM_DIR = process.env.JR_WASM_DIR || path.join(ROOT, 'jupyterlite_rayon', 'wasm');

export function wasmBytes(build = 'mt') {
  const file = path.join(WASM_DIR, `pool-${build}.wasm`);
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: build it with ` +
      '`flock /tmp/jr-build.lock python kernels/build.py`');
  }
  return fs.readFileSync(file);
}

export async function makePool(threads, { build = 'mt', ...options } = {}) {
  // Pass bytes (not a Module) so the host reads limits and signatures from the binary.
  return createPool({ wasm: wasmBytes(build), threads, threaded: build === 'mt', ...options });
}

// The dtype codes of the contract (kernels/ABI.md, generated), each with its typed array.
const CTORS = { float64: Float64Array, float32: Float32Array, int32: Int32Array,
  int64: BigInt64Array, uint32: Uint32Array, uint64: BigUint64Array };
export const DTYPES = Object.fromEntries(ABI_DTYPES.map(({ code, name, size }) => {
  if (!CTORS[name] || CTORS[name].BYTES_PER_ELEMENT !== size) {
    throw new Error(`tests/node/helpers.mjs has no typed array for the ABI dtype ${name}`);
  }
  return [name, { code, Ctor: CTORS[name] }];
}));

// Copy a typed array into freshly allocated pool memory; returns its address.
export function put(pool, typed) {
  const ptr = pool.alloc(typed.byteLength);
  pool.view(typed.constructor, ptr, typed.length).set(typed);
  return ptr;
}

// Copy out of pool memory (a view is only valid until memory grows).
export function get(pool, Ctor, ptr, length) {
  return pool.view(Ctor, ptr, length).slice();
}

// Runs fn(scratch) with an 8-byte out cell and frees everything allocated through `track`.
export function withArrays(pool, fn) {
  const owned = [];
  const track = (ptr) => { owned.push(ptr); return ptr; };
  try {
    return fn({
      put: (typed) => track(put(pool, typed)),
      alloc: (nbytes) => track(pool.alloc(nbytes, true)),
    });
  } finally {
    for (const ptr of owned) pool.free(ptr);
  }
}

// Sizes of the brief: 0, 1, primes, 2^k +- 1 (crossing the 4096-element block size).
export const SIZES = [0, 1, 2, 3, 7, 31, 127, 255, 257, 1009, 4095, 4096, 4097, 8191, 12289,
  65537, 100003];
export const THREADS = [1, 2, 3, 4];

// Deterministic pseudo-random data (xorshift32), so failures reproduce.
export function rng(seed = 12345) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function randomArray(Ctor, n, seed = 1, { lo = -100, hi = 100, nanEvery = 0 } = {}) {
  const r = rng(seed);
  const out = new Ctor(n);
  for (let i = 0; i < n; i++) {
    const v = lo + (hi - lo) * r();
    if (Ctor === BigInt64Array) out[i] = BigInt(Math.round(v));
    else if (Ctor === BigUint64Array) out[i] = BigInt(Math.round(v)); // negatives wrap: 2^64 - k
    else if (Ctor === Uint32Array) out[i] = Math.round(Math.abs(v));
    else if (Ctor === Int32Array) out[i] = Math.round(v);
    else out[i] = nanEvery && i % nanEvery === nanEvery - 1 ? NaN : v;
  }
  return out;
}

// Object.is per element, so NaN == NaN and -0 != 0 (bit-for-bit intent).
export function firstMismatch(a, b) {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} != ${b[i]}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// A tiny wasm assembler for foreign test modules

export function uleb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n) {
  let v = BigInt(n);
  const out = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(b & 0x40)) || (v === -1n && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

const str = (s) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items) => [...uleb(items.length), ...items.flat()];
const section = (id, body) => [id, ...uleb(body.length), ...body];
const T = { i32: 0x7f, i64: 0x7e, f64: 0x7c };

// spec: {types: [[params], [results]], imports: [{module, name, func: typeIndex} |
// {module, name, memory: {min, max, shared}}], funcs: [{type, body: bytes, export?}],
// start?: funcIndex}. Bodies are raw instruction bytes without the final `end`.
export function assemble({ types, imports = [], funcs, start }) {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  bytes.push(...section(1, vec(types.map(([p, r]) => [0x60, ...vec(p.map((t) => [T[t]])),
    ...vec(r.map((t) => [T[t]]))]))));
  bytes.push(...section(2, vec(imports.map((imp) => {
    const head = [...str(imp.module), ...str(imp.name)];
    if (imp.memory) {
      const { min, max, shared } = imp.memory;
      return [...head, 0x02, shared ? 0x03 : 0x01, ...uleb(min), ...uleb(max)];
    }
    return [...head, 0x00, ...uleb(imp.func)];
  }))));
  bytes.push(...section(3, vec(funcs.map((f) => uleb(f.type)))));
  const nImportFuncs = imports.filter((i) => !i.memory).length;
  const exports = funcs
    .map((f, i) => (f.export ? [...str(f.export), 0x00, ...uleb(nImportFuncs + i)] : null))
    .filter(Boolean);
  bytes.push(...section(7, vec(exports)));
  if (start !== undefined) bytes.push(...section(8, uleb(start)));
  bytes.push(...section(10, vec(funcs.map((f) => {
    const body = [0x00, ...f.body, 0x0b]; // no locals
    return [...uleb(body.length), ...body];
  }))));
  return new Uint8Array(bytes);
}

export const OP = {
  unreachable: [0x00],
  drop: [0x1a],
  i32: (v) => [0x41, ...sleb(v)],
  i64: (v) => [0x42, ...sleb(v)],
  call: (i) => [0x10, ...uleb(i)],
  localGet: (i) => [0x20, ...uleb(i)],
  i32eqz: [0x45],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (l) => [0x0d, ...uleb(l)],
  atomicWait32: [0xfe, 0x01, 0x02, 0x00],
  atomicNotify: [0xfe, 0x00, 0x02, 0x00],
  atomicLoad32: [0xfe, 0x10, 0x02, 0x00],
  atomicStore32: [0xfe, 0x17, 0x02, 0x00],
  atomicAdd32: [0xfe, 0x1e, 0x02, 0x00],
};

// A foreign wasi-threads module whose threads trap: `spawn_and_wait` spawns one thread (its
// wasi_thread_start hits `unreachable`) and then waits, asking host_poll every 20 ms, until
// host_poll says stop (it then returns E_CANCELED) or throws (the host's answer once the pool is
// broken). `slot_addr` gives an address other modules may use.
export function trapModule() {
  return assemble({
    types: [[['i32'], ['i32']], [[], ['i32']], [['i32', 'i32'], []]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 16384, shared: true } },
      { module: 'wasi', name: 'thread-spawn', func: 0 },
      { module: 'env', name: 'host_poll', func: 1 },
    ],
    funcs: [
      { type: 2, export: 'wasi_thread_start', body: OP.unreachable },
      {
        type: 1, export: 'spawn_and_wait', body: [
          ...OP.i32(0), ...OP.call(0), ...OP.drop,
          ...OP.loop,
          ...OP.i32(0), ...OP.i32(0), ...OP.i64(20_000_000), ...OP.atomicWait32, ...OP.drop,
          ...OP.call(1), ...OP.i32eqz, ...OP.brIf(0),
          ...OP.end,
          ...OP.i32(-3),
        ],
      },
      { type: 1, export: 'slot_addr', body: OP.i32(64) },
      { type: 1, export: 'trap_here', body: OP.unreachable },
    ],
  });
}

// An extra module for pool.addModule: its start function adds 1 at `pool.slot_addr()`, so the
// count there says in how many threads it was instantiated.
export function counterModule() {
  return assemble({
    types: [[[], ['i32']], [[], []]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 16384, shared: true } },
      { module: 'pool', name: 'slot_addr', func: 0 },
    ],
    funcs: [
      { type: 1, body: [...OP.call(0), ...OP.i32(1), ...OP.atomicAdd32, ...OP.drop] },
      { type: 0, export: 'where', body: OP.call(0) },
    ],
    start: 1,
  });
}

// ---------------------------------------------------------------------------------------------
// Kernel calls: copy inputs into pool memory, call, copy results out, free everything.

export const REDUCE_OPS = { sum: 0, min: 1, max: 2, mean: 3 };
export const UNARY_OPS = { sqrt: 0, exp: 1, log: 2, sin: 3, cos: 4, abs: 5, negative: 6 };
export const BINARY_OPS = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, minimum: 5, maximum: 6 };

export function dtypeOf(typed) {
  const entry = Object.entries(DTYPES).find(([, d]) => typed instanceof d.Ctor);
  if (!entry) throw new TypeError(`no pool dtype for ${typed.constructor.name}`);
  return { name: entry[0], ...entry[1] };
}

const isInt = (typed) => !(typed instanceof Float64Array || typed instanceof Float32Array);
// Integer reductions and cumsum give uint64 for unsigned input, int64 for signed (numpy's).
const Wide = (typed) => (typed instanceof Uint32Array || typed instanceof BigUint64Array
  ? BigUint64Array : BigInt64Array);

export const K = {
  reduce(pool, op, x) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(8);
      pool.call('jr_reduce', REDUCE_OPS[op], dtypeOf(x).code, put(x), x.length, out);
      return isInt(x) && op !== 'mean' ? pool.view(Wide(x), out, 1)[0]
        : pool.view(Float64Array, out, 1)[0];
    });
  },
  dot(pool, x, y, n = x.length) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(8);
      pool.call('jr_dot', dtypeOf(x).code, put(x), put(y), n, out);
      return isInt(x) ? pool.view(Wide(x), out, 1)[0] : pool.view(Float64Array, out, 1)[0];
    });
  },
  unary(pool, op, x) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.byteLength);
      pool.call('jr_map_unary', UNARY_OPS[op], dtypeOf(x).code, put(x), out, x.length);
      return get(pool, x.constructor, out, x.length);
    });
  },
  binary(pool, op, x, y) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.byteLength);
      pool.call('jr_map_binary', BINARY_OPS[op], dtypeOf(x).code, put(x), put(y), out, x.length);
      return get(pool, x.constructor, out, x.length);
    });
  },
  scalar(pool, op, x, s, swap) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.byteLength);
      pool.call('jr_map_scalar', BINARY_OPS[op], dtypeOf(x).code, put(x), s, out, x.length,
        swap ? 1 : 0);
      return get(pool, x.constructor, out, x.length);
    });
  },
  clip(pool, x, lo, hi) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.byteLength);
      pool.call('jr_clip', dtypeOf(x).code, put(x), lo, hi, out, x.length);
      return get(pool, x.constructor, out, x.length);
    });
  },
  cumsum(pool, x) {
    const Out = isInt(x) ? Wide(x) : x.constructor;
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.length * Out.BYTES_PER_ELEMENT);
      pool.call('jr_cumsum', dtypeOf(x).code, put(x), out, x.length);
      return get(pool, Out, out, x.length);
    });
  },
  sort(pool, x) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.byteLength);
      pool.call('jr_sort', dtypeOf(x).code, put(x), out, x.length);
      return get(pool, x.constructor, out, x.length);
    });
  },
  argsort(pool, x) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(x.length * 8);
      pool.call('jr_argsort', dtypeOf(x).code, put(x), out, x.length);
      return get(pool, BigInt64Array, out, x.length);
    });
  },
  matmul(pool, a, b, m, k, n) {
    return withArrays(pool, ({ put, alloc }) => {
      const c = alloc(m * n * a.BYTES_PER_ELEMENT);
      pool.call('jr_matmul', dtypeOf(a).code, put(a), put(b), c, m, k, n);
      return get(pool, a.constructor, c, m * n);
    });
  },
  mandelbrot(pool, width, height, x0, x1, y0, y1, maxIter) {
    return withArrays(pool, ({ alloc }) => {
      const out = alloc(width * height * 4);
      pool.call('jr_mandelbrot', out, width, height, x0, x1, y0, y1, maxIter);
      return get(pool, Uint32Array, out, width * height);
    });
  },
  // counts, or [counts, edges] with withEdges (edges float32 for float32 data, as numpy's)
  histogram(pool, x, bins, lo, hi, { withEdges = false, denom = 0, flags = 0 } = {}) {
    return withArrays(pool, ({ put, alloc }) => {
      const out = alloc(bins * 8);
      const E = x instanceof Float32Array ? Float32Array : Float64Array;
      const edges = withEdges ? alloc((bins + 1) * E.BYTES_PER_ELEMENT) : 0;
      pool.call('jr_histogram', dtypeOf(x).code, put(x), x.length, bins, lo, hi, out, edges,
        denom, flags);
      const counts = get(pool, BigInt64Array, out, bins);
      return withEdges ? [counts, get(pool, E, edges, bins + 1)] : counts;
    });
  },
  pi(pool, samples, seed) {
    return withArrays(pool, ({ alloc }) => {
      const out = alloc(8);
      pool.call('jr_pi', samples, seed, out);
      return pool.view(BigInt64Array, out, 1)[0];
    });
  },
  fib(pool, n) {
    return withArrays(pool, ({ alloc }) => {
      const out = alloc(8);
      pool.call('jr_bench_fib', n, out);
      return pool.view(BigInt64Array, out, 1)[0];
    });
  },
  forChunks(pool, n) {
    return withArrays(pool, ({ alloc }) => {
      const out = alloc(8);
      pool.call('jr_bench_for', n, out);
      return pool.view(BigInt64Array, out, 1)[0];
    });
  },
};

// An extra module for the real pool: its start function calls the pool's own jr_alloc(0), so
// bytesInUse grows by one 16-byte block per thread it was instantiated in.
export function allocOnStartModule() {
  return assemble({
    types: [[['i32', 'i32'], ['i32']], [[], []]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 32768, shared: true } },
      { module: 'pool', name: 'jr_alloc', func: 0 },
    ],
    funcs: [{ type: 1, body: [...OP.i32(0), ...OP.i32(0), ...OP.call(0), ...OP.drop] }],
    start: 1,
  });
}

// A foreign module whose thread prints: `spawn_print` spawns a thread that calls WASI fd_write(1,
// iovec at 100, 1, nwritten at 120), then sets the word at 64 and wakes the caller waiting on it.
export function printModule() {
  return assemble({
    types: [[['i32'], ['i32']], [[], ['i32']], [['i32', 'i32'], []],
      [['i32', 'i32', 'i32', 'i32'], ['i32']]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 16384, shared: true } },
      { module: 'wasi', name: 'thread-spawn', func: 0 },
      { module: 'wasi_snapshot_preview1', name: 'fd_write', func: 3 },
    ],
    funcs: [
      {
        type: 2, export: 'wasi_thread_start', body: [
          ...OP.i32(1), ...OP.i32(100), ...OP.i32(1), ...OP.i32(120), ...OP.call(1), ...OP.drop,
          ...OP.i32(64), ...OP.i32(1), ...OP.atomicStore32,
          ...OP.i32(64), ...OP.i32(1), ...OP.atomicNotify, ...OP.drop,
        ],
      },
      {
        type: 1, export: 'spawn_print', body: [
          ...OP.i32(0), ...OP.call(0), ...OP.drop,
          ...OP.loop,
          ...OP.i32(64), ...OP.i32(0), ...OP.i64(1_000_000_000), ...OP.atomicWait32, ...OP.drop,
          ...OP.i32(64), ...OP.atomicLoad32, ...OP.i32eqz, ...OP.brIf(0),
          ...OP.end,
          ...OP.i32(0),
        ],
      },
    ],
  });
}
