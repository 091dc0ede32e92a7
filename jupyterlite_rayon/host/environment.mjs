// environment.mjs: where the host runs (Node worker_threads or a browser Worker) and whether this
// thread can run the threaded build.

import { ISOLATION_HEADERS } from './abi.mjs';

// A browser Worker is never Node, even where a bundler or shim defines `process`.
export const isNode = typeof WorkerGlobalScope === 'undefined' && typeof window === 'undefined' &&
  typeof process === 'object' && !!(process.versions && process.versions.node);

// The cores of this machine, the default number of pool threads.
export async function hostParallelism() {
  if (isNode) {
    const os = await import('node:os');
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  }
  return (typeof navigator === 'object' && navigator.hardwareConcurrency) || 1;
}

// A Content-Security-Policy without `worker-src blob:` is the usual reason a browser refuses.
export function workerHint() {
  return isNode ? '' : ' (if the page sets a Content-Security-Policy, it must allow worker-src ' +
    'blob:)';
}

// Can this thread run the threaded build? Returns {ok, reason, fix}.
export function detectThreading() {
  // The same words as jupyterlite_rayon/isolation.py (generated into abi.mjs); the Python side
  // adds the fix for the host the page is on.
  const fix = `serve the site with ${ISOLATION_HEADERS} (or credentialless), then reload the page`;
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
