// The pool's life on the real pool-mt.wasm / pool-st.wasm: resizing under calls, cancellation,
// memory growth, flat memory over many calls, the single-thread build, bad input, idle CPU.
import test from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import { COUNTERS_HEADER, STATUS_ADVICE } from '../../jupyterlite_rayon/host/abi.mjs';
import { createPool, PoolError, readCounters } from '../../jupyterlite_rayon/host/index.mjs';
import { jitLoader } from '../../jupyterlite_rayon/host/modules.mjs';
import { threadRuntime } from '../../jupyterlite_rayon/host/thread_runtime.mjs';
import { makeWasi } from '../../jupyterlite_rayon/host/wasi.mjs';
import * as ref from './reference.mjs';
import { HELPERS_PATH, HOST_PATH, K, allocOnStartModule, firstMismatch, makePool, randomArray,
  runNode, wasmBytes } from './helpers.mjs';

const X = randomArray(Float64Array, 100003, 5);
const SUM = ref.reduce('sum', X);
const MANDEL = ref.mandelbrot(64, 48, -2, 1, -1.5, 1.5, 200);

// A mandelbrot inside the set: every pixel runs max_iter iterations (about a second or more on
// one thread), in many short rows. host_poll runs only every 1024 tasks of the caller (ABI.md),
// and a call has at most 4096 chunks, so short chunks keep the cancel latency short.
const LONG = [16, 65536, -0.1, 0.1, -0.1, 0.1, 300];

function checkKernels(pool, what) {
  assert.ok(Object.is(K.reduce(pool, 'sum', X), SUM), `${what}: sum`);
  assert.equal(firstMismatch(K.mandelbrot(pool, 64, 48, -2, 1, -1.5, 1.5, 200), MANDEL), null,
    `${what}: mandelbrot`);
  assert.equal(K.fib(pool, 18), ref.fib(18), `${what}: fib`);
}

test('createPool starts the requested threads and reports them', async () => {
  const pool = await makePool(3);
  try {
    assert.equal(pool.threaded, true);
    assert.equal(pool.fallbackReason, null);
    assert.equal(pool.threads, 3);
    assert.equal(pool.workers, 2);
    assert.ok(pool.memory.buffer instanceof SharedArrayBuffer);
    const s = pool.status();
    assert.equal(s.threads, 3);
    assert.equal(s.maxThreads, 64);
    assert.equal(s.threaded, true);
    assert.equal(s.perThread.length, 3);
    assert.equal(s.inCall, false);
    assert.ok(s.runtimeBytes > 0);
    assert.equal(s.calls, 0);
    checkKernels(pool, 'fresh pool');
    assert.equal(pool.status().calls, 3, 'sum, mandelbrot and fib: three kernel calls');
  } finally {
    await pool.terminate();
  }
});

test('resize 1 -> 4 -> 2 (and more) under repeated calls, no reload', async () => {
  const pool = await makePool(1);
  try {
    for (const n of [1, 4, 2, 4, 1, 3, 2]) {
      await pool.resize(n);
      assert.equal(pool.threads, n);
      assert.equal(pool.workers, n - 1, 'idle workers are terminated, new ones awaited');
      assert.equal(pool.status().perThread.length, n);
      for (let r = 0; r < 3; r++) checkKernels(pool, `threads=${n} round ${r}`);
    }
    await assert.rejects(pool.resize(0), /from 1 to 64/);
    await assert.rejects(pool.resize(65), /from 1 to 64/);
    assert.equal(pool.threads, 2);
    checkKernels(pool, 'after refused resizes');
  } finally {
    await pool.terminate();
  }
});

test('a call during a resize is refused with E_BUSY, then works', async () => {
  const pool = await makePool(1);
  try {
    const growing = pool.resize(4);
    assert.throws(() => K.fib(pool, 10), (e) => e instanceof PoolError && e.code === -8);
    await growing;
    checkKernels(pool, 'after resize');
  } finally {
    await pool.terminate();
  }
});

test('cancel through poll during a long mandelbrot, then the next call is correct', async () => {
  for (const threads of [1, 2]) {
    let polls = 0;
    let during = null;
    let pool = null;
    // poll runs on the caller inside the call: status() must work there (no call into wasm).
    const poll = () => { during ||= pool.status(); return ++polls >= 1; };
    pool = await makePool(threads, { poll });
    try {
      assert.throws(() => K.mandelbrot(pool, ...LONG), { name: 'E_CANCELED', code: -3 });
      assert.ok(polls >= 1);
      assert.equal(during.inCall, true, 'status() during the call sees it running');
      assert.equal(during.threads, threads);
      assert.equal(pool.status().inCall, false);
      polls = -1e9; // do not cancel again
      checkKernels(pool, `threads=${threads} after poll cancel`);
      assert.equal(pool.status().cancel, false, 'the host clears the flag before each call');
    } finally {
      await pool.terminate();
    }
  }
});

test('pool.cancel() stores the flag the running call sees',
  async () => {
    let pool = null;
    let polls = 0;
    // poll runs on the caller while it waits: the one moment this thread can act mid-call.
    pool = await makePool(2, { poll: () => { if (++polls === 1) pool.cancel(); return 0; } });
    try {
      assert.throws(() => K.mandelbrot(pool, ...LONG), { name: 'E_CANCELED' });
      polls = -1e9;
      checkKernels(pool, 'after pool.cancel');
    } finally {
      await pool.terminate();
    }
  });

