// Every kernel of pool-mt.wasm against the JS references, for 1..4 threads and sizes 0, 1,
// primes and 2^k +- 1. Reductions, cumsum and histogram must match bit for bit (so they are
// also bit-identical across thread counts); libm maps (exp, log, sin, cos, pow) within 2 ulps.
import test from 'node:test';
import assert from 'node:assert/strict';
import * as ref from './reference.mjs';
import { HISTOGRAM_F32_RANGE } from '../../jupyterlite_rayon/host/abi.mjs';
import { DTYPES, K, SIZES, THREADS, firstMismatch, makePool, randomArray } from './helpers.mjs';

const pools = new Map();
test.before(async () => {
  for (const t of THREADS) pools.set(t, await makePool(t));
});
test.after(async () => {
  for (const pool of pools.values()) await pool.terminate();
});

// Runs check(pool, threads) on every pool, adding the thread count to any failure.
function eachPool(check) {
  for (const [threads, pool] of pools) {
    try {
      check(pool, threads);
    } catch (error) {
      error.message = `[threads=${threads}] ${error.message}`;
      throw error;
    }
  }
}

const inputs = new Map();
// Deterministic input per (dtype, size, variant); floats get a NaN every 97th element in the
// 'nan' variant.
function input(dtype, n, variant = 'plain') {
  const key = `${dtype}/${n}/${variant}`;
  if (!inputs.has(key)) {
    const seed = n * 31 + dtype.length * 7 + variant.length;
    const opts = variant === 'nan' ? { nanEvery: 97 } : variant === 'pos' ? { lo: 0.001, hi: 50 }
      : variant === 'dups' ? { lo: -8, hi: 8 } : {};
    let x = randomArray(DTYPES[dtype].Ctor, n, seed, opts);
    if (variant === 'dups' && (dtype === 'float64' || dtype === 'float32')) {
      x = x.map((v) => Math.round(v) + 0.25); // many equal keys, to see stability
    }
    inputs.set(key, x);
  }
  return inputs.get(key);
}

const FLOATS = ['float64', 'float32'];
const INTS = ['int32', 'int64'];
const NUMERIC = [...FLOATS, ...INTS];

function sameValue(actual, expected, what) {
  assert.ok(Object.is(actual, expected), `${what}: got ${actual}, expected ${expected}`);
}

function sameArray(actual, expected, what) {
  const bad = firstMismatch(actual, expected);
  assert.equal(bad, null, `${what}: ${bad}`);
}

function closeArray(actual, expected, maxUlps, f32, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const d = ref.ulps(actual[i], expected[i], f32);
    if (d > maxUlps) assert.fail(`${what}: index ${i}: ${actual[i]} vs ${expected[i]} (${d} ulps)`);
  }
}

test('jr_reduce: sum, min, max, mean equal the reference bit for bit', () => {
    for (const dtype of NUMERIC) {
      for (const variant of dtype.startsWith('float') ? ['plain', 'nan'] : ['plain']) {
        for (const n of SIZES) {
          const x = input(dtype, n, variant);
          for (const op of ['sum', 'min', 'max', 'mean']) {
            const expected = ref.reduce(op, x);
            eachPool((pool) => {
              const what = `${op} ${dtype} ${variant} n=${n}`;
              if (expected === 'E_EMPTY') {
                assert.throws(() => K.reduce(pool, op, x), { name: 'E_EMPTY', code: -4 }, what);
              } else {
                sameValue(K.reduce(pool, op, x), expected, what);
              }
            });
          }
        }
      }
    }
  });

test('jr_reduce: int sums wrap like numpy int64', () => {
  const big = BigInt64Array.from({ length: 9000 }, (_, i) => (i % 2 ? 2n ** 62n : 2n ** 62n + 7n));
  const expected = ref.reduce('sum', big);
  eachPool((pool) => sameValue(K.reduce(pool, 'sum', big), expected, 'wrapped sum'));
});

