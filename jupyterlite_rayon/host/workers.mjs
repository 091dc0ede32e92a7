// workers.mjs: the helper workers: their source (built from strings, so no worker file has to be
// located: in JupyterLite this module itself comes from a Blob URL) and starting one, in Node
// (worker_threads) or a browser.
import { isNode } from './environment.mjs';
import { jitLoader } from './modules.mjs';
import { threadRuntime } from './thread_runtime.mjs';
import { makeWasi } from './wasi.mjs';

// A helper worker's main: take `init`/`load` messages, then serve threads from the slot table.
function workerMain(rt) {
  let post, ctx, loaded, slot, gen;
  const handle = (msg) => {
    let from;
    try {
      if (msg.type === 'init') {
        ({ slot, gen } = msg);
        // Without a generation (foreign_host.mjs, whose slots are never reused): generation 0,
        // the slot left EMPTY by makeCtl.
        from = gen === undefined ? rt.S.EMPTY : rt.S.START;
        gen ??= 0;
        ctx = {
          memory: msg.memory,
          ctl: msg.ctl,
          // host_poll belongs to the caller (ABI.md); a helper only reports a broken pool.
          poll: () => Atomics.load(msg.ctl, rt.BROKEN),
          write: (fd, text) => post({ type: 'write', fd, text }),
        };
        loaded = rt.instantiateAll(msg.descs, ctx);
      } else if (msg.type === 'load') {
        from = rt.S.YIELD;
        rt.instantiateAll(msg.descs, ctx, loaded);
      } else return;
    } catch (error) {
      post({ type: 'error', slot, message: String(error && error.message || error) });
      return;
    }
    // Stopped while it loaded (its slot is EXIT, or already a newer worker's): serve nothing.
    if (!rt.slotReady(ctx.ctl, slot, gen, from)) return;
    post({ type: 'ready', slot });
    const how = rt.slotLoop(ctx.ctl, slot, gen, rt.threadStarts(loaded));
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

// The helper's whole program: workerMain, the thread runtime, WASI and the jit's module loader,
// each stringified whole.
export const WORKER_SOURCE = `"use strict";\n(${workerMain})((${threadRuntime})((${makeWasi})(), ` +
  `(${jitLoader})()));\n`;

let nodeWorkerThreads = null;
const blobUrls = new Map(); // worker source -> its Blob URL, made once

// Call (and await) once before startWorker: Node's Worker comes from a dynamic import.
export async function prepareWorkers() {
  if (isNode && !nodeWorkerThreads) nodeWorkerThreads = await import('node:worker_threads');
}

// Starts one worker behind one small interface, for either kind of Worker: a pool helper, or
// the program `source` (the foreign module's caller).
export function startWorker(onMessage, onError, source = WORKER_SOURCE) {
  let worker;
  if (isNode) {
    worker = new nodeWorkerThreads.Worker(source, { eval: true });
    worker.on('message', onMessage);
    worker.on('error', onError);
    // terminate() exits with 1; anything else is a worker that died on its own.
    worker.on('exit', (code) => {
      if (code !== 0 && code !== 1) onError(new Error(`exit ${code}`));
    });
  } else {
    if (!blobUrls.has(source)) {
      blobUrls.set(source, URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
    }
    worker = new Worker(blobUrls.get(source));
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
