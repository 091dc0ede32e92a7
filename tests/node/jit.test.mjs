// The jit in Node through the JS host: modules compiled by jupyterlite_rayon/jit (Python, run
// once here to emit them) are registered with jitLoad and run with jitCall at 1-4 threads and in
// the st build; every helper loads them itself (also helpers a resize adds); results equal the
// Python function's (.py_func); reductions are bit-identical for any thread count; an index
// error, a cancel and a bad slot leave the pool working.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CODES, THREAD_RECORDS_OFFSET, THREAD_RECORD_BYTES } from '../../jupyterlite_rayon/host/abi.mjs';
import { jitCall, jitLoad } from '../../jupyterlite_rayon/host/index.mjs';
import { THREADS, makePool } from './helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Compiles the kernels for shared and plain memory and prints, per kernel and build: the wasm
// (hex), nfuncs, frame size, argument offsets, and .py_func's answers on fixed inputs.
const PROGRAM = String.raw`
import json, math, sys
import numpy as np
from jupyterlite_rayon.jit import jit, prange
from jupyterlite_rayon.jit.typeinfer import ArrayType

@jit
def energy(x):
    s = 0.0
    for i in prange(len(x)):
        s += x[i] * x[i]
    return s

@jit
def escape(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    for j in prange(h):
        cy = y0 + j * (y1 - y0) / h
        for i in range(w):
            cx = x0 + i * (x1 - x0) / w
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cx, 2.0 * zr * zi + cy
                k += 1
            out[j, i] = k

@jit
def floor_mod(x, out, d):
    for i in prange(len(x)):
        out[i] = x[i] // d + x[i] % d

@jit
def at(x, i):
    return x[i]

@jit
def spin(n):
    k = 0
    while k < n:
        k += 1
    return k

x = np.random.default_rng(5).uniform(-1, 1, 100_003)
ints = np.arange(-500, 500, dtype=np.int64)
img = np.zeros((37, 53), np.uint32)
escape.py_func(img, -2.0, 1.0, -1.2, 1.2, 120)
fm = np.zeros(1000, np.int64)
floor_mod.py_func(ints, fm, -7)
kernels = {
    "energy": (energy, (ArrayType("float64", 1),)),
    "escape": (escape, (ArrayType("uint32", 2), "f64", "f64", "f64", "f64", "i64")),
    "floor_mod": (floor_mod, (ArrayType("int64", 1), ArrayType("int64", 1), "i64")),
    "at": (at, (ArrayType("float64", 1), "i64")),
    "spin": (spin, ("i64",)),
}
out = {"inputs": {"x": x.tolist(), "ints": ints.tolist()},
       "want": {"energy": energy.py_func(x), "escape": img.ravel().tolist(),
                "floor_mod": fm.tolist()},
       "kernels": {}}
for shared in (True, False):
    for name, (fn, types) in kernels.items():
        k = fn.compile(types, shared)
        out["kernels"][f"{name}/{'mt' if shared else 'st'}"] = {
            "wasm": k.wasm.hex(), "nfuncs": k.lowered.nfuncs, "size": k.lowered.frame.size,
            "args": k.lowered.frame.args}
print(json.dumps(out))
`;

// The jit reads its functions' source, so the program runs from a file.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jr-jit-'));
const script = path.join(dir, 'kernels.py');
fs.writeFileSync(script, PROGRAM);
const python = process.env.PYTHON || 'python3';
const F = JSON.parse(execFileSync(python, [script], { cwd: ROOT, encoding: 'utf8',
  maxBuffer: 64 << 20 }));
fs.rmSync(dir, { recursive: true, force: true });

const hex = (s) => Uint8Array.from(s.match(/../g), (b) => parseInt(b, 16));

// One pool's loaded kernels: name -> {base, spec}.
function loadAll(pool, build) {
  const out = {};
  for (const name of ['energy', 'escape', 'floor_mod', 'at', 'spin']) {
    const spec = F.kernels[`${name}/${build}`];
    out[name] = { base: jitLoad(pool, hex(spec.wasm), spec.nfuncs), spec };
  }
  return out;
}

// A frame for `spec` with its arguments: each scalar is [kind, value], each array
// [typedArray] (copied into pool memory) -> {ctx, arrays: [{ptr, typed}]}.
function frame(pool, spec, args) {
  const ctx = pool.alloc(spec.size, true);
  const dv = () => new DataView(pool.memory.buffer);
  const arrays = [];
  Object.values(spec.args).forEach((offset, i) => {
    const a = args[i];
    if (ArrayBuffer.isView(a.typed)) {
      const ptr = pool.alloc(Math.max(a.typed.byteLength, 1), false);
      pool.view(a.typed.constructor, ptr, a.typed.length).set(a.typed);
      dv().setUint32(ctx + offset, ptr, true);
      a.shape.forEach((extent, d) => dv().setBigInt64(ctx + offset + 8 * (1 + d), BigInt(extent),
        true));
      arrays.push({ ptr, typed: a.typed });
    } else if (a.f64 !== undefined) dv().setFloat64(ctx + offset, a.f64, true);
    else dv().setBigInt64(ctx + offset, BigInt(a.i64), true);
  });
  return { ctx, arrays, dv };
}

