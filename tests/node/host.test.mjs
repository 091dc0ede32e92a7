// The host itself, with hand-assembled foreign wasi-threads modules: traps in a helper and in the
// caller, poll-driven cancellation, extra modules in every thread, WASI output, bad options.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createPool, readModuleInfo, PoolError } from '../../jupyterlite_rayon/host/index.mjs';
import { WORKER_SOURCE } from '../../jupyterlite_rayon/host/workers.mjs';
import { HELPERS_PATH, HOST_PATH, assemble, counterModule, OP, printModule, runNode, trapModule }
  from './helpers.mjs';

test('the module reader finds memory limits and export signatures', () => {
  const info = readModuleInfo(trapModule());
  assert.deepEqual(info.memory, { module: 'env', name: 'memory', initial: 1, maximum: 16384,
    shared: true });
  assert.deepEqual(info.signatures.wasi_thread_start, { params: ['i32', 'i32'], results: [] });
  assert.deepEqual(info.signatures.spawn_and_wait, { params: [], results: ['i32'] });
  assert.equal(readModuleInfo(new Uint8Array([1, 2, 3])), null);
});

test('the worker source is self-contained (no imports, builds from strings)', () => {
  // No static imports or import.meta (a Blob URL has no base); Node's worker_threads is the one
  // dynamic import, taken only under Node.
  assert.doesNotMatch(WORKER_SOURCE, /^\s*import\s|import\.meta/m);
  assert.deepEqual(WORKER_SOURCE.match(/\bimport\((.*?)\)/g), ["import('node:worker_threads')"]);
  assert.doesNotThrow(() => new Function(WORKER_SOURCE));
});

test('a helper thread that traps breaks the pool with a clear error, no hang', async () => {
  const pool = await createPool({ wasm: trapModule(), threads: 3 });
  try {
    assert.equal(pool.threaded, true);
    assert.equal(pool.threads, 3);
    assert.throws(() => pool.call('spawn_and_wait'), (e) => e instanceof PoolError &&
      e.name === 'PoolBroken' && /thread 1 trapped: RuntimeError: unreachable/.test(e.message) &&
      /restart/.test(e.message));
    // Every later call says the same, it never re-enters a broken pool.
    assert.throws(() => pool.call('slot_addr'), { name: 'PoolBroken' });
    assert.throws(() => pool.alloc(8), { name: 'PoolBroken' });
    assert.match(pool.broken, /trapped/);
  } finally {
    await pool.terminate();
  }
  assert.throws(() => pool.call('slot_addr'), { name: 'PoolTerminated' });
});

test('a trap in the caller thread is a WasmTrap and breaks the pool', async () => {
  const pool = await createPool({ wasm: trapModule(), threads: 2 });
  try {
    assert.throws(() => pool.call('trap_here'), (e) => e.name === 'WasmTrap' &&
      e.kernel === 'trap_here' && /unreachable/.test(e.message) && /createPool/.test(e.message));
    assert.throws(() => pool.call('slot_addr'), { name: 'PoolBroken' });
  } finally {
    await pool.terminate();
  }
});

test('poll cancels a waiting call; a spawn with no idle worker fails softly', async () => {
  let polls = 0;
  // One thread: no helper worker, so thread-spawn returns -1 and the module waits on host_poll.
  const pool = await createPool({ wasm: trapModule(), threads: 1, poll: () => ++polls >= 3 });
  try {
    assert.throws(() => pool.call('spawn_and_wait'), (e) => e instanceof PoolError &&
      e.code === -3 && e.name === 'E_CANCELED' && /ready for the next call/.test(e.message));
    assert.equal(polls, 3);
    assert.equal(pool.broken, null);
    assert.equal(pool.value('slot_addr'), 64); // the pool still works
  } finally {
    await pool.terminate();
  }
});

test('a poll callback that throws cancels the call and is reported', async () => {
  const errors = [];
  const pool = await createPool({ wasm: trapModule(), threads: 1, stderr: (t) => errors.push(t),
    poll: () => { throw new Error('interrupt source gone'); } });
  try {
    assert.throws(() => pool.call('spawn_and_wait'), { code: -3 });
    assert.match(errors.join(''), /interrupt source gone/);
  } finally {
    await pool.terminate();
  }
});

test('addModule instantiates a module in every thread, linked to earlier modules', async () => {
  for (const threads of [1, 3]) {
    const pool = await createPool({ wasm: trapModule(), threads });
    try {
      const counter = await pool.addModule({ name: 'counter', module: counterModule() });
      // Its start function ran once per thread (caller + helpers) on the shared memory.
      assert.equal(pool.view(Int32Array, 64, 1)[0], threads);
      assert.equal(counter.where(), 64);
      assert.deepEqual(Object.keys(pool.instances), ['pool', 'counter']);
      await assert.rejects(pool.addModule({ name: 'counter', module: counterModule() }),
        TypeError);
      // A module importing something nobody provides is refused with the name of the import.
      const bad = assemble({ types: [[[], []]],
        imports: [{ module: 'nowhere', name: 'f', func: 0 }], funcs: [] });
      await assert.rejects(pool.addModule({ name: 'bad', module: bad }), /nowhere\.f/);
      // A start function that traps fails in the caller first: nothing loaded, pool intact.
      const trapping = assemble({ types: [[[], []]], funcs: [{ type: 0, body: OP.unreachable }],
        start: 0 });
      await assert.rejects(pool.addModule({ name: 'trapping', module: trapping }),
        /"trapping" cannot be instantiated: unreachable/);
      assert.equal(pool.broken, null);
      assert.equal(counter.where(), 64);
      assert.deepEqual(Object.keys(pool.instances), ['pool', 'counter']);
    } finally {
      await pool.terminate();
    }
  }
});

