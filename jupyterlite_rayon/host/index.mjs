// index.mjs: the JS host of the jupyterlite-rayon pool (a wasi-threads host), its public API.
//
// ES modules without a bundler: in Node (worker_threads) import this file; in a browser Worker
// load the graph of host/loader.py (one Blob URL per module). Contract: kernels/ABI.md.
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
// The caller must be a Worker in browsers (blocking waits trap on the main thread).
//
// Pool members:
//   threaded, fallbackReason (why st was chosen), memory, counters (address of the counters
//   block), threads, maxThreads, workers, broken (why it cannot be used any more), terminated,
//   instances (exports by module name), exports (raw; for foreign modules only)
//   call(name, ...args)    a kernel export: returns 0 or throws one PoolError
//   value(name, ...args)   an export returning a plain value: returns it
//   alloc(nbytes, zero)    an address; PoolError E_NOMEM when memory cannot grow
//   free(ptr)              a no-op on a terminated or broken pool
//   allocInto(cell, nbytes, zero), freeCell(cell)   the same, the address kept in a u32 cell
//                          of pool memory (for Python, whose KeyboardInterrupt can drop a
//                          returned address: jupyterlite_rayon/cells.py)
//   view(Ctor, ptr, n)     a typed array on the current memory buffer
//   strerror(code)         jr_strerror's text
//   status()               readCounters(...) + memoryBytes, without entering wasm
//   cancel()               the running call stops at its next chunk (E_CANCELED)
//   setThreads(n)          synchronous, within the workers already started
//   await resize(n)        starts or stops workers; E_BUSY (nothing changed) during a call
//   await addModule({name, module})   one more module in every thread, on the pool's memory
//   await terminate()      final; also during a call, which then ends with PoolTerminated
// Jitted modules (`@jr.jit`, kernels/ABI.md "Jitted modules"):
//   jitLoad(pool, bytes, nfuncs)   register a module; every thread loads it itself -> table_base
//   jitCall(pool, mainSlot, ctx)   run its main (jr_jit_call) -> status
// A user's wasi-threads module on workers of its own, its caller interruptible (foreign_host.mjs):
//   await loadForeign({wasm, helpers, poll, stdout, stderr})   -> call(name, ...args), view, fault
// Calls into the runtime's control exports (jr_alloc, jr_set_threads, ...) go through these
// members: pool.call/pool.value refuse them.
//
// PoolError fields (stable: the Python backend builds its exception from code + detail):
//   code    the status code of ABI.md (e.g. -2), or null for a host-side failure
//   status  the status name ('E_NOMEM'), or null
//   name    the status name for a status, else 'PoolBroken', 'PoolTerminated', 'WasmTrap',
//           'ProcExit', 'ThreadsUnavailable' or 'PoolError'
//   kernel  the export or pool member that failed
//   detail  what happened: jr_strerror's text (or the host's words for a status it decides)
//   advice  what to do: ABI.md's advice for the status (or the host's, when it knows better)
//   message `${kernel}: ${detail} (${status}); ${advice}` for a status
// Argument errors before anything enters wasm are TypeError or RangeError.

export { createPool } from './pool.mjs';
export { detectThreading } from './environment.mjs';
export { readModuleInfo } from './wasm_info.mjs';
export { PoolError } from './errors.mjs';
export { readCounters } from './counters.mjs';
export { jitCall, jitLoad } from './modules.mjs';
export { loadForeign } from './foreign_host.mjs';
