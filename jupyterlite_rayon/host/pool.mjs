// pool.mjs: the Pool. createPool compiles the chosen build, creates its memory (shared for the
// threaded build), starts and awaits the helper workers (each holds an instance on the same
// memory), then instantiates the caller's instance in this thread. Every use of the module goes
// through the Pool's members, so callers never need its raw exports. Contract: kernels/ABI.md.
import { ABI_VERSION, CODES, COUNTERS_MAGIC, MAX_THREADS, PAGE_BYTES } from './abi.mjs';
import { checkThreadCount, checkU32, convertArgs } from './args.mjs';
import { chooseBuild, compileSource, memoryLimits } from './build_choice.mjs';
import { counterIndex, readCounters } from './counters.mjs';
import { hostParallelism, workerHint } from './environment.mjs';
import { PoolAbort, PoolError, statusError } from './errors.mjs';
import { jitLoader } from './modules.mjs';
import { threadRuntime } from './thread_runtime.mjs';
import { makeWasi } from './wasi.mjs';
import { prepareWorkers, startWorker } from './workers.mjs';

const rt = threadRuntime(makeWasi(), jitLoader());

// The pool runtime's control exports and the Pool member to use instead: calling them raw would
// bypass the pool's bookkeeping (threads, workers, the cancel flag, the status conversion).
const CONTROL = {
  jr_alloc: 'pool.alloc(nbytes, zero)',
  jr_free: 'pool.free(ptr)',
  jr_alloc_into: 'pool.allocInto(cell, nbytes, zero)',
  jr_free_cell: 'pool.freeCell(cell)',
  jr_set_threads: 'pool.setThreads(n) or await pool.resize(n)',
  jr_cancel: 'pool.cancel()',
  jr_counters: 'pool.counters or pool.status()',
  jr_max_threads: 'pool.maxThreads',
  jr_is_threaded: 'pool.threaded',
  jr_abi_version: 'nothing: createPool checks it',
  jr_strerror: 'pool.strerror(code), or the .detail of the PoolError',
};

const mib = (bytes) => (bytes / 1048576).toFixed(1);

// A cell is a u32 of pool memory: a 4-byte aligned nonzero address (pool.allocInto).
function checkCell(cell, where, memoryBytes) {
  if (!Number.isInteger(cell) || cell <= 0 || cell % 4 !== 0 || cell + 4 > memoryBytes) {
    throw new RangeError(`${where}: cell must be a 4-byte aligned address of pool memory ` +
      `(a u32 the caller owns, e.g. in a pool.alloc block), got ${cell}`);
  }
}