test('jr_dot equals the reference bit for bit', () => {
  for (const dtype of NUMERIC) {
    for (const n of SIZES) {
      const x = input(dtype, n), y = input(dtype, n, 'pos');
      const expected = ref.dot(x, y);
      eachPool((pool) => sameValue(K.dot(pool, x, y), expected, `dot ${dtype} n=${n}`));
    }
  }
});

test('jr_map_unary: every op and dtype against Math.*', () => {
  for (const dtype of [...NUMERIC, 'uint32']) {
    for (const n of SIZES) {
      const x = input(dtype, n, dtype.startsWith('float') ? 'nan' : 'plain');
      for (const op of ref.UNARY) {
        const isFloat = dtype.startsWith('float');
        const what = `${op} ${dtype} n=${n}`;
        if (!isFloat && op !== 'abs' && op !== 'negative') {
          eachPool((pool) => assert.throws(() => K.unary(pool, op, x), { name: 'E_DTYPE' }, what));
          continue;
        }
        const expected = ref.mapUnary(op, x);
        eachPool((pool) => {
          const got = K.unary(pool, op, x);
          if (ref.EXACT_UNARY.has(op)) sameArray(got, expected, what);
          else closeArray(got, expected, 2, dtype === 'float32', what);
        });
      }
    }
  }
});

test('jr_map_binary and jr_map_scalar: every op and dtype', () => {
  for (const dtype of [...NUMERIC, 'uint32']) {
    for (const n of [0, 1, 7, 4097, 12289, 100003]) {
      const isFloat = dtype.startsWith('float');
      const x = input(dtype, n, isFloat ? 'nan' : 'plain');
      const y = input(dtype, n, 'pos');
      for (const op of ref.BINARY) {
        const what = `${op} ${dtype} n=${n}`;
        if (!isFloat && (op === 'div' || op === 'pow')) {
          eachPool((pool) => assert.throws(() => K.binary(pool, op, x, y), { name: 'E_DTYPE' },
            what));
          continue;
        }
        const s = isFloat ? 1.75 : 3;
        const expected = [ref.mapBinary(op, x, y), ref.mapScalar(op, x, s, false),
          ref.mapScalar(op, x, s, true)];
        eachPool((pool) => {
          const got = [K.binary(pool, op, x, y), K.scalar(pool, op, x, s, false),
            K.scalar(pool, op, x, s, true)];
          got.forEach((g, i) => {
            const w = `${what} (${['array', 'scalar', 'scalar swapped'][i]})`;
            if (ref.EXACT_BINARY.has(op)) sameArray(g, expected[i], w);
            else closeArray(g, expected[i], 2, dtype === 'float32', w);
          });
        });
      }
    }
  }
});

// Math.pow here is glibc's, within 1 ulp of the exact result, like numpy's. Large results are
// where a naive pow drifts (Zig's std.math.pow was tens of ulps off).
test('jr_map_binary pow is within 2 ulps of correct rounding, large results too', () => {
  for (const dtype of FLOATS) {
    const x = randomArray(DTYPES[dtype].Ctor, 20011, 9, { lo: 0, hi: 100 });
    const y = randomArray(DTYPES[dtype].Ctor, 20011, 10, { lo: -50, hi: 50 });
    const expected = ref.mapBinary('pow', x, y);
    eachPool((pool) => closeArray(K.binary(pool, 'pow', x, y), expected, 2,
      dtype === 'float32', `pow ${dtype}`));
  }
});

test('jr_map_scalar refuses a non-integer scalar for an int dtype',
  () => {
    const x = input('int32', 10);
    eachPool((pool) => assert.throws(() => K.scalar(pool, 'add', x, 1.5, false),
      { name: 'E_INVAL' }));
  });

test('jr_clip matches numpy.clip', () => {
  for (const dtype of NUMERIC) {
    for (const n of SIZES) {
      const x = input(dtype, n, dtype.startsWith('float') ? 'nan' : 'plain');
      for (const [lo, hi] of [[-10.5, 20.25], [0, 0], [-1e300, 1e300]]) {
        const expected = ref.clip(x, lo, hi);
        eachPool((pool) => sameArray(K.clip(pool, x, lo, hi), expected,
          `clip ${dtype} n=${n} [${lo}, ${hi}]`));
      }
    }
  }
});