test('cancel from another thread through the counters block',
  async () => {
    const pool = await makePool(2);
    // A separate worker that shares the memory watches `in_call` and sets `cancel` as soon as
    // the call runs (no fixed delay: the test does not depend on how fast the machine is).
    const at = (field) => pool.counters + COUNTERS_HEADER[field][0];
    const canceller = new Worker(`
      const { parentPort, workerData: { memory, inCall, cancel } } = require('node:worker_threads');
      parentPort.once('message', () => {
        const nap = new Int32Array(new SharedArrayBuffer(4));
        while (Atomics.load(new Int32Array(memory.buffer), inCall / 4) === 0) {
          Atomics.wait(nap, 0, 0, 1);
        }
        Atomics.store(new Int32Array(memory.buffer), cancel / 4, 1);
      });
      parentPort.postMessage('ready');`,
    { eval: true,
      workerData: { memory: pool.memory, inCall: at('in_call'), cancel: at('cancel') } });
    try {
      await new Promise((resolve) => canceller.once('message', resolve));
      canceller.postMessage('go');
      assert.throws(() => K.mandelbrot(pool, ...LONG), { name: 'E_CANCELED' });
      checkKernels(pool, 'after cross-thread cancel');
    } finally {
      await canceller.terminate();
      await pool.terminate();
    }
  });

test('memory growth while a view is held: re-derived views see the new memory', async () => {
  for (const build of ['mt', 'st']) {
    const pool = await makePool(build === 'mt' ? 2 : 1, { build });
    try {
      const small = pool.alloc(8 * 16);
      const held = pool.view(Float64Array, small, 16);
      held.set(Float64Array.from({ length: 16 }, (_, i) => i * 1.5));
      const before = pool.memory.buffer.byteLength;
      const n = 4 * 1024 * 1024; // 32 MiB of doubles: more than the initial memory
      const big = pool.alloc(8 * n);
      assert.ok(pool.memory.buffer.byteLength > before, 'memory grew');
      if (build === 'st') assert.equal(held.byteLength, 0, 'a non-shared buffer is detached');
      const fresh = pool.view(Float64Array, big, n);
      assert.equal(fresh.length, n);
      fresh.fill(0.5);
      fresh[n - 1] = 2;
      assert.deepEqual([...pool.view(Float64Array, small, 16)],
        Array.from({ length: 16 }, (_, i) => i * 1.5));
      {
        // On the resident array (copying a view of pool memory into a new allocation could
        // grow memory under the view being read: exactly the hazard this test is about).
        const out = pool.alloc(8);
        pool.call('jr_reduce', 2, 0, big, n, out);
        assert.equal(pool.view(Float64Array, out, 1)[0], 2);
        pool.free(out);
      }
      pool.free(big);
      pool.free(small);
    } finally {
      await pool.terminate();
    }
  }
});

test('1000 back-to-back calls keep memory flat', async () => {
  const pool = await makePool(4);
  try {
    const x = randomArray(Float64Array, 20011, 3, { nanEvery: 101 });
    const round = (i) => {
      K.reduce(pool, ['sum', 'min', 'mean'][i % 3], x);
      if (i % 10 === 0) K.sort(pool, x); // uses scratch memory
      if (i % 10 === 5) K.cumsum(pool, x);
      K.forChunks(pool, 1000);
    };
    for (let i = 0; i < 20; i++) round(i); // warm up: the allocator's free lists fill
    const start = pool.status(), memStart = pool.memory.buffer.byteLength;
    for (let i = 0; i < 1000; i++) round(i);
    const end = pool.status();
    assert.equal(end.bytesInUse, start.bytesInUse, 'bytesInUse back to the start');
    assert.equal(pool.memory.buffer.byteLength, memStart, 'memory did not grow');
    // Two calls a round, plus a sort and a cumsum every 10 rounds.
    assert.equal(end.calls - start.calls, 2200, 'every call counted once');
    assert.equal(end.inCall, false);
  } finally {
    await pool.terminate();
  }
});

test('pool-st.wasm gives the same answers through the same API', async () => {
  const mt = await makePool(3);
  const st = await createPool({ wasm: { mt: wasmBytes('mt'), st: wasmBytes('st') },
    threaded: false, threads: 3 });
  try {
    assert.equal(st.threaded, false);
    assert.equal(st.threads, 1);
    assert.equal(st.workers, 0);
    assert.match(st.fallbackReason, /one thread/);
    assert.ok(!(st.memory.buffer instanceof SharedArrayBuffer));
    await assert.rejects(st.resize(2), /exactly 1 thread/);
    assert.equal(await st.resize(1), 1);
    assert.throws(() => st.setThreads(2),
      (e) => e.code === -1 && /exactly 1 thread/.test(e.message));
    assert.equal(st.setThreads(1), 1);
    checkKernels(st, 'st');
    for (const n of [0, 1, 4095, 4097, 100003]) {
      const x = randomArray(Float64Array, n, n + 1);
      const f32 = Float32Array.from(x);
      const cases = [
        ['sum', (p) => K.reduce(p, 'sum', x)],
        ['mean f32', (p) => K.reduce(p, 'mean', f32)],
        ['dot', (p) => K.dot(p, x, x)],
        ['cumsum', (p) => K.cumsum(p, x)],
        ['sort', (p) => K.sort(p, x)],
        ['histogram', (p) => K.histogram(p, x, 17, -90, 90)],
        ['sin', (p) => K.unary(p, 'sin', x)],
      ];
      for (const [what, run] of cases) {
        const a = run(mt), b = run(st);
        if (typeof a === 'object') assert.equal(firstMismatch(a, b), null, `${what} n=${n}`);
        else assert.ok(Object.is(a, b), `${what} n=${n}: mt ${a} st ${b}`);
      }
    }
    assert.equal(K.pi(st, 5000, 3), ref.piHits(5000, 3));
  } finally {
    await st.terminate();
    await mt.terminate();
  }
});

