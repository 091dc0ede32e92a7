// loadForeign (host/foreign_host.mjs): a user's wasi-threads module with its caller on a worker
// of its own, on hand-assembled modules: output in order, a caller's trap it survives, an
// interrupt of a looping and of a waiting caller (poll), a helper's trap while the caller waits
// for it (no hang), terminate.
import test from 'node:test';
import assert from 'node:assert/strict';
import { loadForeign, PoolError } from '../../jupyterlite_rayon/host/index.mjs';
import { CALLER_SOURCE } from '../../jupyterlite_rayon/host/foreign_caller.mjs';
import { assemble, OP } from './helpers.mjs';

const BLOCK = [0x02, 0x40];
const I32_ADD = [0x6a];
const FOREVER = [...OP.loop, ...OP.i32(1), ...OP.brIf(0), ...OP.end];

// wasi_thread_start(tid, arg): arg 0 loops forever, else traps. spawn_and_wait(arg) spawns a
// thread with arg and waits on address 0 forever (as a join whose thread never finishes).
// say(fd, iov) writes one iovec with fd_write. add(a, b), spin() forever, trap_here().
function foreignModule() {
  return assemble({
    types: [[['i32'], ['i32']], [['i32', 'i32'], []], [['i32', 'i32', 'i32', 'i32'], ['i32']],
      [['i32', 'i32'], ['i32']], [[], []]],
    imports: [
      { module: 'env', name: 'memory', memory: { min: 1, max: 16, shared: true } },
      { module: 'wasi', name: 'thread-spawn', func: 0 },
      { module: 'wasi_snapshot_preview1', name: 'fd_write', func: 2 },
    ],
    funcs: [
      { type: 1, export: 'wasi_thread_start', body: [
        ...BLOCK, ...OP.localGet(1), ...OP.i32eqz, ...OP.brIf(0), ...OP.unreachable, ...OP.end,
        ...FOREVER] },
      { type: 0, export: 'spawn_and_wait', body: [
        ...OP.localGet(0), ...OP.call(0), ...OP.drop,
        ...OP.loop,
        ...OP.i32(0), ...OP.i32(0), ...OP.i64(-1), ...OP.atomicWait32, ...OP.drop,
        ...OP.i32(1), ...OP.brIf(0),
        ...OP.end,
        ...OP.i32(0)] },
      { type: 3, export: 'say', body: [...OP.localGet(0), ...OP.localGet(1), ...OP.i32(1),
        ...OP.i32(120), ...OP.call(1)] },
      { type: 3, export: 'add', body: [...OP.localGet(0), ...OP.localGet(1), ...I32_ADD] },
      { type: 4, export: 'spin', body: FOREVER },
      { type: 4, export: 'trap_here', body: OP.unreachable },
    ],
  });
}

function put(mod, text) {
  const bytes = new TextEncoder().encode(text);
  mod.view(Uint8Array, 200, bytes.length).set(bytes);
  mod.view(Uint32Array, 100, 2).set([200, bytes.length]);
}

// A poll that asks to stop from `after` ms on (reset with .at = Infinity).
function pollAt() {
  const poll = () => performance.now() >= poll.at;
  poll.at = Infinity;
  poll.stopIn = (ms) => { poll.at = performance.now() + ms; };
  return poll;
}

test('the caller worker source is self-contained (builds from strings)', () => {
  assert.doesNotMatch(CALLER_SOURCE, /^\s*import\s|import\.meta/m);
  assert.deepEqual(CALLER_SOURCE.match(/\bimport\((.*?)\)/g), ["import('node:worker_threads')"]);
  assert.doesNotThrow(() => new Function(CALLER_SOURCE));
});