test('jr_cumsum equals the sequential reference (numpy\'s accumulate) bit for bit', () => {
  for (const dtype of NUMERIC) {
    for (const n of SIZES) {
      const x = input(dtype, n);
      const expected = ref.cumsum(x);
      eachPool((pool) => sameArray(K.cumsum(pool, x), expected, `cumsum ${dtype} n=${n}`));
    }
  }
});

test('jr_sort and jr_argsort: stable, ascending, NaN last',
  () => {
    for (const dtype of [...NUMERIC, 'uint32']) {
      for (const n of SIZES) {
        for (const variant of dtype.startsWith('float') ? ['nan', 'dups'] : ['plain', 'dups']) {
          const x = input(dtype, n, variant);
          const sorted = ref.sort(x), order = ref.argsort(x);
          eachPool((pool) => {
            sameArray(K.sort(pool, x), sorted, `sort ${dtype} ${variant} n=${n}`);
            sameArray(K.argsort(pool, x), order, `argsort ${dtype} ${variant} n=${n}`);
          });
        }
      }
    }
  });

test('jr_sort sorts in place when out is x', () => {
  const x = input('float64', 4097, 'nan');
  eachPool((pool) => {
    const p = pool.alloc(x.byteLength);
    try {
      pool.view(Float64Array, p, x.length).set(x);
      pool.call('jr_sort', 0, p, p, x.length);
      sameArray(pool.view(Float64Array, p, x.length).slice(), ref.sort(x), 'in-place sort');
    } finally {
      pool.free(p);
    }
  });
});

test('jr_matmul against the plain triple loop', () => {
  const shapes = [[0, 0, 0], [1, 1, 1], [1, 5, 1], [3, 5, 7], [17, 31, 13], [64, 64, 64],
    [65, 33, 129], [2, 257, 3]];
  for (const dtype of FLOATS) {
    const f32 = dtype === 'float32';
    for (const [m, k, n] of shapes) {
      const a = randomArray(DTYPES[dtype].Ctor, m * k, m + k, { lo: -1, hi: 1 });
      const b = randomArray(DTYPES[dtype].Ctor, k * n, k + n + 1, { lo: -1, hi: 1 });
      const expected = ref.matmul(a, b, m, k, n);
      // Any summation order is within k * eps * sum(|a||b|) of the exact product.
      const absA = a.map(Math.abs), absB = b.map(Math.abs);
      const bound = ref.matmul(absA, absB, m, k, n);
      const eps = f32 ? 2 ** -23 : 2 ** -52;
      eachPool((pool) => {
        const got = K.matmul(pool, a, b, m, k, n);
        for (let i = 0; i < m * n; i++) {
          const tol = (k + 2) * eps * bound[i] + (f32 ? 1e-30 : 1e-300);
          assert.ok(Math.abs(got[i] - expected[i]) <= tol,
            `matmul ${dtype} ${m}x${k}x${n} [${i}]: ${got[i]} vs ${expected[i]}`);
        }
      });
    }
  }
});

test('jr_mandelbrot is exactly the documented formula', () => {
  const cases = [[0, 0, 10], [1, 1, 10], [7, 5, 0], [7, 5, 1], [64, 48, 50], [257, 31, 256],
    [31, 67, 100]];
  for (const [w, h, maxIter] of cases) {
    const expected = ref.mandelbrot(w, h, -2, 1, -1.5, 1.5, maxIter);
    eachPool((pool) => sameArray(K.mandelbrot(pool, w, h, -2, 1, -1.5, 1.5, maxIter), expected,
      `mandelbrot ${w}x${h} max_iter=${maxIter}`));
  }
  // A zoomed window with many points near the boundary.
  const zoom = ref.mandelbrot(100, 80, -0.75, -0.74, 0.1, 0.11, 300);
  eachPool((pool) => sameArray(K.mandelbrot(pool, 100, 80, -0.75, -0.74, 0.1, 0.11, 300), zoom,
    'zoomed mandelbrot'));
});

