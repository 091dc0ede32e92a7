// foreign_host.mjs: a user's wasi-threads module (jr.load_module in the page) on workers: its own
// shared memory, helper workers that serve its `wasi.thread-spawn` (the slot table of
// thread_runtime.mjs, the pool's helper program of workers.mjs), and a caller worker that runs
// its exports (foreign_caller.mjs says why the caller is not the kernel's worker).
//
//   const mod = await loadForeign({ wasm, helpers: 2, poll, stdout, stderr });
//   mod.call('parallel_sum', ptr, n, 2);     // synchronous; throws a PoolError (below)
//   mod.view(Float64Array, ptr, n); mod.fault; await mod.whenReady(); mod.terminate();
//
// call() waits for the caller, prints its output as it comes, and every WAKE_MS asks `poll`
// (truthy: interrupt) and looks for a helper's fault. Errors are PoolErrors named:
//   WasmTrap / ProcExit (exitCode)  the caller trapped or exited; it has a fresh instance, so
//                                   the module keeps working
//   HelperFault   a helper trapped or exited during the call (`fault` says which); the caller
//                 was stopped, the module cannot be used any more
//   Interrupted   poll asked to stop (code E_CANCELED); the caller worker was terminated and a
//                 new one is starting (whenReady(): in a browser about 2.5 s, see GONE_AFTER_MS);
//                 helpers run on
//   Restarting    called before that new caller is ready
//   Lost          the caller cannot run any more (a fresh caller instance could not be made)
//   Closed        after terminate()
// Argument errors are TypeError or RangeError, before anything runs.
import { CODES, MAX_THREADS } from './abi.mjs';
import { memoryLimits } from './build_choice.mjs';
import { isNode } from './environment.mjs';
import { PoolError } from './errors.mjs';
import { callBlock, startCaller } from './foreign_caller.mjs';
import { jitLoader } from './modules.mjs';
import { threadRuntime } from './thread_runtime.mjs';
import { makeWasi } from './wasi.mjs';
import { asBytes, readModuleInfo } from './wasm_info.mjs';
import { prepareWorkers, startWorker } from './workers.mjs';

const rt = threadRuntime(makeWasi(), jitLoader());
const cb = callBlock();
// How often a waiting call looks at the interrupt buffer and the helpers: an interrupt or a
// helper's fault lands within this.
const WAKE_MS = 10;
// Worker.terminate() returns at once, but Chromium lets a worker that runs script go on for 2 s
// (Blink's kForcibleTerminationDelay), timed on the event loop of the worker that terminated it.
// A stopped caller would use the main stack, and the memory, beside its successor: the new caller
// becomes ready only once the old one is surely gone (Node: terminate() resolves then).
const GONE_AFTER_MS = 2500;

export async function loadForeign({ wasm, helpers = 0, poll, stdout, stderr } = {}) {
  const bytes = asBytes(wasm);
  if (!bytes) throw new TypeError('loadForeign: wasm must be the module\'s bytes');
  const info = readModuleInfo(bytes);
  const memory = info && info.memory;
  if (!memory || memory.module !== 'env' || memory.name !== 'memory' || !memory.shared) {
    throw new TypeError('loadForeign: the module must import a shared env.memory ' +
      '(link with --import-memory --shared-memory)');
  }
  if (!Number.isInteger(helpers) || helpers < 0 || helpers > MAX_THREADS - 1) {
    throw new RangeError(`loadForeign: helpers must be an integer from 0 to ${MAX_THREADS - 1}, ` +
      `got ${helpers}`);
  }
  if (poll !== undefined && typeof poll !== 'function') {
    throw new TypeError('loadForeign: poll must be a function returning truthy to interrupt');
  }
  const module = await WebAssembly.compile(bytes);
  await prepareWorkers();
  const host = new ForeignHost(module, info, { helpers, poll, stdout, stderr });
  try {
    await host._start(helpers);
  } catch (error) {
    await host.terminate();
    throw error;
  }
  return host;
}

class ForeignHost {
  #module; #sigs; #index; #memory; #ctl; #helpers = []; #caller = null; #poll; #out;
  #decoders = new Map(); #terminated = false; #lost = null; #calling = false;