test('calls, output in order through the call block, a caller trap it survives', async () => {
  const out = [];
  const mod = await loadForeign({ wasm: foreignModule(), helpers: 1,
    stdout: (t) => out.push(['out', t]), stderr: (t) => out.push(['err', t]) });
  try {
    assert.equal(mod.workers, 2);
    assert.equal(mod.call('add', 2, 3), 5);
    assert.equal(mod.call('add', 2 ** 32 - 1, 1), 0); // i32 wraps, as in wasm
    put(mod, 'héllo\n');
    assert.equal(mod.call('say', 1, 100), 0);
    out.push(['between']);
    assert.equal(mod.call('say', 2, 100), 0);
    // Printed during the call, before it returned, each where its fd says.
    assert.deepEqual(out, [['out', 'héllo\n'], ['between'], ['err', 'héllo\n']]);
    assert.equal(mod.view(Uint32Array, 120, 1)[0], 7);
    for (let i = 0; i < 2; i++) {
      assert.throws(() => mod.call('trap_here'), (e) => e instanceof PoolError &&
        e.name === 'WasmTrap' && /trap_here trapped: RuntimeError: unreachable/.test(e.message));
      assert.equal(mod.call('add', 1, 1), 2); // a fresh caller instance on the same memory
    }
    assert.throws(() => mod.call('add', 1), /takes 2 arguments/);
    assert.throws(() => mod.call('nope'), /no exported function "nope"/);
    assert.throws(() => mod.call('wasi_thread_start', 1, 2), /no exported function/);
    assert.throws(() => mod.call('add', 'x', 1), /argument 1 \(i32\) must be a number/);
  } finally {
    await mod.terminate();
  }
  assert.throws(() => mod.call('add', 1, 2), { name: 'Closed' });
  assert.equal(mod.workers, 0);
});

test('poll interrupts a caller that loops and one that waits; a new caller takes over',
  async () => {
    const poll = pollAt();
    const mod = await loadForeign({ wasm: foreignModule(), helpers: 2, poll });
    try {
      for (const [name, args] of [['spin', []], ['spawn_and_wait', [0]]]) {
        poll.stopIn(100);
        const t0 = performance.now();
        assert.throws(() => mod.call(name, ...args), (e) => e.name === 'Interrupted' &&
          e.code === -3 && e.kernel === name);
        const took = performance.now() - t0;
        assert.ok(took < 1000, `${name}: the interrupt took ${took.toFixed(0)} ms`);
        poll.at = Infinity;
        assert.equal(mod.ready, false);
        assert.throws(() => mod.call('add', 1, 2), { name: 'Restarting' });
        await mod.whenReady();
        assert.equal(mod.call('add', 1, 2), 3);
        assert.equal(mod.workers, 3, 'one caller, not one more per interrupt');
      }
      assert.equal(mod.fault, null, 'the helper that loops on is no fault');
    } finally {
      await mod.terminate();
    }
  });

test('a helper that traps while the caller waits for it ends the call at once', async () => {
  const mod = await loadForeign({ wasm: foreignModule(), helpers: 1 });
  try {
    const t0 = performance.now();
    assert.throws(() => mod.call('spawn_and_wait', 1), (e) => e.name === 'HelperFault' &&
      /spawn_and_wait: pool thread 1 trapped: RuntimeError: unreachable/.test(e.message));
    const took = performance.now() - t0;
    assert.ok(took < 2000, `the fault took ${took.toFixed(0)} ms to end the call`);
    assert.match(mod.fault, /pool thread 1 trapped: RuntimeError: unreachable/);
  } finally {
    await mod.terminate();
  }
});

test('loadForeign refuses what it cannot run, with what to do', async () => {
  await assert.rejects(loadForeign({ wasm: 'x.wasm' }), /must be the module's bytes/);
  const unshared = assemble({ types: [], imports: [{ module: 'env', name: 'memory',
    memory: { min: 1, max: 1, shared: false } }], funcs: [] });
  await assert.rejects(loadForeign({ wasm: unshared }), /shared env\.memory.*--shared-memory/);
  await assert.rejects(loadForeign({ wasm: foreignModule(), helpers: -1 }), /from 0 to 63/);
  await assert.rejects(loadForeign({ wasm: foreignModule(), poll: 1 }), /poll must be/);
});