test('jr_histogram equals numpy.histogram counts', () => {
  for (const dtype of NUMERIC) {
    for (const n of SIZES) {
      const x = input(dtype, n, dtype.startsWith('float') ? 'nan' : 'plain');
      for (const [bins, lo, hi] of [[1, -50, 50], [7, -50, 50], [10, -100, 100], [64, -3, 97],
        [1000, -100, 100]]) {
        const expected = ref.histogram(x, bins, lo, hi);
        eachPool((pool) => sameArray(K.histogram(pool, x, bins, lo, hi), expected,
          `histogram ${dtype} n=${n} bins=${bins} [${lo}, ${hi}]`));
      }
    }
  }
});

test('jr_histogram edge rules: values on every edge, the last edge, outside', () => {
  for (const [bins, lo, hi] of [[10, 0, 1], [7, -1.3, 2.9], [3, 0.1, 0.7]]) {
    const edges = ref.histogramEdges(bins, lo, hi);
    const near = [];
    const ulp = (e) => Math.abs(e) * 2 ** -52;
    for (const e of edges) near.push(e, e + ulp(e) + 5e-324, e - ulp(e));
    near.push(lo - 1, hi + 1, NaN, Infinity, -Infinity);
    const x = Float64Array.from(near);
    const expected = ref.histogram(x, bins, lo, hi);
    eachPool((pool) => sameArray(K.histogram(pool, x, bins, lo, hi), expected,
      `edges bins=${bins} [${lo}, ${hi}]`));
  }
});

// float32 neighbours of v: the next float32 values below and above (by their bits).
function f32Neighbours(v) {
  const f = new Float32Array([v]);
  const u = new Int32Array(f.buffer);
  const out = [];
  for (const step of [-1, 1]) {
    const w = new Float32Array(1);
    const wu = new Int32Array(w.buffer);
    wu[0] = u[0] === 0 ? (step > 0 ? 1 : -0x7fffffff) : u[0] + (v > 0 ? step : -step);
    out.push(w[0]);
  }
  return out;
}

test('jr_histogram writes numpy\'s edges; float32 data with its own range bins in float32', () => {
  // issue 9 item 1: numpy.histogram(np.float32([0, 3, 4]), 28) puts 3.0 in bin 20 (edge 21 is
  // float32 3.0000002)
  eachPool((pool) => {
    const [counts, edges] = K.histogram(pool, Float32Array.of(0, 3, 4), 28, 0, 4,
      { withEdges: true, flags: HISTOGRAM_F32_RANGE });
    sameValue(edges[21], Math.fround(3.0000002), 'edge 21');
    sameValue(counts[20], 1n, 'bin 20');
    sameValue(counts[21], 0n, 'bin 21');
  });
  for (const [bins, lo, hi] of [[28, 0, 4], [7, -1.3, 2.9], [1000, 0.1, 0.7], [3, 1e6, 1e6 + 8],
    [100, -5e-3, 1e-3], [999, -1000, 1000]]) {
    const l = Math.fround(lo), h = Math.fround(hi);
    for (const f32Range of [true, false]) {
      const want = ref.histogramEdges(bins, l, h, { f32Range }).map(Math.fround);
      const near = [l, h];
      for (const e of want) near.push(e, ...f32Neighbours(e));
      const x = Float32Array.from(near.filter((v) => v >= l && v <= h));
      const counts = ref.histogram(x, bins, l, h, { f32Range });
      const flags = f32Range ? HISTOGRAM_F32_RANGE : 0;
      eachPool((pool) => {
        const [got, edges] = K.histogram(pool, x, bins, l, h, { withEdges: true, flags });
        const what = `bins=${bins} [${l}, ${h}] f32Range=${f32Range}`;
        sameArray(edges, Float32Array.from(want), `edges ${what}`);
        sameArray(got, counts, `counts ${what}`);
      });
    }
  }
  // float64 edges are np.linspace's; an integer range's exact denominator is taken as given
  eachPool((pool) => {
    const [, edges] = K.histogram(pool, Float64Array.of(1), 7, -1.3, 2.9, { withEdges: true });
    sameArray(edges, ref.histogramEdges(7, -1.3, 2.9), 'float64 edges');
    const x = BigInt64Array.of(0n, 5n, 9n, 10n);
    sameArray(K.histogram(pool, x, 2, 0, 10, { denom: 10 }), ref.histogram(x, 2, 0, 10,
      { denom: 10 }), 'int64 with denom');
  });
});