  constructor(module, info, { helpers, poll, stdout, stderr }) {
    this.#module = module;
    this.#sigs = info.signatures || {};
    this.#index = new Map(Object.keys(this.#sigs).map((name, i) => [name, i]));
    this.#memory = new WebAssembly.Memory(memoryLimits({ info }, true));
    this.#ctl = rt.makeCtl(helpers);
    this.#poll = poll;
    const out = stdout || ((t) => console.log(t.replace(/\n$/, '')));
    const err = stderr || ((t) => console.error(t.replace(/\n$/, '')));
    this.#out = (fd, text) => {
      try {
        (fd === 2 ? err : out)(text);
      } catch (error) {
        // The module must not hang on a printer that fails: the text goes to the console.
        console.error(`foreign module output (fd ${fd}) could not be printed: ${error}\n${text}`);
      }
    };
  }

  get memory() { return this.#memory; }
  // Export signatures by name ({params, results}, readModuleInfo's).
  get signatures() { return this.#sigs; }
  // Live workers: helpers and the caller (0 once terminated).
  get workers() {
    return this.#terminated ? 0 : this.#helpers.length + (this.#caller?.worker ? 1 : 0);
  }
  get ready() { return !this.#terminated && !!this.#caller && this.#caller.ready; }
  get terminated() { return this.#terminated; }
  // Why a helper trapped or exited (it wrote this into the slot table), or null.
  get fault() { return rt.brokenNote(this.#ctl); }
  // Why the caller cannot run any more, or null.
  get lost() { return this.#lost; }
  // Resolves when a caller is ready (after an interrupt: the new one).
  whenReady() { return this.#caller.started; }

  async _start(helpers) {
    const ready = [];
    for (let slot = 0; slot < helpers; slot++) ready.push(this.#startHelper(slot));
    ready.push(this.#startCaller(true));
    const results = await Promise.allSettled(ready);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  #startHelper(slot) {
    return new Promise((resolve, reject) => {
      let started = false;
      const worker = startWorker((msg) => {
        if (msg.type === 'ready') {
          started = true;
          worker.unref();
          resolve();
        } else if (msg.type === 'write') {
          this.#out(msg.fd, msg.text);
        } else if (msg.type === 'error') {
          reject(new PoolError(`a helper worker cannot instantiate the module: ${msg.message}`));
        }
        // 'trap': the helper wrote why into the slot table already (fault).
      }, (error) => {
        if (this.#terminated) return;
        if (!started) reject(new PoolError(`a helper worker failed to start: ${error.message}`));
        else rt.markBroken(this.#ctl, `a helper worker failed: ${error.message}`);
      });
      this.#helpers.push(worker);
      worker.post({ type: 'init', slot, memory: this.#memory, ctl: this.#ctl,
        descs: [{ name: 'module', module: this.#module }] });
    });
  }

  // A caller worker with a call block of its own (a terminated caller may have left its block
  // in any state). `initialize`: run the module's _initialize (the first caller only). `gone`:
  // resolves once the caller this one replaces has stopped.
  #startCaller(initialize, gone = Promise.resolve()) {
    const caller = { worker: null, v: null, ready: false, stopped: false, started: null };
    const block = cb.make();
    caller.v = cb.views(block);
    this.#caller = caller;
    caller.started = new Promise((resolve, reject) => {
      const onMessage = (msg) => {
        if (msg.type === 'ready') {
          caller.worker.unref();
          gone.then(() => {
            caller.ready = !caller.stopped;
            resolve();
          });
        } else if (msg.type === 'write') {
          this.#out(msg.fd, msg.text);
        } else if (msg.type === 'error') {
          reject(new PoolError(`the module cannot be instantiated: ${msg.message}`));
        }
      };
      const onError = (error) => {
        if (caller.stopped || this.#terminated) return;
        if (!caller.ready) reject(new PoolError(`the caller worker failed: ${error.message}`));
        else this.#lost ||= `its caller worker failed: ${error.message}`;
      };
      startCaller(onMessage, onError).then((worker) => {
        caller.worker = worker;
        if (caller.stopped) {
          worker.terminate();
          reject(new PoolError('the module was closed while its caller started'));
          return;
        }
        worker.post({ type: 'init', memory: this.#memory, ctl: this.#ctl, module: this.#module,
          block, names: [...this.#index.keys()], sigs: this.#sigs, initialize });
      }, reject);
    });
    return caller.started;
  }

  // Returns a promise that resolves once the caller's worker has surely stopped.
  #stopCaller(caller) {
    caller.stopped = true;
    caller.ready = false;
    const stopped = caller.worker?.terminate();
    if (isNode) return Promise.resolve(stopped);
    return new Promise((resolve) => setTimeout(resolve, GONE_AFTER_MS));
  }

  // Calls export `name` in the caller worker and returns its result (a number, a BigInt for
  // i64, undefined for none).
  call(name, ...args) {
    const caller = this.#checkCallable(name);
    const sig = this.#sigs[name];
    if (args.length !== sig.params.length) {
      throw new TypeError(`${name} takes ${sig.params.length} arguments ` +
        `(${sig.params.join(', ')}), got ${args.length}`);
    }
    const v = caller.v;
    args.forEach((value, k) => {
      const type = sig.params[k];
      if (type === 'i64' ? !(typeof value === 'bigint' || Number.isInteger(value))
        : typeof value !== 'number') {
        throw new TypeError(`${name}: argument ${k + 1} (${type}) must be ` +
          `${type === 'i64' ? 'an integer' : 'a number'}, got ${String(value)}`);
      }
      cb.putArg(v, k, type, value);
    });
    v.i32[cb.EXPORT] = this.#index.get(name);
    v.i32[cb.NARGS] = args.length;
    this.#calling = true;
    try {
      Atomics.store(v.i32, cb.STATE, cb.S.CALL);
      Atomics.notify(v.i32, cb.STATE);
      this.#wait(name, caller);
      return this.#outcome(name, sig, v);
    } finally {
      this.#calling = false;
    }
  }

  #checkCallable(name) {
    if (this.#terminated) {
      throw new PoolError(`${name}: the module was closed`, { name: 'Closed', kernel: name });
    }
    if (this.#lost) {
      throw new PoolError(`${name}: the module's caller cannot run any more (${this.#lost})`,
        { name: 'Lost', kernel: name });
    }
    if (this.#calling) {
      throw new PoolError(`${name}: called from inside a running call of this module`,
        { name: 'E_BUSY', code: CODES.E_BUSY, kernel: name });
    }
    if (!this.#caller.ready) {
      throw new PoolError(`${name}: the module's caller thread is starting again after an ` +
        'interrupt', { name: 'Restarting', kernel: name });
    }
    const sig = this.#sigs[name];
    if (!sig || name === 'wasi_thread_start') {
      throw new TypeError(`the module has no exported function "${name}"`);
    }
    if (sig.results.length > 1) {
      throw new TypeError(`${name} returns ${sig.results.length} values; only exports with one ` +
        'result or none can be called');
    }
    if (sig.params.length > cb.MAX_ARGS) {
      throw new TypeError(`${name} takes ${sig.params.length} arguments; at most ` +
        `${cb.MAX_ARGS} are supported`);
    }
    return this.#caller;
  }

  // Until the call is DONE: print what the caller hands over, and every WAKE_MS stop it for a
  // helper's fault (the caller may be joining that helper: it would wait forever) or for poll.
  #wait(name, caller) {
    const v = caller.v;
    let check = performance.now() + WAKE_MS;
    for (;;) {
      const state = Atomics.load(v.i32, cb.STATE);
      if (state === cb.S.DONE) return;
      if (state === cb.S.OUTPUT) {
        this.#print(v.i32[cb.FD], cb.takeBytes(v));
        Atomics.store(v.i32, cb.STATE, cb.S.CALL);
        Atomics.notify(v.i32, cb.STATE);
        continue;
      }
      Atomics.wait(v.i32, cb.STATE, cb.S.CALL, WAKE_MS);
      if (performance.now() < check || Atomics.load(v.i32, cb.STATE) === cb.S.DONE) continue;
      check = performance.now() + WAKE_MS;
      if (Atomics.load(this.#ctl, rt.BROKEN)) {
        this.#stopCaller(caller);
        throw new PoolError(`${name}: ${this.fault}`, { name: 'HelperFault', kernel: name });
      }
      if (this.#interrupted()) {
        const gone = this.#stopCaller(caller);
        this.#startCaller(false, gone).catch((error) => { this.#lost ||= error.message; });
        throw new PoolError(`${name}: interrupted`, { name: 'Interrupted',
          code: CODES.E_CANCELED, kernel: name });
      }
    }
  }

  #interrupted() {
    if (!this.#poll) return false;
    try {
      return !!this.#poll();
    } catch (error) {
      this.#out(2, `foreign module poll callback failed, interrupting: ${error}\n`);
      return true;
    }
  }

  #print(fd, bytes) {
    if (!this.#decoders.has(fd)) this.#decoders.set(fd, new TextDecoder());
    // A chunk may end inside a UTF-8 sequence: the decoder keeps it for the next one.
    const text = this.#decoders.get(fd).decode(bytes, { stream: true });
    if (text) this.#out(fd, text);
  }

  #outcome(name, sig, v) {
    const outcome = v.i32[cb.OUTCOME];
    const text = outcome >= cb.OUT.TRAP ? new TextDecoder().decode(cb.takeBytes(v)) : '';
    const exitCode = v.i32[cb.EXIT_CODE];
    Atomics.store(v.i32, cb.STATE, cb.S.IDLE);
    if (outcome === cb.OUT.VALUE) return cb.getResult(v, sig.results[0]);
    if (outcome === cb.OUT.VOID) return undefined;
    if (outcome === cb.OUT.LOST) this.#lost = text;
    if (outcome === cb.OUT.EXIT) {
      const error = new PoolError(`${name} called proc_exit(${exitCode})`,
        { name: 'ProcExit', kernel: name, detail: text });
      error.exitCode = exitCode;
      throw error;
    }
    throw new PoolError(`${name} trapped: ${text}`, { name: 'WasmTrap', kernel: name,
      detail: text });
  }

  // A typed-array view on the current buffer of the module's memory (take a fresh one after
  // every call: memory may have grown).
  view(Ctor, ptr, length) {
    const bpe = Ctor && Ctor.BYTES_PER_ELEMENT;
    if (!bpe) throw new TypeError('view: pass a TypedArray constructor, e.g. Float64Array');
    if (!Number.isInteger(ptr) || ptr < 0 || ptr % bpe !== 0 ||
        !Number.isInteger(length) || length < 0) {
      throw new RangeError(`view: ptr must be a non-negative multiple of ${bpe} and length a ` +
        `non-negative integer, got ${ptr}, ${length}`);
    }
    const buffer = this.#memory.buffer;
    if (ptr + length * bpe > buffer.byteLength) {
      throw new RangeError(`view: [${ptr}, ${ptr + length * bpe}) is outside the module's ` +
        `memory (${buffer.byteLength} bytes)`);
    }
    return new Ctor(buffer, ptr, length);
  }

  // Stops every worker of the module (also helpers that loop forever; in Chromium a worker that
  // runs wasm stops up to 2 s later, see GONE_AFTER_MS); final.
  async terminate() {
    if (this.#terminated) return;
    this.#terminated = true;
    // Idle helpers leave their slot loop at once (a worker back in its event loop ends without
    // the grace); the rest are terminated.
    this.#helpers.forEach((_, slot) => {
      Atomics.store(this.#ctl, rt.slotIndex(slot), rt.S.EXIT);
      Atomics.notify(this.#ctl, rt.slotIndex(slot));
    });
    const all = this.#helpers.map((worker) => worker.terminate());
    if (this.#caller) {
      this.#caller.stopped = true;
      this.#caller.ready = false;
      all.push(this.#caller.worker?.terminate());
    }
    this.#helpers = [];
    await Promise.all(all);
  }
}
