// pool_host.mjs: the JS host of the jupyterlite-rayon pool (a wasi-threads host).
//
// One dependency-free ES module that runs unchanged in a browser Worker (module or classic) and
// in Node (worker_threads). It compiles a pool module once, creates its memory (shared for the
// threaded build), starts and awaits the helper workers (each holds an instance on the same
// memory), then instantiates the caller's instance. Contract: kernels/ABI.md.
//
//   const pool = await createPool({ wasm: { mt: bytesOrModule, st: bytesOrModule }, threads: 4 });
//   const x = pool.alloc(8 * n); pool.view(Float64Array, x, n).set(data);
//   const out = pool.alloc(8); pool.call('jr_reduce', 0, 0, x, n, out);
//   await pool.resize(2); pool.status(); await pool.terminate();
//
// createPool(options):
//   wasm      bytes or WebAssembly.Module of one build, or {mt, st} with both
//   threads   threads including the caller (default: the machine's cores)
//   threaded  'auto' (mt when this thread can run it, else st), true, or false
//   poll      () => truthy to cancel the running call; called by the caller between chunks
//   stdout, stderr   (text) => void, for WASI fd_write of foreign modules (default: console)
// Pool: exports, memory, threaded, threads, workers, maxThreads, fallbackReason (why st was
//   chosen), broken (why the pool cannot be used any more), instances (exports by module name);
//   call(name, ...args) checks the status (PoolError with .code, .name, .kernel); alloc, free,
//   view (always on the current memory.buffer); status() reads the counters block only;
//   cancel(); await resize(n); await addModule({name, module}); await terminate().
// The caller must be a Worker in browsers (blocking waits trap on the main thread).
//
// Why a slot table: a worker created inside `thread-spawn` while the spawner blocks deadlocks
// in browsers, so helpers are pre-started; `thread-spawn` then hands a (tid, arg) to an idle
// helper through a SharedArrayBuffer with compareExchange + Atomics.notify, synchronously, from
// any thread, with no postMessage.

// ---------------------------------------------------------------------------------------------
// ABI constants (kernels/ABI.md)

export const STATUS = Object.freeze({
  0: 'OK', [-1]: 'E_INVAL', [-2]: 'E_NOMEM', [-3]: 'E_CANCELED', [-4]: 'E_EMPTY',
  [-5]: 'E_DTYPE', [-6]: 'E_RANGE', [-7]: 'E_THREADS', [-8]: 'E_BUSY',
});

// What the user can do about each status (jr_strerror says what happened).
const ADVICE = {
  [-1]: 'check the arguments: op and dtype codes, sizes, bins > 0, lo < hi',
  [-2]: 'free pool arrays you no longer need, or work on smaller inputs',
  [-3]: 'the call was cancelled; the pool is ready for the next call',
  [-4]: 'min/max of an empty array has no value: pass at least one element',
  [-5]: 'this operation does not support this dtype; convert the input to float64',
  [-6]: 'a pointer + length is outside pool memory: allocate arrays with pool.alloc and pass ' +
    'element counts that match their sizes',
  [-7]: 'only the workers already started can run threads: grow with await pool.resize(n), ' +
    'or use fewer threads',
  [-8]: 'another call is running on this pool: wait for it to finish (calls are not re-entrant)',
};

const ABI_VERSION = 1;
const COUNTERS_MAGIC = 0x4a52504c;
const PAGE = 65536;
// Memory limits of ABI.md, used when the module's bytes are not available to parse.
const ABI_MEMORY = { initial: 64, maximum: 32768 };

// ---------------------------------------------------------------------------------------------
// Errors