test('jr_pi counts hits of the SplitMix64 sequence exactly', () => {
  for (const [samples, seed] of [[0, 0], [1, 0], [1000, 42], [20011, -1], [65537, 7]]) {
    const expected = ref.piHits(samples, seed);
    eachPool((pool) => sameValue(K.pi(pool, samples, seed), expected,
      `pi samples=${samples} seed=${seed}`));
  }
});

test('jr_bench_fib and jr_bench_for', () => {
  eachPool((pool) => {
    for (const n of [0, 1, 2, 10, 20]) sameValue(K.fib(pool, n), ref.fib(n), `fib(${n})`);
    assert.equal(K.forChunks(pool, 0), 0n);
    // Up to 4096 items every item is its own chunk (min chunk 1); beyond, at most 4096 chunks
    // of about n/4096 items each.
    for (const n of [1, 7, 1000, 4096]) assert.equal(K.forChunks(pool, n), BigInt(n));
    for (const n of [4097, 65537, 1000003]) {
      const chunks = K.forChunks(pool, n);
      const least = BigInt(Math.ceil(n / (2 * Math.ceil(n / 4096))));
      assert.ok(chunks >= least && chunks <= 4096n, `bench_for(${n}) ran ${chunks} chunks`);
    }
  });
});

test('sum, mean, dot, cumsum, histogram bit-identical for 1..4 threads (10^6 + 3 values)', () => {
  const n = 1_000_003;
  // Magnitudes spread over many binades, so that any change of summation order shows.
  const x = randomArray(Float64Array, n, 77).map((v, i) => v * 10 ** ((i % 13) - 6));
  const f32 = Float32Array.from(x);
  const runs = [...pools.values()].map((pool) => ({
    sum: K.reduce(pool, 'sum', x), mean: K.reduce(pool, 'mean', f32), dot: K.dot(pool, x, x),
    cumsum: K.cumsum(pool, x), cumsum32: K.cumsum(pool, f32),
    histogram: K.histogram(pool, x, 257, -50, 50),
  }));
  const [first, ...rest] = runs;
  // numpy's order (pairwise sum in the dtype, sequential cumsum), whatever the thread count
  sameValue(first.sum, ref.reduce('sum', x), 'sum vs reference');
  sameValue(first.mean, ref.reduce('mean', f32), 'float32 mean vs reference');
  sameArray(first.cumsum32, ref.cumsum(f32), 'float32 cumsum vs reference');
  rest.forEach((r, i) => {
    const what = `threads=${i + 2} vs 1`;
    for (const key of ['sum', 'mean', 'dot']) sameValue(r[key], first[key], `${key} ${what}`);
    for (const key of ['cumsum', 'cumsum32', 'histogram']) {
      sameArray(r[key], first[key], `${key} ${what}`);
    }
  });
});

// uint32 and uint64 against BigInt references written here: integer sums, dot and cumsum are
// uint64 wrapping at 2^64 (numpy's dtype for both), min/max/sort/clip compare without sign, and
// histogram bins the values as float64 (numpy converts them so).
const UNSIGNED = [['uint32', 32], ['uint64', 64]];