test('threaded: auto picks mt here; a single st build falls back with a reason', async () => {
  const auto = await createPool({ wasm: { mt: wasmBytes('mt'), st: wasmBytes('st') }, threads: 2 });
  const only = await createPool({ wasm: wasmBytes('st'), threads: 2 });
  try {
    assert.equal(auto.threaded, true);
    assert.equal(auto.threads, 2);
    assert.equal(only.threaded, false);
    assert.equal(only.threads, 1);
    await assert.rejects(createPool({ wasm: wasmBytes('st'), threaded: true }),
      /needs the threaded build/);
  } finally {
    await auto.terminate();
    await only.terminate();
  }
});

test('without shared memory, auto falls back to pool-st.wasm and says why', async () => {
  // A Node without SharedArrayBuffer stands in for a page that is not cross-origin isolated.
  const code = `
    import { createPool } from ${HOST_PATH};
    import { wasmBytes, K } from ${HELPERS_PATH};
    const wasm = { mt: wasmBytes('mt'), st: wasmBytes('st') };
    const pool = await createPool({ wasm, threads: 2 });
    const x = Float64Array.from({ length: 10007 }, (_, i) => i * 0.25);
    let refused = '';
    try { await createPool({ wasm, threaded: true }); } catch (e) { refused = e.message; }
    console.log(JSON.stringify({ threaded: pool.threaded, threads: pool.threads,
      reason: pool.fallbackReason, fib: String(K.fib(pool, 20)), refused,
      sum: K.reduce(pool, 'sum', x) }));
    await pool.terminate();`;
  const run = await runNode(code, { flags: ['--no-harmony-sharedarraybuffer'] });
  assert.equal(run.code, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal(r.threaded, false);
  assert.equal(r.threads, 1);
  assert.match(r.reason,
    /SharedArrayBuffer is not available; to fix: .*Cross-Origin-Opener-Policy/);
  assert.equal(r.fib, String(ref.fib(20)));
  assert.match(r.refused, /threads are not available here/);
  const x = Float64Array.from({ length: 10007 }, (_, i) => i * 0.25);
  assert.equal(r.sum, ref.reduce('sum', x));
});

test('a compiled WebAssembly.Module works too (limits from ABI.md, build from its exports)',
  async () => {
    const mt = await WebAssembly.compile(wasmBytes('mt'));
    const st = await WebAssembly.compile(wasmBytes('st'));
    const pool = await createPool({ wasm: mt, threads: 2 });
    const single = await createPool({ wasm: st, threads: 2 });
    try {
      assert.equal(pool.threaded, true);
      assert.equal(pool.threads, 2);
      assert.equal(single.threaded, false);
      assert.ok(pool.memory.buffer.byteLength >= 64 * 65536);
      checkKernels(pool, 'from a Module');
      checkKernels(single, 'st from a Module');
    } finally {
      await pool.terminate();
      await single.terminate();
    }
  });

test('bad input gives clear errors and the pool keeps working', async () => {
  const pool = await makePool(2);
  try {
    const x = pool.alloc(8 * 100);
    const out = pool.alloc(8 * 100);
    const memBytes = pool.memory.buffer.byteLength;
    const expectStatus = (fn, name, pattern) => {
      assert.throws(fn, (e) => e instanceof PoolError && e.name === name &&
        pattern.test(e.message), `expected ${name} matching ${pattern}`);
      checkKernels(pool, `after ${name}`);
    };
    // Lengths past the end of memory, absurd lengths, null pointers: E_RANGE.
    expectStatus(() => pool.call('jr_reduce', 0, 0, x, memBytes / 8, out), 'E_RANGE',
      /^jr_reduce: .*\(E_RANGE\); an array lies outside pool memory/);
    expectStatus(() => pool.call('jr_reduce', 0, 0, x, 2 ** 31 - 1, out), 'E_RANGE', /E_RANGE/);
    expectStatus(() => pool.call('jr_reduce', 0, 0, 0, 10, out), 'E_RANGE', /E_RANGE/);
    expectStatus(() => pool.call('jr_reduce', 0, 0, x, 100, 2 ** 32 - 8), 'E_RANGE', /E_RANGE/);
    // Unknown op and dtype codes: E_INVAL; an output inside the input: E_INVAL.
    expectStatus(() => pool.call('jr_reduce', 9, 0, x, 100, out), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_reduce', 0, 17, x, 100, out), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_reduce', 0, 0, x, 100, x + 8), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_reduce', 1, 0, x, 0, out), 'E_EMPTY', /empty/);
    // Lengths beyond 32 bits never reach wasm (they would silently wrap).
    assert.throws(() => pool.call('jr_reduce', 0, 0, x, 2 ** 40, out), RangeError);
    assert.throws(() => pool.call('jr_reduce', 0, 0, x, 1.5, out), /integer/);
    assert.throws(() => pool.call('jr_reduce', 0, 0, x, 100), /takes 5 arguments/);
    // Mismatched sizes: y shorter than n runs past the end of memory.
    const tail = memBytes - 8 * 10;
    expectStatus(() => pool.call('jr_map_binary', 0, 0, x, tail, out, 100), 'E_RANGE',
      /E_RANGE/);
    expectStatus(() => pool.call('jr_map_binary', 0, 0, x, x, x + 8, 100), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_map_unary', 3, 2, x, out, 100), 'E_DTYPE', /float64/);
    expectStatus(() => pool.call('jr_histogram', 0, x, 100, 0, 0, 1, out, 0, 0, 0), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_histogram', 0, x, 100, 10, 1, 1, out, 0, 0, 0), 'E_INVAL',
      /E_INVAL/);
    expectStatus(() => pool.call('jr_histogram', 0, x, 100, 10, 0, Infinity, out, 0, 0, 0), 'E_INVAL',
      /E_INVAL/);
    // Sizes whose byte counts overflow 32 bits: E_INVAL; that fit but pass memory: E_RANGE.
    expectStatus(() => pool.call('jr_matmul', 0, x, x, out, 65536, 65536, 65536), 'E_INVAL',
      /E_INVAL/);
    expectStatus(() => pool.call('jr_matmul', 0, x, x, out, 4096, 4096, 4096), 'E_RANGE',
      /E_RANGE/);
    expectStatus(() => pool.call('jr_matmul', 2, x, x, out, 2, 2, 2), 'E_DTYPE', /E_DTYPE/);
    // integer true division and sqrt of uint64 are not the pool's (hosts go through float64)
    expectStatus(() => pool.call('jr_map_binary', 3, 2, x, x, out, 100), 'E_DTYPE', /E_DTYPE/);
    expectStatus(() => pool.call('jr_map_unary', 0, 5, x, out, 100), 'E_DTYPE', /E_DTYPE/);
    expectStatus(() => pool.call('jr_reduce', 0, 6, x, 100, out), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_sort', 0, x, x + 8, 99), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_clip', 2, x, NaN, 5, out, 100), 'E_INVAL', /E_INVAL/);
    expectStatus(() => pool.call('jr_mandelbrot', out, 65536, 65536, -2, 1, -1, 1, 10),
      'E_RANGE', /E_RANGE/);
    // Counts for 2**31 bins (16 GiB) cannot be in a 32-bit memory.
    expectStatus(() => pool.call('jr_histogram', 0, x, 100, 2 ** 31, 0, 1, out, 0, 0, 0), 'E_RANGE',
      /E_RANGE/);
    // i64 arguments: Numbers up to 2**53 and BigInts; beyond that a Number is refused.
    assert.equal(K.pi(pool, 1000n, 42n), ref.piHits(1000, 42));
    assert.throws(() => pool.call('jr_pi', 2 ** 60, 0, out), /BigInt beyond 2\*\*53/);
    // Out of memory: more than the 2 GiB maximum, and 0 bytes is still a valid block.
    assert.throws(() => pool.alloc(2 ** 32 - 1), (e) => e instanceof PoolError &&
      e.name === 'E_NOMEM' && e.code === -2 && e.status === 'E_NOMEM' &&
      e.kernel === 'pool.alloc' && e.detail === pool.strerror(-2) &&
      e.advice === STATUS_ADVICE[-2] &&
      /^pool\.alloc: cannot allocate 4294967295 bytes \(pool memory is .* of at most 2048\.0 MiB/
        .test(e.message) && e.message.endsWith(`(E_NOMEM); ${STATUS_ADVICE[-2]}`));
    assert.throws(() => pool.alloc(-1), RangeError);
    assert.throws(() => pool.alloc(2 ** 33), RangeError);
    const empty = pool.alloc(0);
    assert.ok(empty > 0);
    pool.free(empty);
    pool.free(0);
    assert.throws(() => pool.free(-5), RangeError);
    pool.free(x);
    pool.free(out);
    checkKernels(pool, 'after every bad input');
    assert.equal(pool.status().bytesInUse, 0);
  } finally {
    await pool.terminate();
  }
});

test('a failed status is one PoolError: code, status, kernel, detail, advice', async () => {
  const pool = await makePool(2);
  try {
    const x = pool.alloc(800), out = pool.alloc(8);
    let error = null;
    try { pool.call('jr_reduce', 1, 0, x, 0, out); } catch (e) { error = e; }
    assert.ok(error instanceof PoolError, `got ${error}`);
    assert.equal(error.code, -4);
    assert.equal(error.status, 'E_EMPTY');
    assert.equal(error.name, 'E_EMPTY');
    assert.equal(error.kernel, 'jr_reduce');
    assert.equal(error.detail, pool.strerror(-4));
    assert.ok(error.detail.length > 0, 'jr_strerror says what happened');
    assert.equal(error.advice, STATUS_ADVICE[-4]);
    assert.equal(error.message, `jr_reduce: ${error.detail} (E_EMPTY); ${STATUS_ADVICE[-4]}`);
    // pool.value gives the raw return value: the same status, not thrown.
    assert.equal(pool.value('jr_reduce', 1, 0, x, 0, out), -4);
    assert.equal(pool.call('jr_reduce', 0, 0, x, 100, out), 0);
    pool.free(x);
    pool.free(out);
  } finally {
    await pool.terminate();
  }
});

test('allocInto stores the address into its cell; freeCell frees it once and zeroes the cell',
  async () => {
    const pool = await makePool(2);
    try {
      const base = pool.status().bytesInUse;
      const cells = pool.alloc(16, true);
      const cellsBytes = pool.status().bytesInUse - base;
      const u32 = () => pool.view(Uint32Array, cells, 4);
      const x = pool.allocInto(cells + 4, 8 * 1000, true);
      assert.equal(u32()[1], x, 'the cell holds what allocInto returned');
      assert.deepEqual([...pool.view(Float64Array, x, 1000)], new Array(1000).fill(0));
      assert.ok(pool.status().bytesInUse - base >= cellsBytes + 8000);
      pool.freeCell(cells + 4);
      assert.equal(u32()[1], 0, 'freeCell zeroes the cell');
      pool.freeCell(cells + 4); // the second free finds 0: a no-op
      pool.freeCell(cells + 8); // a cell that never held a block
      assert.equal(pool.status().bytesInUse - base, cellsBytes, 'freed once, nothing leaked');
      // A failed allocation leaves 0 in the cell, so its owner frees nothing.
      u32()[2] = 7;
      assert.throws(() => pool.allocInto(cells + 8, 2 ** 32 - 1), (e) => e instanceof PoolError &&
        e.name === 'E_NOMEM' && e.kernel === 'pool.allocInto');
      assert.equal(u32()[2], 0);
      // A cell that is no u32 of pool memory is refused before anything is allocated.
      for (const bad of [0, cells + 2, -4, 1.5, pool.memory.buffer.byteLength, 2 ** 32]) {
        assert.throws(() => pool.allocInto(bad, 8), RangeError, `allocInto(${bad})`);
        assert.throws(() => pool.freeCell(bad), RangeError, `freeCell(${bad})`);
      }
      assert.equal(pool.status().bytesInUse - base, cellsBytes);
      pool.free(cells);
      assert.equal(pool.status().bytesInUse, base);
    } finally {
      await pool.terminate();
    }
    pool.freeCell(4); // a no-op on a terminated pool, like free
  });

test('control exports go through pool members, never raw', async () => {
  const pool = await makePool(2);
  try {
    for (const [name, member] of [['jr_alloc', /pool\.alloc/], ['jr_free', /pool\.free/],
      ['jr_alloc_into', /pool\.allocInto/], ['jr_free_cell', /pool\.freeCell/],
      ['jr_set_threads', /pool\.setThreads\(n\) or await pool\.resize\(n\)/],
      ['jr_counters', /pool\.counters/], ['jr_max_threads', /pool\.maxThreads/],
      ['jr_strerror', /pool\.strerror/]]) {
      assert.throws(() => pool.call(name, 1), (e) => e instanceof TypeError &&
        member.test(e.message), `call ${name}`);
      assert.throws(() => pool.value(name, 1), (e) => e instanceof TypeError &&
        member.test(e.message), `value ${name}`);
    }
    assert.equal(pool.maxThreads, 64);
    assert.equal(pool.counters, pool.exports.jr_counters());
    assert.equal(pool.counters % 64, 0);
    checkKernels(pool, 'after refused control exports');
  } finally {
    await pool.terminate();
  }
});

test('readCounters decodes the block from the generated offsets; status() is that', async () => {
  const pool = await makePool(3);
  try {
    checkKernels(pool, 'before reading');
    // Helpers spin a little after a call, and a late wake-up makes one spin again, so busy and
    // a thread's state can change between two reads: take a pair of reads that agree (a
    // status() that decodes differently never does).
    let decoded, status, memoryBytes;
    for (let tries = 0; tries < 200; tries++) {
      decoded = readCounters(pool.memory.buffer, pool.counters);
      ({ memoryBytes, ...status } = pool.status());
      if (isDeepStrictEqual(decoded, status)) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(decoded, status);
    assert.equal(memoryBytes, pool.memory.buffer.byteLength);
    assert.equal(decoded.magic, 0x4a52504c);
    assert.equal(decoded.abiVersion, 2); // kernels/ABI.md: 2 since the jit's exports
    assert.equal(decoded.threads, 3);
    assert.equal(decoded.maxThreads, 64);
    assert.equal(decoded.threaded, true);
    assert.equal(decoded.inCall, false);
    assert.equal(decoded.cancel, false);
    assert.equal(decoded.calls, 3);
    assert.deepEqual(decoded.perThread.map((t) => t.thread), [0, 1, 2]);
    for (const t of decoded.perThread) assert.ok(['sleeping', 'working'].includes(t.state));
    // Totals are the sums of the records; the caller ran tasks in every call.
    assert.equal(decoded.tasks, decoded.perThread.reduce((a, t) => a + t.tasks, 0));
    assert.equal(decoded.steals, decoded.perThread.reduce((a, t) => a + t.steals, 0));
    assert.ok(decoded.perThread[0].tasks > 0);
    // Every field of the header is decoded (camelCase), except the reserved word.
    const names = Object.keys(COUNTERS_HEADER).filter((n) => n !== 'reserved')
      .map((n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase()));
    for (const name of names) assert.ok(name in decoded, `missing ${name}`);
    // The flag the host stores is the one the decode reads.
    pool.cancel();
    assert.equal(readCounters(pool.memory.buffer, pool.counters).cancel, true);
    checkKernels(pool, 'a call clears the cancel flag first');
    assert.equal(pool.status().cancel, false);
    assert.throws(() => readCounters(pool.memory.buffer, 3), /pass pool\.counters/);
    assert.throws(() => readCounters(pool.memory.buffer, pool.memory.buffer.byteLength),
      RangeError);
  } finally {
    await pool.terminate();
  }
});

test('an idle pool of 4 threads uses almost no CPU', async () => {
  const pool = await makePool(4);
  try {
    checkKernels(pool, 'before idling');
    await new Promise((r) => setTimeout(r, 100)); // helpers settle into their sleep
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    const c = process.cpuUsage(c0);
    const cpuMs = (c.user + c.system) / 1000, wallMs = performance.now() - t0;
    // Generous: busy-waiting helpers would burn ~4x the wall time.
    assert.ok(cpuMs < 0.2 * wallMs,
      `idle pool used ${cpuMs.toFixed(1)} ms CPU in ${wallMs.toFixed(0)} ms`);
  } finally {
    await pool.terminate();
  }
});

test('addModule loads a module into every thread of the real pool, and into later workers',
  async () => {
    const pool = await makePool(3);
    try {
      // What one jr_alloc(0) block counts in bytesInUse (the allocator rounds sizes up).
      const base = pool.status().bytesInUse;
      const probe = pool.alloc(0);
      const block = pool.status().bytesInUse - base;
      pool.free(probe);
      assert.equal(block, 32, 'ABI.md: jr_alloc(0) takes the smallest size class, 32 bytes');
      const before = pool.status().bytesInUse;
      await pool.addModule({ name: 'extra', module: allocOnStartModule() });
      // Its start function ran once in each of the 3 threads.
      assert.equal(pool.status().bytesInUse - before, 3 * block);
      assert.equal(pool.threads, 3, 'helpers were retired for the load and started again');
      checkKernels(pool, 'after addModule');
      await pool.resize(4); // the new worker loads it too
      assert.equal(pool.status().bytesInUse - before, 4 * block);
      checkKernels(pool, 'after addModule and resize');
    } finally {
      await pool.terminate();
    }
  });

test('a call from inside a running call (via poll) is refused with E_BUSY', async () => {
  let inner = null;
  let pool = null;
  let cancelling = true;
  const poll = () => {
    if (!inner) {
      try {
        K.fib(pool, 5);
        inner = 'no error';
      } catch (error) {
        inner = error;
      }
    }
    return cancelling; // and cancel the outer call
  };
  pool = await makePool(2, { poll });
  try {
    assert.throws(() => K.mandelbrot(pool, ...LONG), { name: 'E_CANCELED' });
    assert.ok(inner instanceof PoolError && inner.code === -8, `inner call: ${inner}`);
    assert.match(inner.message, /not re-entrant/);
    cancelling = false;
    checkKernels(pool, 'after the refused inner call');
  } finally {
    await pool.terminate();
  }
});

test('setThreads beyond the started workers is E_THREADS; resize then fixes it', async () => {
  const pool = await makePool(2);
  try {
    assert.throws(() => pool.setThreads(5), (e) => e instanceof PoolError &&
      e.code === -7 && e.status === 'E_THREADS' && e.kernel === 'pool.setThreads' &&
      /1 helper workers are started/.test(e.detail) && /await pool\.resize\(5\)/.test(e.message));
    assert.equal(pool.threads, 2, 'the pool keeps the threads it has');
    assert.equal(pool.workers, 1);
    checkKernels(pool, 'after E_THREADS');
    assert.throws(() => pool.setThreads(0), (e) => e instanceof RangeError &&
      /pool\.setThreads: threads must be an integer from 1 to 64, got 0/.test(e.message));
    assert.throws(() => pool.setThreads(65), RangeError);
    assert.throws(() => pool.setThreads(1.5), RangeError);
    assert.equal(pool.setThreads(1), 1);
    assert.equal(pool.status().perThread.length, 1);
    checkKernels(pool, 'after setThreads(1)');
    assert.equal(pool.setThreads(2), 2);
    checkKernels(pool, 'after setThreads(2)');
    await pool.resize(5);
    assert.equal(pool.threads, 5);
    assert.equal(pool.workers, 4);
    checkKernels(pool, 'after resize(5)');
  } finally {
    await pool.terminate();
  }
});

test('shrink then grow at once within the started workers never fails', async () => {
  const pool = await makePool(4);
  try {
    // A retired helper is still returning from wasi_thread_start when setThreads(1) returns;
    // the next spawn must wait for its worker rather than report E_THREADS.
    for (let i = 0; i < 50; i++) {
      pool.setThreads(1);
      pool.setThreads(2 + (i % 3));
      assert.equal(pool.threads, 2 + (i % 3));
    }
    checkKernels(pool, 'after 50 shrink/grow cycles');
    assert.equal(pool.workers, 3);
  } finally {
    await pool.terminate();
  }
});

test('terminate is final and idempotent; free after it is a no-op', async () => {
  const pool = await makePool(3);
  const kept = pool.alloc(64);
  const inUse = pool.status().bytesInUse;
  await pool.terminate();
  await pool.terminate();
  assert.equal(pool.workers, 0);
  assert.equal(pool.terminated, true);
  assert.throws(() => K.fib(pool, 5), { name: 'PoolTerminated' });
  await assert.rejects(pool.resize(2), { name: 'PoolTerminated' });
  assert.throws(() => pool.setThreads(2), { name: 'PoolTerminated' });
  assert.throws(() => pool.alloc(8), { name: 'PoolTerminated' });
  assert.equal(pool.free(kept), undefined, 'a late finalizer does not throw');
  assert.throws(() => pool.free(-1), RangeError, 'a bad address is still refused');
  assert.equal(pool.status().bytesInUse, inUse, 'status still reads the block');
});

// Issue 9 item 10: terminate() while a call runs, and a resize refused during a call.

test('terminate() inside a call ends the call at its next poll; the process exits', async () => {
  // In a child process with a deadline: a hang fails the test instead of hanging it.
  const code = `
    import { createPool } from ${HOST_PATH};
    import { wasmBytes, K } from ${HELPERS_PATH};
    let pool = null, polls = 0, terminating = null;
    const poll = () => { if (++polls === 2) terminating = pool.terminate(); return 0; };
    pool = await createPool({ wasm: wasmBytes('mt'), threads: 3, poll });
    const t0 = performance.now();
    let error = null;
    try { K.mandelbrot(pool, ${LONG}); } catch (e) { error = e; }
    const ms = performance.now() - t0;
    await terminating;
    let after = null;
    try { K.fib(pool, 5); } catch (e) { after = e.name; }
    console.log(JSON.stringify({ name: error?.name, kernel: error?.kernel, message: error?.message,
      polls, ms, workers: pool.workers, after }));
    // No exit call and no more terminate: the process must end on its own.`;
  const run = await runNode(code, { timeout: 60000 });
  assert.equal(run.killed, false, `the process hung: ${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal(r.name, 'PoolTerminated', r.message);
  assert.equal(r.kernel, 'jr_mandelbrot');
  assert.match(r.message, /terminated during the call; create a new one with createPool/);
  assert.equal(r.polls, 2, 'the call ended at the poll that terminated the pool');
  assert.equal(r.workers, 0);
  assert.equal(r.after, 'PoolTerminated');
});

test('terminating the worker that blocks in a call (from a timer) stops it and its helpers',
  async () => {
    // The caller is a worker (as Pyodide's kernel is); the main thread ends it mid-call.
    const code = `
      import { Worker } from 'node:worker_threads';
      // An eval worker is an ES module here (this process runs --input-type=module).
      const caller = new Worker(\`
        import { parentPort } from 'node:worker_threads';
        import { createPool } from ${HOST_PATH};
        import { wasmBytes, K } from ${HELPERS_PATH};
        const pool = await createPool({ wasm: wasmBytes('mt'), threads: 3 });
        const inCall = pool.counters + ${COUNTERS_HEADER.in_call[0]};
        parentPort.postMessage({ memory: pool.memory, inCall, workers: pool.workers });
        K.mandelbrot(pool, 16, 1 << 20, -0.1, 0.1, -0.1, 0.1, 300); // minutes on 3 threads
        parentPort.postMessage('finished');\`, { eval: true });
      const messages = [];
      caller.on('message', (m) => messages.push(m));
      const first = await new Promise((resolve) => caller.once('message', resolve));
      const words = new Int32Array(first.memory.buffer);
      while (Atomics.load(words, first.inCall / 4) === 0) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const t0 = performance.now();
      const exited = new Promise((resolve) => caller.once('exit', resolve));
      setTimeout(() => caller.terminate(), 50);
      const exitCode = await exited;
      console.log(JSON.stringify({ workers: first.workers, exitCode,
        ms: performance.now() - t0, finished: messages.includes('finished') }));`;
    const run = await runNode(code, { timeout: 60000 });
    assert.equal(run.killed, false, `the process hung: ${run.stderr}`);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout);
    assert.equal(r.workers, 2);
    assert.equal(r.exitCode, 1, 'terminate() ends a worker with exit code 1');
    assert.equal(r.finished, false, 'the call was cut off, not waited for');
  });

test('resize, setThreads and addModule during a call are refused with E_BUSY, nothing changes',
  async () => {
    // Long enough that the caller polls while it runs; short enough for the JS reference.
    const MID = [16, 4096, -0.1, 0.1, -0.1, 0.1, 300];
    const expected = ref.mandelbrot(...MID);
    let pool = null, tried = null;
    const poll = () => {
      if (!tried) {
        const outcome = (fn) => { try { return fn(); } catch (e) { return e; } };
        tried = { status: pool.status(), resize: pool.resize(4),
          addModule: pool.addModule({ name: 'extra', module: allocOnStartModule() }),
          setThreads: outcome(() => pool.setThreads(1)) };
        // Rejections are checked after the call; keep them from being reported as unhandled.
        tried.resize.catch(() => {});
        tried.addModule.catch(() => {});
      }
      return 0;
    };
    pool = await makePool(2, { poll });
    try {
      const before = pool.status();
      const got = K.mandelbrot(pool, ...MID);
      assert.equal(firstMismatch(got, expected), null, 'the running call keeps its result');
      assert.ok(tried, 'poll ran during the call');
      assert.equal(tried.status.inCall, true);
      const busy = (where) => (e) => e instanceof PoolError && e.code === -8 &&
        e.status === 'E_BUSY' && e.kernel === where && /a call is running/.test(e.message);
      await assert.rejects(tried.resize, busy('pool.resize'));
      await assert.rejects(tried.addModule, busy('pool.addModule'));
      assert.ok(busy('pool.setThreads')(tried.setThreads), `setThreads: ${tried.setThreads}`);
      const after = pool.status();
      assert.equal(pool.threads, 2);
      assert.equal(pool.workers, 1);
      assert.equal(after.bytesInUse, before.bytesInUse, 'no memory kept');
      assert.equal(after.runtimeBytes, before.runtimeBytes);
      assert.equal(after.calls, before.calls + 1);
      assert.deepEqual(Object.keys(pool.instances), ['pool']);
      // Not left "resizing": the next resize works.
      assert.equal(await pool.resize(4), 4);
      assert.equal(pool.workers, 3);
      checkKernels(pool, 'after the refused resize');
    } finally {
      await pool.terminate();
    }
  });

// The slot protocol itself, on one thread: each worker a slot gets is a new generation, and a
// worker acts only on its own generation's words (thread_runtime.mjs argues why).
test('slot generations: a retired worker never serves its successor, late or parked', () => {
  const rt = threadRuntime(makeWasi(), jitLoader());
  const ctl = rt.makeCtl(2);
  const first = rt.openSlot(ctl, 0);
  assert.equal(rt.slotState(ctl, 0), rt.S.START);
  assert.equal(rt.slotReady(ctl, 0, first), true);
  // The host retires it (EXIT, terminate(), EMPTY); a browser has not stopped it yet.
  rt.exitSlot(ctl, 0, first);
  rt.closeSlot(ctl, 0, first);
  const second = rt.openSlot(ctl, 0);
  assert.equal(second, first + 1, 'a new worker for the slot is a new generation');
  assert.throws(() => rt.openSlot(ctl, 0), /slot 0 is not empty/);
  assert.equal(rt.slotState(ctl, 0), rt.S.START);
  // The old worker's late "ready" (it was still loading) does not make the slot free...
  assert.equal(rt.slotReady(ctl, 0, first), false);
  assert.equal(rt.slotState(ctl, 0), rt.S.START);
  assert.equal(rt.slotReady(ctl, 0, second), true);
  // ...and a spawn goes to the slot, where only the new generation runs it.
  const tid = rt.spawn(ctl, 0, 1234);
  assert.ok(tid > 0);
  assert.equal(rt.slotState(ctl, 0), rt.S.GO);
  const ran = [];
  assert.equal(rt.slotLoop(ctl, 0, first, [() => ran.push('stale')]), 'exit');
  assert.deepEqual(ran, [], 'the retired worker left without running the thread');
  assert.equal(rt.slotState(ctl, 0), rt.S.GO, 'and left the slot as it found it');
  // The owner runs it; terminate() during the thread makes it leave when the thread returns.
  const start = (t, arg) => { ran.push([t, arg]); rt.exitSlot(ctl, 0, second); };
  assert.equal(rt.slotLoop(ctl, 0, second, [start]), 'exit');
  assert.deepEqual(ran, [[tid, 1234]]);
  assert.equal(rt.slotState(ctl, 0), rt.S.EXIT);
  // A worker that missed EXIT and sees its own generation's EMPTY leaves too.
  rt.closeSlot(ctl, 0, second);
  assert.equal(rt.slotLoop(ctl, 0, second, [() => ran.push('late')]), 'exit');
  // No idle worker: a spawn reports EAGAIN (-1) at once rather than waiting.
  assert.equal(rt.spawn(ctl, 0, 1), -1);
  assert.equal(ran.length, 1);
});

// Issue 11's open bug: in a browser, Worker.terminate() returns at once and the worker stops
// some time later, so a retired helper can still be parked on its slot when a regrow starts a
// new worker there. Node's terminate() is made to behave so: it returns at once and the worker
// runs on for a while. Runs in a child process with a deadline, since two threads sharing one
// helper's stack can hang the pool as well as trap it.
test('grow, shrink and regrow with workers that outlive terminate() (as in a browser)',
  async () => {
    const code = `
      import { Worker } from 'node:worker_threads';
      import { createPool } from ${HOST_PATH};
      import { wasmBytes, K, randomArray, firstMismatch } from ${HELPERS_PATH};
      import * as ref from ${JSON.stringify(new URL('./reference.mjs', import.meta.url).pathname)};
      const realTerminate = Worker.prototype.terminate;
      let lagging = 0;
      Worker.prototype.terminate = function browserLike() {
        lagging++;
        setTimeout(() => { lagging--; realTerminate.call(this); }, 40);
      };
      const X = randomArray(Float64Array, 100003, 5);
      const SUM = ref.reduce('sum', X);
      const MANDEL = ref.mandelbrot(64, 48, -2, 1, -1.5, 1.5, 200);
      const pool = await createPool({ wasm: wasmBytes('mt'), threads: 4 });
      let cycles = 0, maxLagging = 0, error = null;
      try {
        for (; cycles < 30; cycles++) {
          // init_thread_pool(4) / (2) / (1) / (4), a sweep's setThreads within the workers,
          // and growing past them again, with the kernels checked after each step.
          for (const [how, n] of [['resize', 2], ['resize', 1], ['resize', 4], ['set', 1],
            ['set', 2], ['resize', 2], ['resize', 4], ['set', 3], ['resize', 1], ['resize', 3],
            ['resize', 4]]) {
            if (how === 'resize') await pool.resize(n);
            else pool.setThreads(n);
            maxLagging = Math.max(maxLagging, lagging);
            if (pool.threads !== n) throw new Error(\`\${how}(\${n}) left \${pool.threads}\`);
            if (!Object.is(K.reduce(pool, 'sum', X), SUM)) throw new Error('sum differs');
            const bad = firstMismatch(K.mandelbrot(pool, 64, 48, -2, 1, -1.5, 1.5, 200), MANDEL);
            if (bad !== null) throw new Error(\`mandelbrot differs at \${bad}\`);
          }
        }
      } catch (e) {
        error = String(e && e.message || e);
      }
      console.log(JSON.stringify({ cycles, maxLagging, error, workers: pool.workers }));
      Worker.prototype.terminate = realTerminate;
      await pool.terminate();`;
    const run = await runNode(code, { timeout: 240000 });
    assert.equal(run.killed, false, `the pool hung: ${run.stdout} ${run.stderr}`);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout.trim().split('\n').pop());
    assert.equal(r.error, null, `after ${r.cycles} cycles: ${r.error}`);
    assert.equal(r.cycles, 30);
    assert.ok(r.maxLagging > 0, 'retired workers were still running during later resizes');
    assert.equal(r.workers, 3);
  });
