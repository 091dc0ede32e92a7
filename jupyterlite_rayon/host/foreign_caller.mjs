// foreign_caller.mjs: the caller thread of a user's wasi-threads module (foreign_host.mjs), on a
// worker of its own, and the "call block" through which the kernel hands it calls.
//
// Why a worker of its own, not the kernel's worker as the pool's caller: a browser cannot stop
// wasm that loops (there are no epochs), except by terminating the worker it runs on, and the
// kernel's worker must live on. And a caller that joins a helper which trapped waits forever, so
// someone other than the caller must notice the fault. With the caller on its own worker, the
// kernel waits for the call, the interrupt buffer and the helpers' faults at once (WAKE_MS), and
// Worker.terminate() ends a caller that loops or waits; a new caller worker takes its place.
//
// Kernel and caller talk through one SharedArrayBuffer only: the caller never returns to its
// event loop between calls, and the kernel is blocked during a call (no messages either way).
// The caller's fd_write is handed to the kernel the same way (state OUTPUT), so its output reaches
// the cell that made the call, in order.
//
// callBlock() and callerMain() are stringified into the worker's source, so they must not
// reference anything outside themselves.
import { workerHint } from './environment.mjs';
import { jitLoader } from './modules.mjs';
import { threadRuntime } from './thread_runtime.mjs';
import { makeWasi } from './wasi.mjs';
import { prepareWorkers, startWorker } from './workers.mjs';

export function callBlock() {
  // Int32 words of the header.
  const STATE = 0, EXPORT = 1, NARGS = 2, OUTCOME = 3, EXIT_CODE = 4, FD = 5, LEN = 6;
  // STATE says who holds the block. IDLE: no call; CALL: the caller runs export EXPORT with NARGS
  // arguments; OUTPUT: the caller waits for the kernel to print LEN bytes of fd FD from the data
  // area; DONE: the call ended as OUTCOME says (the kernel then stores IDLE).
  const S = { IDLE: 0, CALL: 1, OUTPUT: 2, DONE: 3 };
  // VALUE: the result slot holds it; TRAP / EXIT: the data area says what (EXIT_CODE for EXIT);
  // LOST: it trapped and no fresh instance could be made, so this caller cannot run any more.
  const OUT = { VALUE: 0, VOID: 1, TRAP: 2, EXIT: 3, LOST: 4 };
  const MAX_ARGS = 32, ARGS_AT = 64, RESULT_AT = ARGS_AT + 8 * MAX_ARGS, DATA_AT = RESULT_AT + 8;
  const DATA_BYTES = 65536;

  const make = () => new SharedArrayBuffer(DATA_AT + DATA_BYTES);
  const views = (buffer) => ({
    i32: new Int32Array(buffer),
    f64: new Float64Array(buffer),
    i64: new BigInt64Array(buffer),
    data: new Uint8Array(buffer, DATA_AT, DATA_BYTES),
  });
  // A value slot holds an i64 as a BigInt, any other type as a double (exact for i32, u32, f32).
  const put = (v, at, type, value) => {
    if (type === 'i64') v.i64[at / 8] = BigInt.asIntN(64, BigInt(value));
    else v.f64[at / 8] = Number(value);
  };
  const get = (v, at, type) => (type === 'i64' ? v.i64[at / 8] : v.f64[at / 8]);
  const putArg = (v, k, type, value) => put(v, ARGS_AT + 8 * k, type, value);
  const getArg = (v, k, type) => get(v, ARGS_AT + 8 * k, type);
  const putResult = (v, type, value) => put(v, RESULT_AT, type, value);
  const getResult = (v, type) => get(v, RESULT_AT, type);
  const putText = (v, text) => {
    const bytes = new TextEncoder().encode(text).subarray(0, DATA_BYTES);
    v.data.set(bytes);
    v.i32[LEN] = bytes.length;
  };
  // A copy: TextDecoder refuses views of shared memory.
  const takeBytes = (v) => v.data.slice(0, v.i32[LEN]);

  return { STATE, EXPORT, NARGS, OUTCOME, EXIT_CODE, FD, LEN, S, OUT, MAX_ARGS, DATA_BYTES, make,
    views, putArg, getArg, putResult, getResult, putText, takeBytes };
}

