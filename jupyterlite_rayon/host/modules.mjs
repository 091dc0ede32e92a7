// modules.mjs: jitted modules (`@jr.jit`, kernels/ABI.md "Jitted modules") in the JS host.
//
// The compiler (jupyterlite_rayon/jit) emits one small wasm module per signature. Wasm tables
// are per instance and a helper parked in Atomics.wait reads no messages, so the bytes go into
// pool memory and every thread loads what it lacks itself, when the pool module calls its
// `env.host_load_modules` import (before the thread runs jitted code).
//
// jitLoader() is stringified into the helper workers' source (workers.mjs) beside
// threadRuntime, so it must not reference anything outside itself.
import { CODES } from './abi.mjs';

export function jitLoader() {
  const HEADER_BYTES = 16; // count, table_end, table_start, lock
  const ENTRY_WORDS = 4; // ptr, len, table_base, nfuncs

  // env.host_load_modules for one instance of the pool module on `memory`. `instance()` gives
  // that instance (its exports exist only once it is made). Returns how many modules the
  // instance has after loading, or -1 (the call then ends with E_LOAD; lastError says why).
  function hostLoadModules(memory, instance) {
    const load = () => {
      try {
        const ex = instance().exports;
        const table = ex.__indirect_function_table;
        const at = ex.jr_jit_modules() >>> 0;
        const u32 = new Uint32Array(memory.buffer); // a fresh view: memory may have grown
        const count = Atomics.load(u32, at >>> 2);
        for (let i = 0; i < count; i++) {
          const e = (at + HEADER_BYTES) / 4 + ENTRY_WORDS * i;
          const [ptr, len, base, nfuncs] = [u32[e], u32[e + 1], u32[e + 2], u32[e + 3]];
          if (base + nfuncs <= table.length) continue; // this instance has it
          if (table.length < base) table.grow(base - table.length);
          // Compiling needs bytes of an ordinary buffer, not a view of the shared memory.
          const module = new WebAssembly.Module(new Uint8Array(memory.buffer, ptr, len).slice());
          if (table.grow(nfuncs) !== base) throw new Error('the table slots of a module moved');
          const imports = {};
          for (const imp of WebAssembly.Module.imports(module)) {
            let value;
            if (imp.module === 'env' && imp.name === 'memory') value = memory;
            else if (imp.module === 'env' && imp.name === 'table') value = table;
            else if (imp.module === 'env' && imp.name === 'table_base') {
              value = new WebAssembly.Global({ value: 'i32', mutable: false }, base);
            } else if (imp.module === 'pool') value = ex[imp.name];
            if (value === undefined) {
              throw new Error(`a jitted module imports ${imp.module}.${imp.name}, which the ` +
                'pool does not provide');
            }
            (imports[imp.module] ||= {})[imp.name] = value;
          }
          new WebAssembly.Instance(module, imports);
        }
        return count;
      } catch (error) {
        load.lastError = `${error && error.name || 'Error'}: ${error && error.message || error}`;
        return -1;
      }
    };
    load.lastError = '';
    return load;
  }

  return { hostLoadModules };
}


// Registers a jitted module on `pool` (a Pool of pool.mjs): validates it here, writes its bytes
// into pool memory and registers them; returns its table_base. Every thread loads it before it
// runs its code.
export function jitLoad(pool, bytes, nfuncs) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (!Number.isInteger(nfuncs) || nfuncs < 1) {
    throw new RangeError(`jitLoad: nfuncs must be a positive integer, got ${nfuncs}`);
  }
  if (!WebAssembly.validate(data)) {
    throw new TypeError('jitLoad: the engine refused the jitted module (it does not validate)');
  }
  const ptr = pool.alloc(data.length, false);
  pool.view(Uint8Array, ptr, data.length).set(data);
  const base = pool.value('jr_jit_add_module', ptr, data.length, nfuncs);
  if (base < 0) {
    pool.free(ptr);
    throw new RangeError(`jitLoad: the pool refused the module (${pool.strerror(base)})`);
  }
  return base; // the registry owns the bytes from now on
}

// Runs a jitted main (jr_jit_call) and returns its status (the jit runtime maps the jit's codes
// to exceptions); a thread that could not load the module is an Error here.
export function jitCall(pool, mainSlot, ctx) {
  const status = pool.value('jr_jit_call', mainSlot, ctx);
  if (status === CODES.E_LOAD) {
    throw new Error('jitCall: a pool thread could not load a jitted module; restart the pool');
  }
  return status;
}