export async function createPool(options = {}) {
  const { wasm, threads, threaded = 'auto', poll, stdout, stderr } = options;
  await prepareWorkers();
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
  #build; #memory; #ctl = null; #slots = []; #loaded = []; #descs = []; #exports = null;
  #sigs = {}; #counters = 0; #hasRuntime = false; #maxThreads = MAX_THREADS; #threads = 1;
  #broken = null; #terminated = false; #resizing = null; #active = 0; #poll; #write;

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
  // The raw exports of the pool module: for foreign modules; pool modules need none of them.
  get exports() { return this.#exports; }
  // Address of the counters block (0 for a foreign module, which has none).
  get counters() { return this.#counters; }
  get threads() { return this.#hasRuntime ? this.#counter32('threads') : this.#threads; }
  get maxThreads() { return this.#maxThreads; }
  // Live helper workers (threads - 1 once a resize has finished).
  get workers() { return this.#slots.filter(Boolean).length; }
  // Also a helper's trap this thread has had no message about yet (the note is in shared memory).
  get broken() {
    if (!this.#broken && this.#ctl) this.#broken = rt.brokenNote(this.#ctl);
    return this.#broken;
  }
  get terminated() { return this.#terminated; }
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
    checkThreadCount(wanted, MAX_THREADS, 'createPool');
    // Slots exist for ABI.md's maximum, so the pool can grow without a new table.
    this.#ctl = rt.makeCtl(this.threaded ? MAX_THREADS : 0);
    this.#descs = [{ name: 'pool', module: this.#build.module }];
    const target = this.threaded ? wanted : 1;
    if (this.threaded) await this.#startWorkers(target - 1);
    this.#loaded = rt.instantiateAll(this.#descs, this.#callerContext());
    this.#exports = this.#loaded[0].instance.exports;
    if (!this.#hasRuntime) {
      this.#threads = target;
      return;
    }
    const address = this.#exports.jr_counters() >>> 0;
    const { magic, abiVersion } = readCounters(this.#memory.buffer, address);
    if (magic !== COUNTERS_MAGIC || abiVersion !== ABI_VERSION) {
      throw new PoolError(`createPool: the module is not a jupyterlite-rayon pool of ABI ` +
        `version ${ABI_VERSION} (counters magic 0x${magic.toString(16)}, version ` +
        `${abiVersion}); rebuild it with kernels/build.py`);
    }
    this.#counters = address;
    this.#maxThreads = this.#exports.jr_max_threads();
    if (!this.threaded && wanted > 1) {
      this.fallbackReason ||= 'the single-thread build runs one thread';
    }
    this.#setThreads(Math.min(target, this.#maxThreads));
    this.#threads = this.#counter32('threads');
  }

  #callerContext() {
    return {
      memory: this.#memory,
      ctl: this.#ctl,
      // host_poll: the caller's chance, between chunks and while it waits, to cancel the call,
      // and to leave a pool whose other threads are gone.
      poll: () => {
        this.#abortIfGone();
        let cancel;
        try {
          cancel = this.#poll && this.#poll() ? 1 : 0;
        } catch (error) {
          this.#write(2, `pool poll callback failed, cancelling: ${error}\n`);
          cancel = 1;
        }
        this.#abortIfGone(); // the callback may have terminated the pool
        return cancel;
      },
      write: (fd, text) => this.#write(fd, text),
    };
  }

  #abortIfGone() {
    if (this.#terminated) throw new PoolAbort('the pool was terminated during a call');
    if (Atomics.load(this.#ctl, rt.BROKEN)) throw new PoolAbort('the pool broke during a call');
  }

  // Start `count` helper workers in EMPTY slots and wait until each holds its instances. Returns
  // their slots; if any fails, the others are stopped again, so the pool is as before.
  async #startWorkers(count) {
    const slots = [];
    const ready = [];
    for (let slot = 0; slot < this.#ctl[rt.NSLOTS] && slots.length < count; slot++) {
      if (this.#slots[slot]) continue;
      slots.push(slot);
      ready.push(new Promise((resolve, reject) => {
        // A new generation of the slot: a retired worker of it that a browser has not stopped
        // yet can never act on this one's words (thread_runtime.mjs says why).
        const gen = rt.openSlot(this.#ctl, slot);
        const entry = { worker: null, gen, pending: { resolve, reject } };
        this.#slots[slot] = entry;
        try {
          entry.worker = startWorker(
            (msg) => this.#onWorkerMessage(slot, entry, msg),
            (error) => this.#onWorkerFailure(slot, entry, error),
          );
        } catch (error) {
          this.#slots[slot] = undefined;
          rt.closeSlot(this.#ctl, slot, gen);
          entry.pending = null;
          reject(new PoolError(`cannot start a pool worker: ${error.message}${workerHint()}`));
          return;
        }
        entry.worker.post({ type: 'init', slot, gen, memory: this.#memory, ctl: this.#ctl,
          descs: this.#descs });
      }));
    }
    const results = await Promise.allSettled(ready);
    const failed = results.find((r) => r.status === 'rejected');
    if (!failed && slots.length === count) return slots;
    await this.#stopSlots(slots.filter((s) => this.#slots[s]));
    throw failed ? failed.reason
      : new PoolError(`cannot start ${count} more workers: the slot table is full`);
  }

  // Messages and failures belong to the worker that sent them: a retired worker that a browser
  // has not stopped yet says nothing about its slot's successor.
  #onWorkerMessage(slot, entry, msg) {
    if (this.#slots[slot] !== entry) return;
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

  #onWorkerFailure(slot, entry, error) {
    if (this.#slots[slot] !== entry || entry.exiting) return;
    const message = `pool worker ${slot} failed: ${error && error.message || error}`;
    if (entry.pending) {
      entry.pending.reject(new PoolError(message + workerHint()));
      entry.pending = null;
    } else this.#markBroken(message);
  }

  #markBroken(reason) {
    this.#broken ||= reason;
    if (this.#ctl) rt.markBroken(this.#ctl, reason);
  }

  // Throws unless the pool can be used; `idle: false` lets alloc/free run during a resize.
  #checkUsable(where, { idle = true } = {}) {
    if (this.#terminated) {
      throw new PoolError(`${where}: the pool was terminated; create a new one with createPool()`,
        { name: 'PoolTerminated', kernel: where });
    }
    if (!this.#broken && this.#ctl) this.#broken = rt.brokenNote(this.#ctl);
    if (this.#broken) {
      throw new PoolError(`${where}: the pool is broken (${this.#broken}); restart it: ` +
        'await pool.terminate() then createPool() again', { name: 'PoolBroken', kernel: where });
    }
    if (idle && this.#resizing) {
      throw statusError(where, CODES.E_BUSY, 'the pool is being resized',
        { advice: 'await pool.resize() (or pool.addModule()) first' });
    }
  }

  // Throws E_BUSY while a call runs (this thread is inside it: a poll or output callback).
  #checkIdle(where) {
    if (this.#active > 0 || (this.#counters && this.#counter32('in_call') !== 0)) {
      throw statusError(where, CODES.E_BUSY, 'a call is running on this pool');
    }
  }

  #needRuntime(where) {
    if (!this.#hasRuntime) {
      throw new TypeError(`${where}: this module has no pool runtime (jr_alloc, jr_set_threads, ` +
        'jr_counters): it is a foreign wasi-threads module; manage its memory yourself');
    }
  }

  // Calls the export `name` once and returns what it returned; every failure is one PoolError.
  #invoke(name, args, kind) {
    this.#checkUsable(name);
    if (this.#hasRuntime && Object.hasOwn(CONTROL, name)) {
      throw new TypeError(`pool.${kind}("${name}"): use ${CONTROL[name]} instead of the ` +
        'control export');
    }
    const fn = this.#exports[name];
    if (typeof fn !== 'function') {
      throw new TypeError(`pool.${kind}: the module has no export "${name}"`);
    }
    const sig = this.#sigs[name];
    if (kind === 'call' && sig && !(sig.results.length === 0 ||
        (sig.results.length === 1 && sig.results[0] === 'i32'))) {
      throw new TypeError(`pool.call: ${name} returns ${sig.results.join(', ')}, not a status; ` +
        `use pool.value("${name}", ...)`);
    }
    if (this.#active > 0) {
      throw statusError(name, CODES.E_BUSY, 'called from inside a running call on this pool');
    }
    const wasmArgs = convertArgs(name, sig, args);
    // Every call starts uncancelled (ABI.md: the host clears the flag).
    if (this.#counters) Atomics.store(this.#u32(), counterIndex(this.#counters, 'cancel'), 0);
    let result;
    this.#active++;
    try {
      result = fn(...wasmArgs);
    } catch (error) {
      throw this.#failure(name, error);
    } finally {
      this.#active--;
    }
    // A helper may have trapped while the call still returned.
    if (Atomics.load(this.#ctl, rt.BROKEN)) this.#checkUsable(name);
    return result;
  }

  // What a throw out of the export means: a terminated or broken pool, or a trap (which breaks it).
  #failure(name, error) {
    if (error instanceof TypeError) return error; // JS -> wasm conversion, before entering wasm
    if (error instanceof PoolAbort) {
      if (this.#terminated) {
        return new PoolError(`${name}: the pool was terminated during the call; create a new ` +
          'one with createPool()', { name: 'PoolTerminated', kernel: name, cause: error });
      }
      try {
        this.#checkUsable(name);
      } catch (broken) {
        return broken;
      }
    }
    const exit = error instanceof rt.WasiExit;
    const what = exit ? error.message : `trapped: ${error}`;
    this.#markBroken(`${name} ${what}`);
    return new PoolError(`${name} ${what}; the pool cannot be used any more: ` +
      'await pool.terminate() then createPool() again',
    { name: exit ? 'ProcExit' : 'WasmTrap', kernel: name, detail: what, cause: error });
  }

  // Calls a status-returning export: returns 0, or throws the PoolError of the status.
  call(name, ...args) {
    const status = this.#invoke(name, args, 'call');
    if (status === undefined || status === 0) return 0;
    if (typeof status !== 'number') {
      throw new TypeError(`pool.call: ${name} returned ${typeof status}, not a status; ` +
        `use pool.value("${name}", ...)`);
    }
    throw this.#statusError(name, status);
  }

  // Calls an export that returns a plain value (an address, a count) and returns it.
  value(name, ...args) {
    return this.#invoke(name, args, 'value');
  }

  // jr_strerror's text for a status code ('' for a foreign module).
  strerror(code) {
    if (!Number.isInteger(code)) throw new TypeError(`pool.strerror: code must be an integer`);
    return this.#strerror(code) ?? '';
  }

  #strerror(code) {
    if (!this.#exports || typeof this.#exports.jr_strerror !== 'function') return null;
    return this.#cString(this.#exports.jr_strerror(code) >>> 0);
  }

  #statusError(kernel, code, options) {
    return statusError(kernel, code, this.#strerror(code), options);
  }

  #cString(ptr) {
    const u8 = new Uint8Array(this.#memory.buffer);
    let end = ptr;
    while (end < u8.length && u8[end] !== 0) end++;
    return new TextDecoder().decode(u8.slice(ptr, end));
  }

  #u32() { return new Uint32Array(this.#memory.buffer); }
  #counter32(name) { return Atomics.load(this.#u32(), counterIndex(this.#counters, name)); }

  // A block of pool memory (16-byte aligned, zero-filled if `zero`); PoolError E_NOMEM when the
  // memory cannot grow. Allowed during a resize: the allocator is thread-safe.
  alloc(nbytes, zero = false) {
    return this.#allocate('pool.alloc', nbytes, () => this.#exports.jr_alloc(nbytes, zero ? 1 : 0));
  }

  // pool.alloc, with the address also stored into the u32 at `cell` (4-byte aligned, in memory
  // the caller owns) inside the call: for a caller that can drop a returned value (Python's
  // KeyboardInterrupt lands between bytecodes), whose cell's owner frees what the cell holds.
  allocInto(cell, nbytes, zero = false) {
    return this.#allocate('pool.allocInto', nbytes, () => {
      checkCell(cell, 'pool.allocInto', this.#memory.buffer.byteLength);
      return this.#exports.jr_alloc_into(cell, nbytes, zero ? 1 : 0);
    });
  }

  #allocate(where, nbytes, allocate) {
    this.#checkUsable(where, { idle: false });
    this.#needRuntime(where);
    checkU32(nbytes, where, 'nbytes must be an integer from 0 to 2**32 - 1');
    const ptr = allocate() >>> 0;
    if (ptr === 0) {
      const max = memoryLimits(this.#build, this.threaded).maximum * PAGE_BYTES;
      throw this.#statusError(where, CODES.E_NOMEM, {
        note: `cannot allocate ${nbytes} bytes (pool memory is ` +
          `${mib(this.#memory.buffer.byteLength)} MiB of at most ${mib(max)} MiB, ` +
          `${mib(this.status().bytesInUse)} MiB in use)`,
      });
    }
    return ptr;
  }

  // Frees a block of pool.alloc (0 is a no-op). A no-op on a terminated or broken pool, so
  // finalizers that run late never throw.
  free(ptr) {
    checkU32(ptr, 'pool.free', 'ptr must be an address from pool.alloc');
    if (this.#gone()) return;
    this.#needRuntime('pool.free');
    this.#exports.jr_free(ptr);
  }

  // Frees the block whose address the u32 at `cell` holds and sets it to 0, in one step (a
  // second freeCell of the cell is a no-op). A no-op on a terminated or broken pool.
  freeCell(cell) {
    if (this.#gone()) return;
    checkCell(cell, 'pool.freeCell', this.#memory.buffer.byteLength);
    this.#needRuntime('pool.freeCell');
    this.#exports.jr_free_cell(cell);
  }

  #gone() {
    return this.#terminated || this.#broken || (this.#ctl && Atomics.load(this.#ctl, rt.BROKEN));
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

  // The counters block decoded (readCounters) plus memoryBytes; no message, no call into wasm,
  // so it is safe while a call runs. A foreign module has no block: its fields are zero.
  status() {
    const memoryBytes = this.#memory.buffer.byteLength;
    if (!this.#counters) {
      return { magic: 0, abiVersion: 0, threads: this.#threads, busy: 0, cancel: false,
        maxThreads: this.#maxThreads, threaded: this.threaded, inCall: this.#active > 0,
        bytesInUse: 0, runtimeBytes: 0, calls: 0, tasks: 0, steals: 0, perThread: [],
        memoryBytes };
    }
    return { ...readCounters(this.#memory.buffer, this.#counters), memoryBytes };
  }

  // Asks the running call to stop at its next chunk (it then returns E_CANCELED). Safe from any
  // thread that shares the memory; this one only stores a flag. A foreign module has no flag:
  // cancel it through poll.
  cancel() {
    if (this.#counters) {
      Atomics.store(this.#u32(), counterIndex(this.#counters, 'cancel'), 1);
    }
  }

  // The one check of a thread count for this pool's build.
  #checkThreads(n, where) {
    if (!this.threaded && n !== 1) {
      throw statusError(where, CODES.E_INVAL, 'the single-thread build runs exactly 1 thread',
        { advice: this.fallbackReason ? `for threads: ${this.fallbackReason}`
          : 'create the pool with the threaded build (pool-mt.wasm) for threads' });
    }
    checkThreadCount(n, this.#maxThreads, where);
  }

  #setThreads(n) {
    const status = this.#exports.jr_set_threads(n);
    if (status !== 0) throw this.#statusError('jr_set_threads', status);
  }

  // Sets the thread count within the workers already started (synchronous: it cannot start a
  // worker). Returns the threads now running.
  setThreads(n) {
    this.#checkUsable('pool.setThreads');
    this.#checkIdle('pool.setThreads');
    this.#checkThreads(n, 'pool.setThreads');
    const workers = this.workers;
    if (this.threaded && n - 1 > workers) {
      throw statusError('pool.setThreads', CODES.E_THREADS,
        `${workers} helper workers are started, enough for ${workers + 1} threads`,
        { advice: `await pool.resize(${n}) starts the missing workers (pool.setThreads is ` +
          'synchronous and cannot)' });
    }
    if (this.#hasRuntime) this.#setThreads(n);
    this.#threads = n;
    return this.threads;
  }

  // Grow: start and await more workers, then let the runtime spawn onto them. Shrink: the runtime
  // retires helpers first, then their (now idle) workers are terminated. Refused (E_BUSY, nothing
  // changed) while a call or another resize runs.
  async resize(n) {
    this.#checkUsable('pool.resize');
    this.#checkIdle('pool.resize');
    this.#checkThreads(n, 'pool.resize');
    if (!this.threaded) return 1;
    const work = this.#resizeTo(n);
    this.#resizing = work;
    try {
      return await work;
    } finally {
      this.#resizing = null;
    }
  }

  async #resizeTo(n) {
    const before = this.workers, threads = this.threads;
    const started = n - 1 > before ? await this.#startWorkers(n - 1 - before) : [];
    try {
      if (this.#hasRuntime) this.#setThreads(n);
    } catch (error) {
      // Refused: put back the threads the runtime had (E_THREADS keeps the ones it started)
      // and stop as many workers as were started (whichever are idle now), so nothing changed.
      if (this.#hasRuntime && this.threads !== threads) this.#setThreads(threads);
      await this.#stopIdleWorkers(started.length);
      throw error;
    }
    this.#threads = n;
    if (n - 1 < before) await this.#stopIdleWorkers(before - (n - 1));
    return this.threads;
  }

  // Terminate `count` idle workers. Which slots are idle is the spawns' choice (a thread goes to
  // the first FREE slot, and a helper retired a moment ago may still be returning from
  // wasi_thread_start), so take whichever slots are FREE, highest first, until `count` are.
  async #stopIdleWorkers(count) {
    const claimed = [];
    const deadline = Date.now() + 10000;
    for (;;) {
      for (let slot = this.#slots.length - 1; slot >= 0 && claimed.length < count; slot--) {
        const entry = this.#slots[slot];
        if (entry && !claimed.includes(slot) &&
            rt.moveSlot(this.#ctl, slot, entry.gen, rt.S.FREE, rt.S.EXIT)) claimed.push(slot);
      }
      if (claimed.length === count) break;
      if (Date.now() > deadline) {
        await this.#stopSlots(claimed);
        throw new PoolError(`${count - claimed.length} of ${count} pool workers to stop did ` +
          'not become idle within 10 s');
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await this.#stopSlots(claimed);
  }

  // Stops the workers of `slots`: a worker that is not running a thread leaves at once, one that
  // is (only while starting, or when a stop follows a failure) is cut off by terminate().
  // Nothing waits for terminate() to take effect (a browser's returns before the worker has
  // stopped): the slot's generation keeps that worker off the slot (thread_runtime.mjs).
  async #stopSlots(slots) {
    for (const slot of slots) {
      const entry = this.#slots[slot];
      if (!entry) continue;
      rt.exitSlot(this.#ctl, slot, entry.gen);
      entry.exiting = true;
      entry.pending?.reject(new PoolError('the worker was stopped while starting'));
      entry.pending = null;
      await entry.worker?.terminate();
      rt.closeSlot(this.#ctl, slot, entry.gen);
      this.#slots[slot] = undefined;
    }
  }

  // Instantiate one more module ({name, module: BufferSource | WebAssembly.Module}) in every pool
  // thread, on the pool's memory. Its imports may name the exports of modules loaded before it.
  // Returns its exports in the caller's thread.
  async addModule({ name, module }) {
    this.#checkUsable('pool.addModule');
    this.#checkIdle('pool.addModule');
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
        `${error.message}`, { kernel: 'pool.addModule', cause: error });
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
    await this.#claimIdleSlot(slot, entry, rt.S.YIELD);
    return new Promise((resolve, reject) => {
      entry.pending = { resolve, reject };
      entry.worker.ref();
      entry.worker.post({ type: 'load', descs: this.#descs });
      Atomics.notify(this.#ctl, rt.slotIndex(slot));
    });
  }

  // Move a slot from FREE to `next`. A helper that jr_set_threads just retired stores FREE a
  // moment after wasi_thread_start returns, so wait for it (briefly, with a deadline).
  async #claimIdleSlot(slot, entry, next) {
    const deadline = Date.now() + 10000;
    while (!rt.moveSlot(this.#ctl, slot, entry.gen, rt.S.FREE, next)) {
      if (Date.now() > deadline) {
        throw new PoolError(`pool worker ${slot} did not become idle within 10 s ` +
          `(slot state ${rt.slotState(this.#ctl, slot)})`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  // Stops every worker; afterwards the pool cannot be used (a Node process can exit). Also while
  // a call runs (from its poll or output callback): the call then stops at its next poll with a
  // PoolTerminated error instead of waiting for threads that are gone.
  async terminate() {
    if (this.#terminated) return;
    this.#terminated = true;
    const calling = this.#active > 0 || (this.#counters && this.#counter32('in_call') !== 0);
    if (this.#counters && calling) this.cancel();
    if (!calling && this.#hasRuntime && this.#exports && !this.#broken && !this.#resizing &&
        !Atomics.load(this.#ctl, rt.BROKEN)) {
      // Let helpers leave wasm cleanly; termination below works either way.
      try { this.#exports.jr_set_threads(1); } catch { /* terminate regardless */ }
    }
    const all = [];
    this.#slots.forEach((entry, slot) => {
      if (!entry) return;
      entry.exiting = true;
      entry.pending?.reject(new PoolError('the pool was terminated while starting'));
      entry.pending = null;
      rt.exitSlot(this.#ctl, slot, entry.gen);
      if (entry.worker) all.push(entry.worker.terminate());
    });
    this.#slots = [];
    await Promise.all(all);
  }
}

export { Pool };