test('WASI fd_write reaches the stdout/stderr callbacks', async () => {
  const wasm = assemble({
    types: [[['i32', 'i32', 'i32', 'i32'], ['i32']], [['i32', 'i32'], ['i32']]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 16, shared: false } },
      { module: 'wasi_snapshot_preview1', name: 'fd_write', func: 0 },
    ],
    funcs: [{ type: 1, export: 'say', body: [...OP.localGet(0), ...OP.i32(100), ...OP.i32(1),
      ...OP.localGet(1), ...OP.call(0)] }],
  });
  const out = [], err = [];
  const pool = await createPool({ wasm, threaded: false, stdout: (t) => out.push(t),
    stderr: (t) => err.push(t) });
  try {
    assert.equal(pool.threaded, false);
    const text = new TextEncoder().encode('hello from wasm\n');
    pool.view(Uint8Array, 200, text.length).set(text);
    pool.view(Uint32Array, 100, 2).set([200, text.length]);
    assert.equal(pool.call('say', 1, 120), 0);
    assert.equal(pool.call('say', 2, 120), 0);
    assert.deepEqual(out, ['hello from wasm\n']);
    assert.deepEqual(err, ['hello from wasm\n']);
    assert.equal(pool.view(Uint32Array, 120, 1)[0], text.length);
  } finally {
    await pool.terminate();
  }
});

test('bad options and arguments give clear errors', async () => {
  await assert.rejects(createPool({}), /pass wasm/);
  await assert.rejects(createPool({ wasm: 'pool.wasm' }), /BufferSource/);
  await assert.rejects(createPool({ wasm: trapModule(), threaded: 'maybe' }), /'auto', true/);
  await assert.rejects(createPool({ wasm: trapModule(), threads: 0 }), /from 1 to 64/);
  await assert.rejects(createPool({ wasm: trapModule(), threads: 2.5 }), /from 1 to 64/);
  await assert.rejects(createPool({ wasm: trapModule(), threaded: false }),
    /single-thread build/);
  await assert.rejects(createPool({ wasm: trapModule(), poll: 5 }), /poll must be a function/);
  const pool = await createPool({ wasm: trapModule(), threads: 1 });
  try {
    assert.throws(() => pool.call('nope'), /no export "nope"/);
    assert.throws(() => pool.call('slot_addr', 1), /takes 0 arguments/);
    assert.throws(() => pool.view(Float64Array, 4, 1), /multiple of 8/);
    assert.throws(() => pool.view(Float64Array, 0, 2 ** 40), /outside pool memory/);
    assert.throws(() => pool.view(Float64Array, 0, -1), /non-negative/);
    assert.throws(() => pool.view(Object, 0, 1), /TypedArray constructor/);
    assert.equal(pool.value('slot_addr'), 64);
  } finally {
    await pool.terminate();
  }
});

test('WASI output from a helper thread reaches stdout (as a message)', async () => {
  let resolve;
  const printed = new Promise((r) => { resolve = r; });
  const pool = await createPool({ wasm: printModule(), threads: 2, stdout: resolve });
  try {
    const text = new TextEncoder().encode('hello from a pool thread\n');
    pool.view(Uint8Array, 200, text.length).set(text);
    pool.view(Uint32Array, 100, 2).set([200, text.length]);
    assert.equal(pool.call('spawn_print'), 0);
    assert.equal(await printed, 'hello from a pool thread\n');
  } finally {
    await pool.terminate();
  }
});

test('a Node process exits after terminate(), and even without it', async () => {
  for (const end of ['await pool.terminate();', '/* no terminate */']) {
    const code = `
      import { createPool } from ${HOST_PATH};
      import { trapModule } from ${HELPERS_PATH};
      const pool = await createPool({ wasm: trapModule(), threads: 4 });
      console.log('workers', pool.workers);
      ${end}`;
    const result = await runNode(code);
    assert.equal(result.killed, false, `${end}: the process hung`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /workers 3/);
  }
});

test('a foreign module: value() returns plain values, calls are not re-entrant, no runtime API',
  async () => {
    let pool = null;
    let inner = null;
    // spawn_and_wait polls while it waits: try a call from inside it, then cancel.
    const poll = () => {
      if (!inner) {
        try { pool.value('slot_addr'); inner = 'no error'; } catch (e) { inner = e; }
      }
      return 1;
    };
    pool = await createPool({ wasm: trapModule(), threads: 1, poll });
    try {
      assert.equal(pool.value('slot_addr'), 64);
      assert.equal(pool.counters, 0, 'a foreign module has no counters block');
      assert.throws(() => pool.call('spawn_and_wait'), { code: -3, name: 'E_CANCELED' });
      assert.ok(inner instanceof PoolError && inner.code === -8 && inner.kernel === 'slot_addr',
        `inner: ${inner}`);
      assert.throws(() => pool.alloc(8), /no pool runtime/);
      assert.throws(() => pool.free(8), /no pool runtime/);
      assert.equal(pool.strerror(-2), '', 'no jr_strerror: no detail');
      assert.deepEqual(pool.status().perThread, []);
      assert.equal(pool.status().inCall, false);
      assert.throws(() => pool.setThreads(2), { name: 'E_THREADS' });
      assert.equal(pool.setThreads(1), 1);
    } finally {
      await pool.terminate();
    }
  });
