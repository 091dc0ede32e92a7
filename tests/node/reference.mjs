// Plain JS references for every kernel of kernels/ABI.md. Written for clarity, not speed.
// Float sum and mean follow numpy's pairwise sum in the dtype, cumsum numpy's sequential
// accumulate; dot follows the documented block order (fixed 4096-element blocks, 8 lanes per
// block with a fixed lane tree, then the fixed pairwise tree over blocks). All compare bit for bit.

export const BLOCK = 4096;
const LANES = 8;

const wrap64 = (v) => BigInt.asIntN(64, v);
const isInt64 = (x) => x instanceof BigInt64Array;
const isIntArray = (x) => x instanceof Int32Array || x instanceof Uint32Array || isInt64(x);
const toNumber = (v) => (typeof v === 'bigint' ? Number(v) : v);

// Level by level: p[i] = p[2i] + p[2i+1]; an odd last element moves up unchanged.
export function pairwise(parts, add) {
  let p = parts.slice();
  while (p.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < p.length; i += 2) next.push(add(p[i], p[i + 1]));
    if (p.length % 2 === 1) next.push(p[p.length - 1]);
    p = next;
  }
  return p[0];
}

function blocks(n) {
  const out = [];
  for (let lo = 0; lo < n; lo += BLOCK) out.push([lo, Math.min(n, lo + BLOCK)]);
  return out;
}

// One block summed as the kernel does: lane k takes elements k, k+8, ... of the full part, the
// lanes meet in a fixed tree, then the tail is added in order.
function blockSumF64(term, lo, hi) {
  const lanes = new Array(LANES).fill(0);
  const full = lo + Math.floor((hi - lo) / LANES) * LANES;
  for (let i = lo; i < full; i++) lanes[(i - lo) % LANES] += term(i);
  const l = lanes;
  let s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
  for (let i = full; i < hi; i++) s += term(i);
  return s;
}

function sumOf(n, term, termBig, intAcc) {
  if (n === 0) return intAcc ? 0n : 0;
  if (intAcc) {
    const parts = blocks(n).map(([lo, hi]) => {
      let s = 0n;
      for (let i = lo; i < hi; i++) s = wrap64(s + termBig(i));
      return s;
    });
    return pairwise(parts, (a, b) => wrap64(a + b));
  }
  return pairwise(blocks(n).map(([lo, hi]) => blockSumF64(term, lo, hi)), (a, b) => a + b);
}

// numpy's pairwise sum of term(lo..hi) (numpy/_core/src/umath/loops_utils.h.src), every
// addition rounded by `round` (Math.fround: float32 arithmetic, exact for one addition).
export function numpyPairwise(term, lo, hi, round) {
  const n = hi - lo;
  if (n < 8) {
    let r = 0;
    for (let i = lo; i < hi; i++) r = round(r + term(i));
    return r;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(term(lo + j));
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] = round(r[j] + term(lo + i + j));
    }
    const add = (a, b) => round(a + b);
    let res = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])));
    for (; i < n; i++) res = round(res + term(lo + i));
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return round(numpyPairwise(term, lo, lo + n2, round) + numpyPairwise(term, lo + n2, hi, round));
}

// numpy's buffer size: a casting sum (np.mean of ints, in float64) adds up pieces this long.
const NUMPY_BUFFER = 8192;

// jr_reduce: op 'sum' | 'min' | 'max' | 'mean'. Ints give BigInt for sum/min/max.
export function reduce(op, x) {
  const n = x.length;
  const ints = isIntArray(x);
  const round = x instanceof Float32Array ? Math.fround : (v) => v;
  if (op === 'sum') {
    if (ints) return sumOf(n, null, (i) => BigInt(x[i]), true);
    return 0 + numpyPairwise((i) => x[i], 0, n, round); // numpy's T(0) + pw(x): +0.0 first
  }
  if (op === 'mean') {
    if (n === 0) return NaN;
    let total = 0;
    if (ints) {
      for (let lo = 0; lo < n; lo += NUMPY_BUFFER) {
        total += numpyPairwise((i) => toNumber(x[i]), lo, Math.min(n, lo + NUMPY_BUFFER), round);
      }
    } else {
      total = 0 + numpyPairwise((i) => x[i], 0, n, round);
    }
    return round(total / n); // numpy divides by an intp count: in float64, then to the dtype
  }

  if (n === 0) return 'E_EMPTY';
  if (ints) {
    let r = BigInt(x[0]);
    for (const v of x) {
      const b = BigInt(v);
      if (op === 'min' ? b < r : b > r) r = b;
    }
    return r;
  }
  let r = x[0];
  for (const v of x) {
    if (Number.isNaN(v)) return NaN;
    if (op === 'min' ? v < r : v > r) r = v;
  }
  return r;
}

export function dot(x, y) {
  const ints = isIntArray(x);
  return sumOf(x.length, (i) => x[i] * y[i], (i) => wrap64(BigInt(x[i]) * BigInt(y[i])), ints);
}

// Rounds a double result to the array's element type.
function store(Ctor) {
  if (Ctor === Float32Array) return Math.fround;
  if (Ctor === Int32Array) return (v) => v | 0;
  if (Ctor === Uint32Array) return (v) => v >>> 0;
  return (v) => v;
}