function unsignedInput(dtype, n, seed) {
  const { Ctor } = DTYPES[dtype];
  const x = randomArray(Ctor, n, seed, { lo: -1e9, hi: 1e9 });
  // spread uint64 over its whole range (both sides of 2^63), then put in the extremes
  if (Ctor === BigUint64Array) for (let i = 0; i < n; i++) x[i] *= 0x9E3779B97F4A7C15n;
  if (n > 3) {
    x[1] = Ctor === BigUint64Array ? 2n ** 64n - 1n : 2 ** 32 - 1;
    x[2] = Ctor === BigUint64Array ? 0n : 0;
    x[3] = Ctor === BigUint64Array ? 2n ** 63n : 2 ** 31;
  }
  return x;
}

test('uint32 and uint64: reduce, dot and cumsum are uint64; maps, clip, sort and histogram', () => {
  for (const [dtype, bits] of UNSIGNED) {
    const wrap = (v) => BigInt.asUintN(bits, v);
    const { Ctor } = DTYPES[dtype];
    const back = (v) => (Ctor === BigUint64Array ? v : Number(v)); // a BigInt in the dtype
    for (const n of SIZES) {
      const x = unsignedInput(dtype, n, n + bits), y = unsignedInput(dtype, n, 3 * n + 1);
      let sum = 0n, dot = 0n, lo = null, hi = null;
      const cum = new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = BigInt(x[i]);
        sum = BigInt.asUintN(64, sum + v);
        dot = BigInt.asUintN(64, dot + v * BigInt(y[i]));
        cum[i] = sum;
        lo = lo === null || v < lo ? v : lo;
        hi = hi === null || v > hi ? v : hi;
      }
      const neg = Ctor.from(x, (v) => back(wrap(-BigInt(v))));
      const add = Ctor.from(x, (v, i) => back(wrap(BigInt(v) + BigInt(y[i]))));
      const mul = Ctor.from(x, (v, i) => back(wrap(BigInt(v) * BigInt(y[i]))));
      const min = Ctor.from(x, (v, i) => (BigInt(v) <= BigInt(y[i]) ? v : y[i]));
      const top = 2 ** (bits - 1); // clip to [2^(bits-2), 2^(bits-1)]: across the sign bit
      const clipLo = BigInt(top / 2), clipHi = BigInt(top);
      const clipped = Ctor.from(x, (v) => {
        const b = BigInt(v);
        return back(b < clipLo ? clipLo : b > clipHi ? clipHi : b);
      });
      const order = [...x.keys()].sort((a, b) => (x[a] < x[b] ? -1 : x[a] > x[b] ? 1 : a - b));
      const sorted = Ctor.from(order, (i) => x[i]);
      const asFloat = Float64Array.from(x, (v) => Number(v));
      const counts = ref.histogram(asFloat, 9, 0, 2 ** bits);
      eachPool((pool) => {
        const what = `${dtype} n=${n}`;
        sameValue(K.reduce(pool, 'sum', x), sum, `sum ${what}`);
        if (n) {
          sameValue(K.reduce(pool, 'min', x), lo, `min ${what}`);
          sameValue(K.reduce(pool, 'max', x), hi, `max ${what}`);
        }
        sameValue(K.dot(pool, x, y), dot, `dot ${what}`); // numpy's uint32 dot: this mod 2^32
        sameArray(K.cumsum(pool, x), cum, `cumsum ${what}`);
        sameArray(K.unary(pool, 'negative', x), neg, `negative ${what}`);
        sameArray(K.unary(pool, 'abs', x), x, `abs ${what}`);
        sameArray(K.binary(pool, 'add', x, y), add, `add ${what}`);
        sameArray(K.binary(pool, 'mul', x, y), mul, `mul ${what}`);
        sameArray(K.binary(pool, 'minimum', x, y), min, `minimum ${what}`);
        sameArray(K.clip(pool, x, top / 2, top), clipped, `clip ${what}`);
        sameArray(K.sort(pool, x), sorted, `sort ${what}`);
        sameArray(K.argsort(pool, x), BigInt64Array.from(order, BigInt), `argsort ${what}`);
        sameArray(K.histogram(pool, x, 9, 0, 2 ** bits), counts, `histogram ${what}`);
        assert.throws(() => K.unary(pool, 'sqrt', x), { name: 'E_DTYPE' }, `sqrt ${what}`);
      });
    }
  }
});