function run(pool, k, args) {
  const f = frame(pool, k.spec, args);
  const status = jitCall(pool, k.base, f.ctx);
  const dv = f.dv();
  const result = { status, errCode: dv.getInt32(f.ctx, true), errA: dv.getBigInt64(f.ctx + 8, true),
    errB: dv.getBigInt64(f.ctx + 16, true), f64: dv.getFloat64(f.ctx + 24, true),
    i64: dv.getBigInt64(f.ctx + 24, true),
    arrays: f.arrays.map(({ ptr, typed }) => pool.view(typed.constructor, ptr, typed.length)
      .slice()) };
  for (const { ptr } of f.arrays) pool.free(ptr);
  pool.free(f.ctx);
  return result;
}

const x = Float64Array.from(F.inputs.x);
const ints = BigInt64Array.from(F.inputs.ints.map(BigInt));

function checkAll(pool, k) {
  const e = run(pool, k.energy, [{ typed: x, shape: [x.length] }]);
  assert.equal(e.status, 0);
  assert.ok(Math.abs(e.f64 - F.want.energy) <= 1e-12 * F.want.energy, `${e.f64}`);
  const img = new Uint32Array(37 * 53);
  const m = run(pool, k.escape, [{ typed: img, shape: [37, 53] }, { f64: -2 }, { f64: 1 },
    { f64: -1.2 }, { f64: 1.2 }, { i64: 120 }]);
  assert.equal(m.status, 0);
  assert.deepEqual(Array.from(m.arrays[0]), F.want.escape);
  const fm = run(pool, k.floor_mod, [{ typed: ints, shape: [ints.length] },
    { typed: new BigInt64Array(1000), shape: [1000] }, { i64: -7 }]);
  assert.equal(fm.status, 0);
  assert.deepEqual(Array.from(fm.arrays[1], Number), F.want.floor_mod);
  return e.f64;
}

test('jitted kernels equal .py_func at 1-4 threads; reductions bit-identical; st build too', async () => {
  const sums = new Set();
  for (const threads of THREADS) {
    const pool = await makePool(threads);
    try {
      sums.add(checkAll(pool, loadAll(pool, 'mt')));
    } finally {
      await pool.terminate();
    }
  }
  const st = await makePool(1, { build: 'st' });
  try {
    assert.equal(st.threaded, false);
    sums.add(checkAll(st, loadAll(st, 'st')));
  } finally {
    await st.terminate();
  }
  assert.equal(sums.size, 1, `energy differs between thread counts: ${[...sums]}`);
});

test('helpers a resize adds load the modules when they first run a chunk', async () => {
  const pool = await makePool(1);
  try {
    const k = loadAll(pool, 'mt');
    checkAll(pool, k); // loaded by the caller only
    await pool.resize(4);
    for (let i = 0; i < 10; i++) checkAll(pool, k);
    const records = pool.view(Uint32Array, pool.counters + THREAD_RECORDS_OFFSET,
      4 * THREAD_RECORD_BYTES / 4);
    const loaded = [0, 1, 2, 3].map((i) => records[i * THREAD_RECORD_BYTES / 4 + 1]);
    assert.equal(loaded[0], 5, `jit_modules per thread: ${loaded}`);
    assert.ok(loaded.filter((n) => n === 5).length >= 2, `jit_modules per thread: ${loaded}`);
  } finally {
    await pool.terminate();
  }
});

test('an index error, a cancel and a bad slot are statuses; the pool keeps working', async () => {
  let polls = 0;
  let cancelAfter = Infinity;
  const pool = await makePool(2, { poll: () => ++polls > cancelAfter });
  try {
    const k = loadAll(pool, 'mt');
    const bad = run(pool, k.at, [{ typed: x, shape: [x.length] }, { i64: x.length + 3 }]);
    assert.equal(bad.status, CODES.E_INDEX);
    assert.equal(bad.errA, BigInt(x.length + 3));
    assert.equal(bad.errB, BigInt(x.length));
    const ok = run(pool, k.at, [{ typed: x, shape: [x.length] }, { i64: -1 }]);
    assert.equal(ok.status, 0);
    assert.equal(ok.f64, x[x.length - 1]);
    polls = 0;
    cancelAfter = 3;
    const start = performance.now();
    const spun = run(pool, k.spin, [{ i64: 2n ** 62n }]); // centuries without the cancel
    assert.equal(spun.status, CODES.E_CANCELED);
    assert.ok(performance.now() - start < 5000);
    cancelAfter = Infinity;
    assert.equal(run(pool, k.spin, [{ i64: 1000 }]).i64, 1000n);
    assert.equal(jitCall(pool, 0, 0), CODES.E_INVAL); // slot 0 is not a jitted main
    assert.equal(jitCall(pool, k.spin.base + 100, 0), CODES.E_INVAL);
    checkAll(pool, k);
  } finally {
    await pool.terminate();
  }
});