// The caller worker's main: one `init` message ({memory, ctl, module, block, sigs, initialize}),
// then it serves calls from the block until it is terminated. `rt` is threadRuntime(), `cb`
// callBlock().
export function callerMain(rt, cb) {
  let post;
  const describe = (error) => `${error && error.name || 'Error'}: ${error && error.message || error}`;

  function serve(msg) {
    const { memory, ctl, module, block, sigs } = msg;
    const v = cb.views(block);
    const encoder = new TextEncoder();
    // During a call the kernel prints (state OUTPUT) and lets this thread go on; outside one
    // (the module's _initialize) nobody waits on the block, so the text goes as a message.
    const write = (fd, text) => {
      if (Atomics.load(v.i32, cb.STATE) !== cb.S.CALL) {
        post({ type: 'write', fd, text });
        return;
      }
      const bytes = encoder.encode(text);
      for (let at = 0; at < bytes.length; at += cb.DATA_BYTES) {
        const chunk = bytes.subarray(at, at + cb.DATA_BYTES);
        v.data.set(chunk);
        v.i32[cb.FD] = fd;
        v.i32[cb.LEN] = chunk.length;
        Atomics.store(v.i32, cb.STATE, cb.S.OUTPUT);
        Atomics.notify(v.i32, cb.STATE);
        while (Atomics.load(v.i32, cb.STATE) === cb.S.OUTPUT) {
          Atomics.wait(v.i32, cb.STATE, cb.S.OUTPUT);
        }
      }
    };
    // spawn() hands module index 0 to the helpers: they load the same one descriptor.
    const instantiate = () => rt.instantiateAll([{ name: 'module', module }],
      { memory, ctl, poll: () => 0, write })[0].instance.exports;
    let exports;
    try {
      exports = instantiate();
      // The module's own initialisation runs once per memory: a caller that replaces one that
      // was stopped finds the memory initialised (wasi-libc's _initialize traps if run twice).
      if (msg.initialize && typeof exports._initialize === 'function') exports._initialize();
    } catch (error) {
      post({ type: 'error', message: describe(error) });
      return;
    }
    post({ type: 'ready' });
    for (;;) {
      let state;
      while ((state = Atomics.load(v.i32, cb.STATE)) !== cb.S.CALL) {
        Atomics.wait(v.i32, cb.STATE, state);
      }
      const name = msg.names[v.i32[cb.EXPORT]];
      const sig = sigs[name];
      const args = [];
      for (let k = 0; k < v.i32[cb.NARGS]; k++) args.push(cb.getArg(v, k, sig.params[k]));
      let outcome = cb.OUT.VOID, code = 0;
      try {
        const result = exports[name](...args);
        if (result !== undefined) {
          cb.putResult(v, sig.results[0], result);
          outcome = cb.OUT.VALUE;
        }
      } catch (error) {
        const exit = error instanceof rt.WasiExit;
        outcome = exit ? cb.OUT.EXIT : cb.OUT.TRAP;
        code = exit ? error.exitCode : 0;
        cb.putText(v, describe(error));
        // The trapped frames left this instance's stack pointer moved: a fresh one on the same
        // memory is clean (as wasmtime's caller after a trap), so the module keeps working.
        try {
          exports = instantiate();
        } catch (again) {
          outcome = cb.OUT.LOST;
          cb.putText(v, `${describe(error)}; no new instance of the module could be made: ` +
            describe(again));
        }
      }
      v.i32[cb.OUTCOME] = outcome;
      v.i32[cb.EXIT_CODE] = code;
      Atomics.store(v.i32, cb.STATE, cb.S.DONE);
      Atomics.notify(v.i32, cb.STATE);
    }
  }

  const handle = (msg) => {
    if (msg.type === 'init') serve(msg);
  };
  if (typeof WorkerGlobalScope === 'undefined' && typeof process === 'object' &&
      process.versions && process.versions.node) {
    import('node:worker_threads').then(({ parentPort }) => {
      post = (m) => parentPort.postMessage(m);
      parentPort.on('message', handle);
    });
  } else {
    post = (m) => self.postMessage(m);
    self.onmessage = (e) => handle(e.data);
  }
}

export const CALLER_SOURCE = `"use strict";\n(${callerMain})((${threadRuntime})((${makeWasi})(), ` +
  `(${jitLoader})()), (${callBlock})());\n`;

// Starts one caller worker (Node worker_threads or a browser Worker), as workers.mjs starts
// the pool's helpers.
export async function startCaller(onMessage, onError) {
  await prepareWorkers();
  try {
    return startWorker(onMessage, onError, CALLER_SOURCE);
  } catch (error) {
    throw new Error(`cannot start the caller worker: ${error.message}${workerHint()}`);
  }
}