export class PoolError extends Error {
  // code: the status (or null for host-side failures), kernel: the export that failed.
  constructor(message, { code = null, name = 'PoolError', kernel = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = name;
    this.code = code;
    this.kernel = kernel;
  }
}

// Thrown from host_poll into a caller that waits on a pool another thread broke: a join waiting
// for a job whose thread trapped would otherwise wait forever. Unwinding the caller's wasm stack
// is fine: a broken pool is never entered again.
class PoolAbort extends Error {}

// ---------------------------------------------------------------------------------------------
// The code every pool thread runs (the caller and each helper worker). It is stringified into the
// helper workers' source, so it must not reference anything outside itself.

function threadRuntime() {
  // ctl: Int32Array over a SharedArrayBuffer.
  //   [0] next tid, [1] number of slots, [2] broken flag (a thread trapped), [3] reserved,
  //   slot i at 4 + 4*i: [state, tid, arg, module index]
  const NEXT_TID = 0, NSLOTS = 1, BROKEN = 2, SLOT_BASE = 4, SLOT_SIZE = 4;
  // EMPTY: no worker behind the slot; FREE: idle worker, claimable; CLAIMED: a spawner is
  // filling it in; GO: run wasi_thread_start; EXIT: leave; YIELD: return to the event loop to
  // take a message; DEAD: the thread trapped.
  const S = { EMPTY: 0, FREE: 1, CLAIMED: 2, GO: 3, EXIT: 4, YIELD: 5, DEAD: 6 };

  // After the slots: NOTE_BYTES of UTF-8 saying why the pool broke, written by the thread that
  // trapped, so the blocked caller can report it without waiting for a message.
  const NOTE_BYTES = 512;

  function makeCtl(nslots) {
    const size = (SLOT_BASE + SLOT_SIZE * nslots) * 4 + NOTE_BYTES;
    // Without threads (and, in a browser that is not isolated, without SharedArrayBuffer) the
    // table is only the broken flag and the note: a plain buffer does.
    const Buffer = nslots > 0 ? SharedArrayBuffer : ArrayBuffer;
    const ctl = new Int32Array(new Buffer(size));
    ctl[NEXT_TID] = 1;
    ctl[NSLOTS] = nslots;
    return ctl;
  }

  function noteArea(ctl) {
    return new Uint8Array(ctl.buffer, (SLOT_BASE + SLOT_SIZE * ctl[NSLOTS]) * 4, NOTE_BYTES);
  }

  // First writer wins: later traps are usually consequences of the first.
  function markBroken(ctl, why) {
    if (Atomics.compareExchange(ctl, BROKEN, 0, -1) !== 0) return;
    const area = noteArea(ctl);
    const bytes = new TextEncoder().encode(why).slice(0, NOTE_BYTES - 1);
    area.set(bytes);
    area[bytes.length] = 0;
    Atomics.store(ctl, BROKEN, 1);
  }

  function brokenNote(ctl) {
    const flag = Atomics.load(ctl, BROKEN);
    if (flag !== 1) return flag ? 'a pool thread failed' : null;
    const area = noteArea(ctl);
    const end = area.indexOf(0);
    return new TextDecoder().decode(area.slice(0, end < 0 ? area.length : end));
  }

  function slotIndex(slot) {
    return SLOT_BASE + SLOT_SIZE * slot;
  }

  // wasi `thread-spawn`: hand (tid, arg) to an idle worker. Returns tid > 0, or -1 (EAGAIN)
  // when no worker becomes idle within SPAWN_WAIT_MS (the runtime reports E_THREADS).
  // Waiting a little matters: a thread that has just told its joiner it is done is still
  // returning from wasi_thread_start, and its worker is free a moment later.
  const SPAWN_WAIT_MS = 100;

  function spawn(ctl, moduleIndex, arg) {
    const deadline = performance.now() + SPAWN_WAIT_MS;
    for (;;) {
      const r = claimAndGo(ctl, moduleIndex, arg);
      if (r > 0) return r;
      // r === -1: no thread runs, so no worker will free up (none started, or all gone).
      if (r === -1 || performance.now() > deadline) return -1;
      Atomics.wait(ctl, slotIndex(-r - 2), S.GO, 1);
    }
  }

  // Claims a FREE slot and starts the thread: returns its tid. Otherwise -1 when no slot runs a
  // thread, or -(slot + 2) of a running slot to wait on.
  function claimAndGo(ctl, moduleIndex, arg) {
    const n = ctl[NSLOTS];
    let running = -1;
    for (let i = 0; i < n; i++) {
      const b = slotIndex(i);
      const state = Atomics.compareExchange(ctl, b, S.FREE, S.CLAIMED);
      if (state === S.FREE) {
        // wasi-threads tids are 1..2^29-1; wrap rather than overflow in a long-lived pool.
        const tid = ((Atomics.add(ctl, NEXT_TID, 1) - 1) % 0x1ffffffe) + 1;
        ctl[b + 1] = tid;
        ctl[b + 2] = arg;
        ctl[b + 3] = moduleIndex;
        Atomics.store(ctl, b, S.GO);
        Atomics.notify(ctl, b);
        return tid;
      }
      if ((state === S.GO || state === S.CLAIMED) && running < 0) running = -(i + 2);
    }
    return running;
  }

  // A helper's life between threads: wait for GO, run the thread, repeat. Returns 'exit',
  // 'yield' or {trap}. Blocking here is fine: helpers are workers.
  function slotLoop(ctl, slot, starts) {
    const b = slotIndex(slot);
    for (;;) {
      const s = Atomics.load(ctl, b);
      if (s === S.GO) {
        try {
          starts[ctl[b + 3]](ctl[b + 1], ctl[b + 2]);
        } catch (error) {
          Atomics.store(ctl, b, S.DEAD);
          markBroken(ctl, `pool thread ${slot + 1} trapped: ${error && error.name || 'Error'}: ` +
            `${error && error.message || error}`);
          Atomics.notify(ctl, b);
          return { trap: error };
        }
        Atomics.store(ctl, b, S.FREE);
        Atomics.notify(ctl, b);
        continue;
      }
      if (s === S.EXIT) return 'exit';
      if (s === S.YIELD) return 'yield';
      Atomics.wait(ctl, b, s);
    }
  }

  class WasiExit extends Error {
    constructor(code) {
      super(`the module called proc_exit(${code})`);
      this.name = 'ProcExit';
      this.exitCode = code;
    }
  }

  // Minimal WASI preview1 for foreign wasi-threads modules: output, clocks, random, empty
  // args/environ, proc_exit raises; everything else is ENOSYS.
  function wasiPreview1(memory, write) {
    const ENOSYS = 52, EBADF = 8;
    const dv = () => new DataView(memory.buffer);
    const bytes = (ptr, len) => new Uint8Array(memory.buffer, ptr, len).slice();
    const zero2 = (a, b) => { dv().setUint32(a, 0, true); dv().setUint32(b, 0, true); return 0; };
    const now = (clock) => (clock === 0 ? Date.now() * 1e6 : performance.now() * 1e6);
    const fns = {
      fd_write(fd, iovs, iovsLen, nwritten) {
        if (fd !== 1 && fd !== 2) return EBADF;
        const d = dv();
        const parts = [];
        let total = 0;
        for (let k = 0; k < iovsLen; k++) {
          const p = d.getUint32(iovs + 8 * k, true), l = d.getUint32(iovs + 8 * k + 4, true);
          parts.push(bytes(p, l));
          total += l;
        }
        const all = new Uint8Array(total);
        let o = 0;
        for (const part of parts) { all.set(part, o); o += part.length; }
        write(fd, new TextDecoder().decode(all));
        d.setUint32(nwritten, total, true);
        return 0;
      },
      clock_time_get(clock, _precision, out) {
        dv().setBigUint64(out, BigInt(Math.round(now(clock))), true);
        return 0;
      },
      clock_res_get(_clock, out) { dv().setBigUint64(out, 1000n, true); return 0; },
      random_get(ptr, len) {
        // getRandomValues refuses shared views: fill a private buffer, then copy.
        const tmp = new Uint8Array(len);
        for (let o = 0; o < len; o += 65536) crypto.getRandomValues(tmp.subarray(o, o + 65536));
        new Uint8Array(memory.buffer, ptr, len).set(tmp);
        return 0;
      },
      args_sizes_get: zero2,
      environ_sizes_get: zero2,
      args_get: () => 0,
      environ_get: () => 0,
      sched_yield: () => 0,
      proc_exit(code) { throw new WasiExit(code); },
    };
    return (name) => fns[name] || (() => ENOSYS);
  }

  // Instantiate every descriptor ({name, module}) on one memory, in order. A module may import
  // `env.memory`, `wasi.thread-spawn`, `env.host_poll`, `wasi_snapshot_preview1.*`, and the
  // exports of any module loaded before it under that module's name.
  function instantiateAll(descs, ctx, loaded = []) {
    const { memory, ctl, poll, write } = ctx;
    const wasi = wasiPreview1(memory, write);
    for (let index = loaded.length; index < descs.length; index++) {
      const { name, module } = descs[index];
      const imports = {};
      for (const imp of WebAssembly.Module.imports(module)) {
        let value;
        const key = `${imp.module}.${imp.name}`;
        if (key === 'env.memory') value = memory;
        else if (key === 'wasi.thread-spawn') value = (arg) => spawn(ctl, index, arg);
        else if (key === 'env.host_poll') value = poll;
        else if (imp.module === 'wasi_snapshot_preview1') value = wasi(imp.name);
        else {
          const from = loaded.find((l) => l.name === imp.module);
          value = from && from.instance.exports[imp.name];
        }
        if (value === undefined) {
          throw new Error(`module "${name}" imports ${key}, which the pool host does not provide ` +
            '(it provides env.memory, wasi.thread-spawn, env.host_poll, wasi_snapshot_preview1 ' +
            'and the exports of modules loaded before it)');
        }
        (imports[imp.module] ||= {})[imp.name] = value;
      }
      loaded.push({ name, instance: new WebAssembly.Instance(module, imports) });
    }
    return loaded;
  }

  function threadStarts(loaded) {
    return loaded.map(({ name, instance }) => instance.exports.wasi_thread_start ||
      (() => {
        throw new Error(`module "${name}" spawned a thread but has no wasi_thread_start`);
      }));
  }

  return { S, BROKEN, NSLOTS, makeCtl, slotIndex, spawn, slotLoop, instantiateAll, threadStarts,
    markBroken, brokenNote, WasiExit };
}

// A helper worker's main: take `init`/`load` messages, then serve threads from the slot table.
function workerMain(rt) {
  let post, ctx, loaded, slot;
  const handle = (msg) => {
    try {
      if (msg.type === 'init') {
        slot = msg.slot;
        ctx = {
          memory: msg.memory,
          ctl: msg.ctl,
          // host_poll belongs to the caller (ABI.md); a helper only reports a broken pool.
          poll: () => Atomics.load(msg.ctl, rt.BROKEN),
          write: (fd, text) => post({ type: 'write', fd, text }),
        };
        loaded = rt.instantiateAll(msg.descs, ctx);
      } else if (msg.type === 'load') {
        rt.instantiateAll(msg.descs, ctx, loaded);
      }
    } catch (error) {
      post({ type: 'error', slot, message: String(error && error.message || error) });
      return;
    }
    Atomics.store(ctx.ctl, rt.slotIndex(slot), rt.S.FREE);
    Atomics.notify(ctx.ctl, rt.slotIndex(slot));
    post({ type: 'ready', slot });
    const how = rt.slotLoop(ctx.ctl, slot, rt.threadStarts(loaded));
    if (how && how.trap) {
      const e = how.trap;
      post({ type: 'trap', slot, message: `${e && e.name || 'Error'}: ${e && e.message || e}` });
    }
  };
  if (typeof WorkerGlobalScope === 'undefined' && typeof process === 'object' &&
      process.versions && process.versions.node) {
    // A dynamic import, not require: an eval worker is ESM when the parent runs
    // --input-type=module. The port queues messages until the listener is attached.
    import('node:worker_threads').then(({ parentPort }) => {
      post = (m) => parentPort.postMessage(m);
      parentPort.on('message', handle);
    });
  } else {
    post = (m) => self.postMessage(m);
    self.onmessage = (e) => handle(e.data);
  }
}

const WORKER_SOURCE = `"use strict";\n(${workerMain})((${threadRuntime})());\n`;
const rt = threadRuntime();

// ---------------------------------------------------------------------------------------------
// Environment: Node worker_threads or browser Workers

// A browser Worker is never Node, even where a bundler or shim defines `process`.
const isNode = typeof WorkerGlobalScope === 'undefined' && typeof window === 'undefined' &&
  typeof process === 'object' && !!(process.versions && process.versions.node);
let nodeWorkerThreads = null;
let blobUrl = null;

async function loadEnvironment() {
  if (isNode && !nodeWorkerThreads) nodeWorkerThreads = await import('node:worker_threads');
}

async function hostParallelism() {
  if (isNode) {
    const os = await import('node:os');
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  }
  return (typeof navigator === 'object' && navigator.hardwareConcurrency) || 1;
}

// Wraps a Worker of either kind behind one small interface.
function startWorker(onMessage, onError) {
  let worker;
  if (isNode) {
    worker = new nodeWorkerThreads.Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', onMessage);
    worker.on('error', onError);
    // terminate() exits with 1; anything else is a worker that died on its own.
    worker.on('exit', (code) => {
      if (code !== 0 && code !== 1) onError(new Error(`exit ${code}`));
    });
  } else {
    // In JupyterLite this module itself comes from a Blob URL, so import.meta.url cannot locate
    // a worker file: the worker's source is built here instead.
    blobUrl ||= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    worker = new Worker(blobUrl);
    worker.onmessage = (e) => onMessage(e.data);
    worker.onerror = (e) => {
      e.preventDefault?.();
      onError(new Error(e.message || 'worker error'));
    };
  }
  return {
    post: (msg) => worker.postMessage(msg),
    terminate: () => worker.terminate(),
    // A pool the user forgot to terminate must not keep Node alive, but a pending reply must.
    unref: () => worker.unref?.(),
    ref: () => worker.ref?.(),
  };
}

// A Content-Security-Policy without `worker-src blob:` is the usual reason a browser refuses.
function workerHint() {
  return isNode ? '' : ' (if the page sets a Content-Security-Policy, it must allow worker-src ' +
    'blob:)';
}

// Can this thread run the threaded build? Returns {ok, reason, fix}.
export function detectThreading() {
  const fix = 'serve the site with the headers Cross-Origin-Opener-Policy: same-origin and ' +
    'Cross-Origin-Embedder-Policy: require-corp (or credentialless), then reload the page';
  if (!isNode && globalThis.crossOriginIsolated === false) {
    return { ok: false, reason: 'the page is not cross-origin isolated (crossOriginIsolated is ' +
      'false), so shared memory is disabled', fix };
  }
  if (typeof SharedArrayBuffer === 'undefined') {
    return { ok: false, reason: 'SharedArrayBuffer is not available', fix };
  }
  try {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    if (!(m.buffer instanceof SharedArrayBuffer)) throw new Error('not shared');
  } catch (e) {
    return { ok: false, reason: `a shared WebAssembly.Memory cannot be created (${e.message})`,
      fix };
  }
  if (!isNode && typeof WorkerGlobalScope === 'undefined' && typeof window === 'object') {
    return { ok: false, reason: 'the pool runs on the browser main thread, where blocking waits ' +
      'are not allowed', fix: 'create the pool inside a Web Worker (the Pyodide kernel is one)' };
  }
  if (!isNode && typeof Worker === 'undefined') {
    return { ok: false, reason: 'this worker cannot start nested Workers',
      fix: 'use a browser with nested Worker support' };
  }
  return { ok: true, reason: null, fix: null };
}

// ---------------------------------------------------------------------------------------------
// Reading the module binary: memory import limits and export signatures.

const VALTYPES = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128',
  0x70: 'funcref', 0x6f: 'externref' };