export const UNARY = ['sqrt', 'exp', 'log', 'sin', 'cos', 'abs', 'negative'];
export const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'minimum', 'maximum'];
// Correctly rounded in wasm and in JS: these must match exactly; the others (libm) within ulps.
export const EXACT_UNARY = new Set(['sqrt', 'abs', 'negative']);
export const EXACT_BINARY = new Set(['add', 'sub', 'mul', 'div', 'minimum', 'maximum']);

export function mapUnary(op, x) {
  const Ctor = x.constructor;
  const out = new Ctor(x.length);
  if (isInt64(x)) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      out[i] = op === 'abs' ? wrap64(v < 0n ? -v : v) : wrap64(-v);
    }
    return out;
  }
  const round = store(Ctor);
  const f = {
    sqrt: Math.sqrt, exp: Math.exp, log: Math.log, sin: Math.sin, cos: Math.cos,
    abs: Ctor === Uint32Array ? (v) => v : Math.abs, negative: (v) => -v,
  }[op];
  for (let i = 0; i < x.length; i++) out[i] = round(f(x[i]));
  return out;
}

function binaryFn(op, Ctor) {
  if (Ctor === BigInt64Array) {
    return { add: (a, b) => wrap64(a + b), sub: (a, b) => wrap64(a - b),
      mul: (a, b) => wrap64(a * b), minimum: (a, b) => (a < b ? a : b),
      maximum: (a, b) => (a > b ? a : b) }[op];
  }
  const isFloat = Ctor === Float64Array || Ctor === Float32Array;
  const nanFirst = (f) => (a, b) => (Number.isNaN(a) ? a : Number.isNaN(b) ? b : f(a, b));
  return {
    add: (a, b) => a + b, sub: (a, b) => a - b,
    mul: isFloat ? (a, b) => a * b : (a, b) => Math.imul(a, b), div: (a, b) => a / b,
    pow: Math.pow,
    minimum: nanFirst((a, b) => (a <= b ? a : b)), maximum: nanFirst((a, b) => (a >= b ? a : b)),
  }[op];
}

export function mapBinary(op, x, y) {
  const Ctor = x.constructor;
  const f = binaryFn(op, Ctor), round = store(Ctor);
  const out = new Ctor(x.length);
  for (let i = 0; i < x.length; i++) out[i] = isInt64(x) ? f(x[i], y[i]) : round(f(x[i], y[i]));
  return out;
}

export function mapScalar(op, x, s, swap) {
  const Ctor = x.constructor;
  const sv = isInt64(x) ? BigInt(s) : Ctor === Float32Array ? Math.fround(s) : s;
  const f = binaryFn(op, Ctor), round = store(Ctor);
  const out = new Ctor(x.length);
  for (let i = 0; i < x.length; i++) {
    const r = swap ? f(sv, x[i]) : f(x[i], sv);
    out[i] = isInt64(x) ? r : round(r);
  }
  return out;
}

// numpy.clip: NaN stays NaN; int bounds are rounded inward (ceil lo, floor hi).
export function clip(x, lo, hi) {
  const Ctor = x.constructor;
  const out = new Ctor(x.length);
  if (isIntArray(x)) {
    const l = Math.ceil(lo), h = Math.floor(hi);
    for (let i = 0; i < x.length; i++) {
      const v = toNumber(x[i]);
      const r = Math.min(Math.max(v, l), h);
      out[i] = isInt64(x) ? (r === v ? x[i] : BigInt(r)) : r;
    }
    return out;
  }
  const l = Ctor === Float32Array ? Math.fround(lo) : lo;
  const h = Ctor === Float32Array ? Math.fround(hi) : hi;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const m = Number.isNaN(v) ? v : v > l ? v : l;
    out[i] = Number.isNaN(m) ? m : m < h ? m : h;
  }
  return out;
}

// Inclusive prefix sum; ints give int64 (BigInt64Array), floats their own type, added in order
// in that type (numpy's np.add.accumulate: out[0] = x[0], out[i] = out[i-1] + x[i]).
export function cumsum(x) {
  const n = x.length;
  if (isIntArray(x)) {
    const out = new BigInt64Array(n);
    let s = 0n;
    for (let i = 0; i < n; i++) { s = wrap64(s + BigInt(x[i])); out[i] = s; }
    return out;
  }
  const round = x instanceof Float32Array ? Math.fround : (v) => v;
  const out = new x.constructor(n);
  let acc = -0; // the exact identity: -0 + x[0] is x[0], -0.0 included
  for (let i = 0; i < n; i++) { acc = round(acc + x[i]); out[i] = acc; }
  return out;
}

