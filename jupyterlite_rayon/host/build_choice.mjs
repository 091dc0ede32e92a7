// build_choice.mjs: compiling the builds a caller passes and choosing one: the threaded build
// (pool-mt.wasm) when this thread can run it, else the single-thread build (pool-st.wasm), with
// the reason; and the memory each needs.
import { MEMORY_MAX_PAGES, MEMORY_MIN_PAGES } from './abi.mjs';
import { detectThreading } from './environment.mjs';
import { PoolError } from './errors.mjs';
import { asBytes, readModuleInfo } from './wasm_info.mjs';

// Returns {module, info}: info (limits, signatures) only when the bytes were given.
export async function compileSource(source, label) {
  if (source instanceof WebAssembly.Module) return { module: source, info: null };
  const bytes = asBytes(source);
  if (!bytes) {
    throw new TypeError(`createPool: wasm${label} must be a BufferSource (ArrayBuffer, ` +
      'Uint8Array) or a WebAssembly.Module');
  }
  const info = readModuleInfo(bytes);
  return { module: await WebAssembly.compile(bytes), info };
}

// A single build given without saying which: its memory import (or wasi_thread_start) tells.
function isThreadedModule(compiled) {
  if (compiled.info && compiled.info.memory) return compiled.info.memory.shared;
  return WebAssembly.Module.exports(compiled.module).some((e) => e.name === 'wasi_thread_start');
}

// wasm: bytes or a Module of one build, or {mt, st}; threaded: 'auto', true or false. Returns
// {build: {module, info}, threaded, fallbackReason} (why st was chosen, or null).
export async function chooseBuild(wasm, threaded) {
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

// The WebAssembly.Memory descriptor of a build: the module's declared limits, else ABI.md's.
export function memoryLimits(build, threaded) {
  const m = build.info && build.info.memory;
  const initial = m ? m.initial : MEMORY_MIN_PAGES;
  const maximum = m && m.maximum !== null ? m.maximum : MEMORY_MAX_PAGES;
  return threaded ? { initial, maximum, shared: true } : { initial, maximum };
}