function asBytes(source) {
  if (source instanceof Uint8Array) return source;
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  }
  if (source instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer !== 'undefined' && source instanceof SharedArrayBuffer)) {
    return new Uint8Array(source);
  }
  return null;
}

// Returns {memory: {module, name, initial, maximum, shared} | null, signatures: {export: {params,
// results}}}, or null when the bytes use encodings this reader does not know (then the host
// falls back to ABI.md's limits and passes arguments through unchecked).
export function readModuleInfo(bytes) {
  try {
    return parseModule(bytes);
  } catch {
    return null;
  }
}

function parseModule(u8) {
  if (u8.length < 8 || u8[0] !== 0 || u8[1] !== 0x61 || u8[2] !== 0x73 || u8[3] !== 0x6d) {
    throw new Error('not a wasm binary');
  }
  let pos = 8;
  const byte = () => {
    if (pos >= u8.length) throw new Error('truncated');
    return u8[pos++];
  };
  const leb = () => {
    let result = 0, mul = 1, b;
    do { b = byte(); result += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
    return result;
  };
  const text = () => {
    const n = leb();
    const s = new TextDecoder().decode(u8.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const valtype = () => {
    const t = VALTYPES[byte()];
    if (!t) throw new Error('unknown value type');
    return t;
  };
  const limits = () => {
    const flags = leb();
    const min = leb();
    const max = flags & 1 ? leb() : null;
    return { initial: min, maximum: max, shared: (flags & 2) !== 0 };
  };
  const types = [], funcTypes = [], exportsIdx = {};
  let memory = null;
  while (pos < u8.length) {
    const id = byte();
    const size = leb();
    const end = pos + size;
    if (id === 1) {
      for (let n = leb(); n > 0; n--) {
        if (byte() !== 0x60) throw new Error('unknown type form');
        const params = [], results = [];
        for (let k = leb(); k > 0; k--) params.push(valtype());
        for (let k = leb(); k > 0; k--) results.push(valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = leb(); n > 0; n--) {
        const module = text(), name = text(), kind = byte();
        if (kind === 0) funcTypes.push(leb());
        else if (kind === 1) { byte(); limits(); }
        else if (kind === 2) memory = { module, name, ...limits() };
        else if (kind === 3) { valtype(); byte(); }
        else if (kind === 4) { byte(); leb(); }
        else throw new Error('unknown import kind');
      }
    } else if (id === 3) {
      for (let n = leb(); n > 0; n--) funcTypes.push(leb());
    } else if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const name = text(), kind = byte(), index = leb();
        if (kind === 0) exportsIdx[name] = index;
      }
    }
    pos = end;
  }
  const signatures = {};
  for (const [name, index] of Object.entries(exportsIdx)) {
    signatures[name] = types[funcTypes[index]];
  }
  return { memory, signatures };
}

// Turns JS arguments into what a wasm export takes, or throws a clear error. Without this an
// absurd length like 2**40 would silently wrap to a small i32.
function convertArgs(kernel, sig, args) {
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

// ---------------------------------------------------------------------------------------------
// Choosing and compiling the build

async function compileSource(source, label) {
  if (source instanceof WebAssembly.Module) return { module: source, info: null };
  const bytes = asBytes(source);
  if (!bytes) {
    throw new TypeError(`createPool: wasm${label} must be a BufferSource (ArrayBuffer, ` +
      'Uint8Array) or a WebAssembly.Module');
  }
  const info = readModuleInfo(bytes);
  return { module: await WebAssembly.compile(bytes), info };
}

function isThreadedModule(compiled) {
  if (compiled.info && compiled.info.memory) return compiled.info.memory.shared;
  return WebAssembly.Module.exports(compiled.module).some((e) => e.name === 'wasi_thread_start');
}

async function chooseBuild(wasm, threaded) {
  if (threaded !== 'auto' && threaded !== true && threaded !== false) {
    throw new TypeError(`createPool: threaded must be 'auto', true or false, got ${threaded}`);
  }
  const pair = wasm && !(wasm instanceof WebAssembly.Module) && !asBytes(wasm) &&
    typeof wasm === 'object' ? wasm : null;
  let mt = null, st = null;
  if (pair) {
    if (!pair.mt && !pair.st) throw new TypeError('createPool: wasm: {mt, st} needs mt or st');
    if (pair.mt) mt = await compileSource(pair.mt, '.mt');
    if (pair.st) st = await compileSource(pair.st, '.st');
  } else {
    if (wasm === undefined || wasm === null) {
      throw new TypeError('createPool: pass wasm: the bytes or Module of pool-mt.wasm ' +
        '(or {mt, st} with both builds)');
    }
    const one = await compileSource(wasm, '');
    if (isThreadedModule(one)) mt = one;
    else st = one;
  }
  const support = detectThreading();
  if (threaded === true && !mt) {
    throw new TypeError('createPool: threaded: true needs the threaded build (pass wasm: ' +
      '{mt, st} or the bytes of pool-mt.wasm); this one is the single-thread build');
  }
  const wantThreads = threaded === true || (threaded === 'auto' && support.ok);
  if (wantThreads && mt) {
    if (!support.ok) {
      throw new PoolError(`createPool: threads are not available here: ${support.reason}; ` +
        `to fix: ${support.fix}`, { name: 'ThreadsUnavailable' });
    }
    return { build: mt, threaded: true, fallbackReason: null };
  }
  if (!st) {
    if (threaded === false) {
      throw new TypeError('createPool: threaded: false needs the single-thread build ' +
        '(pass wasm: {mt, st} or the bytes of pool-st.wasm)');
    }
    throw new PoolError(`createPool: threads are not available here (${support.reason}) and no ` +
      `single-thread build was given; to fix: ${support.fix}, or pass wasm: {mt, st}`,
    { name: 'ThreadsUnavailable' });
  }
  const fallbackReason = threaded === false ? null
    : !support.ok ? `${support.reason}; to fix: ${support.fix}`
      : 'no threaded build was given';
  return { build: st, threaded: false, fallbackReason };
}

function memoryLimits(build, threaded) {
  const m = build.info && build.info.memory;
  const initial = m ? m.initial : ABI_MEMORY.initial;
  const maximum = m && m.maximum !== null ? m.maximum : ABI_MEMORY.maximum;
  return threaded ? { initial, maximum, shared: true } : { initial, maximum };
}

// ---------------------------------------------------------------------------------------------
// The pool

export async function createPool(options = {}) {
  const { wasm, threads, threaded = 'auto', poll, stdout, stderr } = options;
  await loadEnvironment();
  const chosen = await chooseBuild(wasm, threaded);
  const pool = new Pool(chosen, { poll, stdout, stderr });
  try {
    await pool._start(threads);
  } catch (error) {
    await pool.terminate();
    throw error;
  }
  return pool;
}

class Pool {
  #build; #memory; #ctl; #slots = []; #loaded = []; #descs = []; #exports = null;
  #sigs = {}; #counters = 0; #hasRuntime = false; #maxThreads = 64; #threads = 1;
  #broken = null; #terminated = false; #resizing = null; #poll; #write;

  constructor(chosen, { poll, stdout, stderr }) {
    if (poll !== undefined && typeof poll !== 'function') {
      throw new TypeError('createPool: poll must be a function returning a truthy value to cancel');
    }
    this.threaded = chosen.threaded;
    this.fallbackReason = chosen.fallbackReason;
    this.#build = chosen.build;
    this.#poll = poll;
    const out = stdout || ((t) => console.log(t.replace(/\n$/, '')));
    const err = stderr || ((t) => console.error(t.replace(/\n$/, '')));
    this.#write = (fd, text) => (fd === 2 ? err : out)(text);
    this.#memory = new WebAssembly.Memory(memoryLimits(this.#build, this.threaded));
    this.#sigs = (this.#build.info && this.#build.info.signatures) || {};
  }

  get memory() { return this.#memory; }
  get exports() { return this.#exports; }
  get threads() { return this.#hasRuntime ? this.#counter32(8) : this.#threads; }
  get maxThreads() { return this.#maxThreads; }
  // Live helper workers (threads - 1 once a resize has finished).
  get workers() { return this.#slots.filter(Boolean).length; }
  get broken() { return this.#broken; }
  // Exports of every loaded module by name ('pool' is the pool module).
  get instances() {
    return Object.fromEntries(this.#loaded.map(({ name, instance }) => [name, instance.exports]));
  }

  async _start(threads) {
    const exportNames = WebAssembly.Module.exports(this.#build.module).map((e) => e.name);
    // A foreign wasi-threads module has no pool runtime: workers only serve its spawns.
    this.#hasRuntime = ['jr_set_threads', 'jr_counters', 'jr_alloc']
      .every((n) => exportNames.includes(n));
    const wanted = threads === undefined || threads === null ? await hostParallelism() : threads;
    this.#checkThreadCount(wanted, 'createPool');
    // Slots exist for the whole of ABI.md's maximum, so the pool can grow without a new table.
    this.#ctl = rt.makeCtl(this.threaded ? 64 : 0);
    this.#descs = [{ name: 'pool', module: this.#build.module }];
    const target = this.threaded ? wanted : 1;
    if (this.threaded) await this.#startWorkers(target - 1);
    this.#loaded = rt.instantiateAll(this.#descs, this.#callerContext());
    this.#exports = this.#loaded[0].instance.exports;
    if (this.#hasRuntime) {
      this.#counters = this.#exports.jr_counters() >>> 0;
      const magic = this.#counter32(0), abi = this.#counter32(4);
      if (magic !== COUNTERS_MAGIC || abi !== ABI_VERSION) {
        throw new PoolError(`createPool: the module is not a jupyterlite-rayon pool of ABI ` +
          `version ${ABI_VERSION} (counters magic 0x${magic.toString(16)}, version ${abi}); ` +
          'rebuild it with kernels/build.py');
      }
      this.#maxThreads = this.#exports.jr_max_threads();
      if (!this.threaded && wanted > 1) {
        this.fallbackReason ||= 'the single-thread build runs one thread';
      }
      this.#setThreads(Math.min(target, this.#maxThreads));
      this.#threads = this.#counter32(8);
    } else {
      this.#threads = target;
    }
  }

  #callerContext() {
    return {
      memory: this.#memory,
      ctl: this.#ctl,
      poll: () => {
        if (Atomics.load(this.#ctl, rt.BROKEN)) throw new PoolAbort('the pool broke during a call');
        try {
          return this.#poll && this.#poll() ? 1 : 0;
        } catch (error) {
          this.#write(2, `pool poll callback failed, cancelling: ${error}\n`);
          return 1;
        }
      },
      write: (fd, text) => this.#write(fd, text),
    };
  }

  #checkThreadCount(n, where) {
    if (!Number.isInteger(n) || n < 1 || n > this.#maxThreads) {
      throw new RangeError(`${where}: threads must be an integer from 1 to ${this.#maxThreads}, ` +
        `got ${n}`);
    }
  }

  // Start `count` helper workers in EMPTY slots and wait until each holds its instances.
  async #startWorkers(count) {
    const ready = [];
    for (let slot = 0; slot < this.#ctl[rt.NSLOTS] && ready.length < count; slot++) {
      if (this.#slots[slot]) continue;
      ready.push(new Promise((resolve, reject) => {
        const entry = { worker: null, pending: { resolve, reject } };
        this.#slots[slot] = entry;
        try {
          entry.worker = startWorker(
            (msg) => this.#onWorkerMessage(slot, msg),
            (error) => this.#onWorkerFailure(slot, error),
          );
        } catch (error) {
          this.#slots[slot] = undefined;
          entry.pending = null;
          reject(new PoolError(`cannot start a pool worker: ${error.message}${workerHint()}`));
          return;
        }
        entry.worker.post({ type: 'init', slot, memory: this.#memory, ctl: this.#ctl,
          descs: this.#descs });
      }));
    }
    if (ready.length < count) {
      throw new PoolError(`cannot start ${count} more workers: the slot table is full`);
    }
    await Promise.all(ready);
  }

  #onWorkerMessage(slot, msg) {
    const entry = this.#slots[slot];
    if (!entry) return;
    if (msg.type === 'ready') {
      entry.worker.unref();
      entry.pending?.resolve();
      entry.pending = null;
    } else if (msg.type === 'write') {
      this.#write(msg.fd, msg.text);
    } else if (msg.type === 'error') {
      const error = new PoolError(`pool worker ${slot} could not load its modules: ${msg.message}`);
      if (entry.pending) { entry.pending.reject(error); entry.pending = null; }
      else this.#markBroken(error.message);
    } else if (msg.type === 'trap') {
      this.#markBroken(`pool thread ${slot + 1} trapped (${msg.message})`);
    }
  }

  #onWorkerFailure(slot, error) {
    const entry = this.#slots[slot];
    if (!entry || entry.exiting) return;
    const message = `pool worker ${slot} failed: ${error && error.message || error}`;
    if (entry.pending) {
      entry.pending.reject(new PoolError(message + workerHint()));
      entry.pending = null;
    }
    else this.#markBroken(message);
  }

  #markBroken(reason) {
    this.#broken ||= reason;
    if (this.#ctl) rt.markBroken(this.#ctl, reason);
  }

  #checkUsable(where) {
    if (this.#terminated) {
      throw new PoolError(`${where}: the pool was terminated; create a new one with createPool()`,
        { name: 'PoolTerminated' });
    }
    if (!this.#broken && this.#ctl) this.#broken = rt.brokenNote(this.#ctl);
    if (this.#broken) {
      throw new PoolError(`${where}: the pool is broken (${this.#broken}); restart it: ` +
        'await pool.terminate() then createPool() again', { name: 'PoolBroken' });
    }
    if (this.#resizing) {
      throw new PoolError(`${where}: the pool is being resized; await pool.resize() first`,
        { code: -8, name: 'E_BUSY' });
    }
  }

  // Calls a status-returning export; a non-zero status throws PoolError.
  call(name, ...args) {
    this.#checkUsable(name);
    const fn = this.#exports[name];
    if (typeof fn !== 'function') {
      throw new TypeError(`pool.call: the module has no export "${name}"`);
    }
    const wasmArgs = convertArgs(name, this.#sigs[name], args);
    // A fresh call starts uncancelled; a re-entrant one (from poll, refused with E_BUSY) must
    // not clear the running call's flag.
    if (this.#counters && this.#counter32(28) === 0) {
      Atomics.store(this.#u32(), (this.#counters + 16) >>> 2, 0);
    }
    let status;
    try {
      status = fn(...wasmArgs);
    } catch (error) {
      if (error instanceof TypeError) throw error; // conversion, before entering wasm
      if (error instanceof PoolAbort) this.#checkUsable(name); // throws PoolBroken, with why
      const what = error instanceof rt.WasiExit ? error.message : `trapped: ${error}`;
      this.#markBroken(`${name} ${what}`);
      throw new PoolError(`${name} ${what}; the pool cannot be used any more: ` +
        'await pool.terminate() then createPool() again',
      { name: error instanceof rt.WasiExit ? 'ProcExit' : 'WasmTrap', kernel: name, cause: error });
    }
    if (Atomics.load(this.#ctl, rt.BROKEN)) {
      this.#checkUsable(name);
    }
    if (typeof status === 'number' && status !== 0) throw this.#statusError(name, status);
    return status;
  }

  #statusError(kernel, code) {
    const name = STATUS[code] || `status ${code}`;
    let message = '';
    if (this.#exports.jr_strerror) message = this.#cString(this.#exports.jr_strerror(code) >>> 0);
    const advice = kernel === 'jr_set_threads' && code === -1
      ? `threads must be from 1 to ${this.#maxThreads}`
      : ADVICE[code] || 'see kernels/ABI.md';
    return new PoolError(`${kernel}: ${message || name} (${name}); ${advice}`,
      { code, name, kernel });
  }

  #cString(ptr) {
    const u8 = new Uint8Array(this.#memory.buffer);
    let end = ptr;
    while (end < u8.length && u8[end] !== 0) end++;
    return new TextDecoder().decode(u8.slice(ptr, end));
  }

  #u32() { return new Uint32Array(this.#memory.buffer); }
  #counter32(offset) { return Atomics.load(this.#u32(), (this.#counters + offset) >>> 2); }
  #counter64(dv, offset) { return Number(dv.getBigUint64(this.#counters + offset, true)); }

  alloc(nbytes, zero = false) {
    this.#checkUsable('pool.alloc');
    if (!Number.isInteger(nbytes) || nbytes < 0 || nbytes > 2 ** 32 - 1) {
      throw new RangeError(`pool.alloc: nbytes must be an integer from 0 to 2**32 - 1, ` +
        `got ${nbytes}`);
    }
    const ptr = this.#exports.jr_alloc(nbytes, zero ? 1 : 0) >>> 0;
    if (ptr === 0) {
      const mib = (b) => (b / 1048576).toFixed(1);
      const max = memoryLimits(this.#build, this.threaded).maximum * PAGE;
      throw new PoolError(`pool.alloc: cannot allocate ${nbytes} bytes: pool memory is ` +
        `${mib(this.#memory.buffer.byteLength)} MiB of at most ${mib(max)} MiB, with ` +
        `${mib(this.status().bytesInUse)} MiB in use; free arrays you no longer need ` +
        '(pool.free) or work on smaller inputs', { code: -2, name: 'E_NOMEM', kernel: 'jr_alloc' });
    }
    return ptr;
  }

  free(ptr) {
    this.#checkUsable('pool.free');
    if (!Number.isInteger(ptr) || ptr < 0 || ptr > 2 ** 32 - 1) {
      throw new RangeError(`pool.free: ptr must be an address from pool.alloc, got ${ptr}`);
    }
    this.#exports.jr_free(ptr);
  }

  // A typed-array view on the CURRENT memory buffer: memory can grow (and a non-shared buffer
  // is detached when it does), so take a fresh view after every call instead of keeping one.
  view(Ctor, ptr, length) {
    const bpe = Ctor && Ctor.BYTES_PER_ELEMENT;
    if (!bpe) throw new TypeError('pool.view: pass a TypedArray constructor, e.g. Float64Array');
    if (!Number.isInteger(ptr) || ptr < 0 || ptr % bpe !== 0) {
      throw new RangeError(`pool.view: ptr must be a non-negative multiple of ${bpe}, got ${ptr}`);
    }
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`pool.view: length must be a non-negative integer, got ${length}`);
    }
    const buffer = this.#memory.buffer;
    if (ptr + length * bpe > buffer.byteLength) {
      throw new RangeError(`pool.view: [${ptr}, ${ptr + length * bpe}) is outside pool memory ` +
        `(${buffer.byteLength} bytes): allocate with pool.alloc and check the length`);
    }
    return new Ctor(buffer, ptr, length);
  }

  // Reads the counters block: no message, no call into wasm, so it is safe while another thread
  // is inside a call.
  status() {
    const memoryBytes = this.#memory.buffer.byteLength;
    if (!this.#counters) {
      return { threads: this.#threads, busy: 0, tasks: 0, steals: 0, bytesInUse: 0,
        runtimeBytes: 0, calls: 0, inCall: false, cancel: false, maxThreads: this.#maxThreads,
        threaded: this.threaded, memoryBytes, perThread: [] };
    }
    const u32 = this.#u32();
    const dv = new DataView(this.#memory.buffer);
    const at = (offset) => Atomics.load(u32, (this.#counters + offset) >>> 2);
    const maxThreads = at(20);
    const perThread = [];
    let tasks = 0, steals = 0;
    for (let i = 0; i < maxThreads; i++) {
      const base = 64 + 64 * i;
      const state = at(base);
      const t = this.#counter64(dv, base + 8), s = this.#counter64(dv, base + 16);
      tasks += t;
      steals += s;
      if (state !== 0) {
        perThread.push({ state: state === 2 ? 'working' : 'sleeping', tasks: t, steals: s });
      }
    }
    return {
      threads: at(8), busy: at(12), cancel: at(16) !== 0, maxThreads, threaded: at(24) === 1,
      inCall: at(28) === 1, tasks, steals, bytesInUse: this.#counter64(dv, 32),
      runtimeBytes: this.#counter64(dv, 40), calls: this.#counter64(dv, 48), memoryBytes, perThread,
    };
  }

  // Asks the running call to stop at its next chunk (it then returns E_CANCELED). Safe from any
  // thread that shares the memory; this one only stores a flag.
  cancel() {
    if (this.#counters) Atomics.store(this.#u32(), (this.#counters + 16) >>> 2, 1);
  }

  #setThreads(n) {
    const status = this.#exports.jr_set_threads(n);
    if (status !== 0) throw this.#statusError('jr_set_threads', status);
  }

  // Grow: start and await more workers, then let the runtime spawn onto them. Shrink: the runtime
  // retires helpers first, then their (now idle) workers are terminated.
  async resize(n) {
    this.#checkUsable('pool.resize');
    if (!this.threaded) {
      if (n !== 1) {
        throw new PoolError(`pool.resize: the single-thread build runs exactly 1 thread ` +
          `(${this.fallbackReason || 'threaded: false'})`, { code: -1, name: 'E_INVAL' });
      }
      return 1;
    }
    this.#checkThreadCount(n, 'pool.resize');
    const done = this.#resizeTo(n);
    this.#resizing = done;
    try {
      return await done;
    } finally {
      this.#resizing = null;
    }
  }

  async #resizeTo(n) {
    const workers = this.#slots.filter(Boolean).length;
    if (n - 1 > workers) await this.#startWorkers(n - 1 - workers);
    if (this.#hasRuntime) this.#setThreads(n);
    this.#threads = n;
    if (n - 1 < workers) await this.#stopIdleWorkers(workers - (n - 1));
    return this.threads;
  }

  // Terminate `count` workers, highest slots first; after jr_set_threads shrank the pool they are
  // idle (or about to be).
  async #stopIdleWorkers(count) {
    const live = this.#slots.map((entry, slot) => (entry ? slot : -1)).filter((s) => s >= 0);
    for (const slot of live.reverse().slice(0, count)) {
      const entry = this.#slots[slot];
      await this.#claimIdleSlot(slot, rt.S.EXIT);
      Atomics.notify(this.#ctl, rt.slotIndex(slot));
      entry.exiting = true;
      await entry.worker.terminate();
      Atomics.store(this.#ctl, rt.slotIndex(slot), rt.S.EMPTY);
      this.#slots[slot] = undefined;
    }
  }

  // Instantiate one more module ({name, module: BufferSource | WebAssembly.Module}) in every pool
  // thread, on the pool's memory. Its imports may name the exports of modules loaded before it.
  // Returns its exports in the caller's thread.
  async addModule({ name, module }) {
    this.#checkUsable('pool.addModule');
    if (typeof name !== 'string' || !name || this.#descs.some((d) => d.name === name)) {
      throw new TypeError(`pool.addModule: name must be a new, non-empty string, got ${name}`);
    }
    const compiled = await compileSource(module, '');
    const work = this.#addModule(name, compiled.module, this.threads);
    this.#resizing = work;
    try {
      return await work;
    } finally {
      this.#resizing = null;
    }
  }

  async #addModule(name, module, threads) {
    // Helpers run inside wasm while they are pool threads: retire them, load, restart them.
    const retire = this.#hasRuntime && threads > 1;
    if (retire) this.#setThreads(1);
    this.#descs.push({ name, module });
    try {
      rt.instantiateAll(this.#descs, this.#callerContext(), this.#loaded);
    } catch (error) {
      // Nothing was loaded anywhere: the pool goes on as before.
      this.#descs.pop();
      if (retire) this.#setThreads(threads);
      throw new PoolError(`pool.addModule: module "${name}" cannot be instantiated: ` +
        `${error.message}`, { cause: error });
    }
    try {
      const loads = [];
      this.#slots.forEach((entry, slot) => {
        if (entry) loads.push(this.#loadInWorker(entry, slot));
      });
      await Promise.all(loads);
    } catch (error) {
      // Some threads have the module and some do not: no way back.
      this.#markBroken(`pool.addModule("${name}") failed in a helper: ${error.message}`);
      throw error;
    }
    if (retire) this.#setThreads(threads);
    return this.instances[name];
  }

  async #loadInWorker(entry, slot) {
    await this.#claimIdleSlot(slot, rt.S.YIELD);
    return new Promise((resolve, reject) => {
      entry.pending = { resolve, reject };
      entry.worker.ref();
      entry.worker.post({ type: 'load', descs: this.#descs });
      Atomics.notify(this.#ctl, rt.slotIndex(slot));
    });
  }

  // Move a slot from FREE to `next`. A helper that jr_set_threads just retired stores FREE a
  // moment after wasi_thread_start returns, so wait for it (briefly, with a deadline).
  async #claimIdleSlot(slot, next) {
    const b = rt.slotIndex(slot);
    const deadline = Date.now() + 10000;
    while (Atomics.compareExchange(this.#ctl, b, rt.S.FREE, next) !== rt.S.FREE) {
      if (Date.now() > deadline) {
        throw new PoolError(`pool worker ${slot} did not become idle within 10 s ` +
          `(slot state ${Atomics.load(this.#ctl, b)})`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  // Stops every worker; afterwards the pool cannot be used (a Node process can exit).
  async terminate() {
    if (this.#terminated) return;
    this.#terminated = true;
    if (this.#ctl && this.#exports && this.#hasRuntime && !this.#broken && !this.#resizing &&
        !Atomics.load(this.#ctl, rt.BROKEN) && this.#counter32(28) === 0) {
      // Let helpers leave wasm cleanly; termination below works either way.
      try { this.#exports.jr_set_threads(1); } catch { /* terminate regardless */ }
    }
    const all = [];
    this.#slots.forEach((entry, slot) => {
      if (!entry) return;
      entry.exiting = true;
      entry.pending?.reject(new PoolError('the pool was terminated while starting'));
      Atomics.store(this.#ctl, rt.slotIndex(slot), rt.S.EXIT);
      Atomics.notify(this.#ctl, rt.slotIndex(slot));
      all.push(entry.worker.terminate());
    });
    this.#slots = [];
    await Promise.all(all);
  }
}

export { Pool, WORKER_SOURCE };