// numpy order: ascending, NaN last, stable (equal keys keep their input order).
function compare(a, b) {
  const an = typeof a === 'number' && Number.isNaN(a);
  const bn = typeof b === 'number' && Number.isNaN(b);
  if (an || bn) return an && bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function argsort(x) {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((i, j) => compare(x[i], x[j]) || i - j);
  return BigInt64Array.from(idx, (i) => BigInt(i));
}

export function sort(x) {
  const out = new x.constructor(x.length);
  argsort(x).forEach((i, k) => { out[k] = x[Number(i)]; });
  return out;
}

// c[m,n] = a[m,k] @ b[k,n] in f64; the kernel's blocked SIMD order differs, so compare within a
// bound (see matmulTolerance).
export function matmul(a, b, m, k, n) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

// The exact formula of ABI.md (no fused multiply-add in wasm, so it is exact in JS too).
export function mandelbrot(width, height, x0, x1, y0, y1, maxIter) {
  const out = new Uint32Array(width * height);
  const dx = (x1 - x0) / width, dy = (y1 - y0) / height;
  for (let j = 0; j < height; j++) {
    const cy = y0 + j * dy;
    for (let i = 0; i < width; i++) {
      const cx = x0 + i * dx;
      let zr = 0, zi = 0, k = 0;
      while (k < maxIter) {
        const zr2 = zr * zr, zi2 = zi * zi;
        if (zr2 + zi2 > 4.0) break;
        zi = (2.0 * zr) * zi + cy;
        zr = (zr2 - zi2) + cx;
        k++;
      }
      out[j * width + i] = k;
    }
  }
  return out;
}

// numpy.histogram(x, bins, range=(lo, hi)) with uniform bins: numpy's linspace edges and its
// index computation and edge corrections. Values outside [lo, hi] and NaN are ignored. For
// float32 input numpy 2 works in float32 (edges, x - lo, comparisons; lo and hi are weak Python
// floats) and divides by hi - lo in float64; with f32Range (lo, hi are the float32 data's own
// min and max, numpy float32 scalars) every step is float32. `denom` replaces hi - lo (numpy's
// exact integer max - min for integer data). Math.fround of a double +, -, * or / of float32
// values is the float32 operation's result.
export function histogramEdges(bins, lo, hi, { f32Range = false } = {}) {
  const edges = new Float64Array(bins + 1);
  if (f32Range) {
    const f = Math.fround;
    const delta = f(hi - lo), div = f(bins), step = f(delta / div);
    for (let i = 0; i < bins; i++) {
      edges[i] = step === 0 ? f(f(f(f(i) / div) * delta) + lo) : f(f(f(i) * step) + lo);
    }
  } else {
    const step = (hi - lo) / bins;
    for (let i = 0; i < bins; i++) {
      edges[i] = step === 0 ? (i / bins) * (hi - lo) + lo : i * step + lo;
    }
  }
  edges[bins] = hi;
  return edges;
}

export function histogram(x, bins, lo, hi, { f32Range = false, denom = 0 } = {}) {
  const f32 = x instanceof Float32Array;
  const r = f32 ? Math.fround : (v) => v;
  const edges = histogramEdges(bins, lo, hi, { f32Range }).map(r);
  const l = r(lo), h = r(hi);
  const d = f32Range ? Math.fround(h - l) : denom || hi - lo;
  const counts = new BigInt64Array(bins);
  for (let i = 0; i < x.length; i++) {
    const v = toNumber(x[i]);
    if (!(v >= edges[0] && v <= edges[bins])) continue;
    const q = f32Range ? Math.fround(Math.fround(Math.fround(v - l) / d) * Math.fround(bins))
      : (r(v - l) / d) * bins;
    let b = q >= bins ? bins - 1 : Math.trunc(q);
    if (v < edges[b]) b -= 1;
    else if (b !== bins - 1 && v >= edges[b + 1]) b += 1;
    counts[b] += 1n;
  }
  return counts;
}

// Counter-based SplitMix64 of ABI.md, in wrapping u64 arithmetic.
const M64 = (1n << 64n) - 1n;
function mix(z) {
  z = (z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n & M64;
  z = (z ^ (z >> 27n)) * 0x94D049BB133111EBn & M64;
  return z ^ (z >> 31n);
}

export function piHits(samples, seed) {
  const s = BigInt.asUintN(64, BigInt(seed));
  const h = (c) => mix((s + (c + 1n) * 0x9E3779B97F4A7C15n) & M64);
  let hits = 0n;
  for (let i = 0n; i < BigInt(samples); i++) {
    const x = Number(h(2n * i) >> 11n) * 2 ** -53;
    const y = Number(h(2n * i + 1n) >> 11n) * 2 ** -53;
    if (x * x + y * y < 1.0) hits++;
  }
  return hits;
}

export function fib(n) {
  let a = 0n, b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

// Distance in units in the last place between two doubles (or floats, with f32 = true).
export function ulps(a, b, f32 = false) {
  if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const view = f32 ? new Float32Array(2) : new Float64Array(2);
  const bits = f32 ? new Int32Array(view.buffer) : new BigInt64Array(view.buffer);
  view[0] = a; view[1] = b;
  if (f32) {
    const ord = (v) => (v < 0 ? -0x80000000 - v : v);
    return Math.abs(ord(bits[0]) - ord(bits[1]));
  }
  const ord = (v) => (v < 0n ? -(1n << 63n) - v : v);
  const d = ord(bits[0]) - ord(bits[1]);
  return Number(d < 0n ? -d : d);
}
