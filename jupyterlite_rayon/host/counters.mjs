// counters.mjs: the one decoder of the counters block (kernels/ABI.md), from the generated
// offsets. It reads shared memory only (no message, no call into wasm), so it is safe at any time,
// from any thread that has the memory, also while a call runs.
import { COUNTERS_HEADER, THREAD_RECORD, THREAD_RECORDS_OFFSET, THREAD_RECORD_BYTES,
  THREAD_STATES } from './abi.mjs';

// Header fields that are flags (0/1) in memory and booleans in the decode.
const FLAGS = new Set(['cancel', 'threaded', 'in_call']);

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

function field(u32, dv, at, [offset, type]) {
  // u32 fields change under other threads: read them atomically; u64 counters are only shown.
  if (type === 'u32') return Atomics.load(u32, (at + offset) >>> 2);
  return Number(dv.getBigUint64(at + offset, true));
}

// Decodes the block at `address` of `buffer` (the pool memory's ArrayBuffer or
// SharedArrayBuffer) into {magic, abiVersion, threads, busy, cancel, maxThreads, threaded,
// inCall, bytesInUse, runtimeBytes, calls, tasks, steals, perThread: [{thread, state, tasks,
// steals}]}; flags are booleans, perThread lists the threads that are not absent (thread 0 is
// the caller), tasks and steals are totals over every record.
export function readCounters(buffer, address) {
  if (!Number.isInteger(address) || address <= 0 || address % 4 !== 0 ||
      address + THREAD_RECORDS_OFFSET > buffer.byteLength) {
    throw new RangeError(`readCounters: ${address} is not the address of a counters block ` +
      `in a memory of ${buffer.byteLength} bytes (pass pool.counters)`);
  }
  const u32 = new Uint32Array(buffer);
  const dv = new DataView(buffer);
  const out = {};
  for (const [name, spec] of Object.entries(COUNTERS_HEADER)) {
    if (name === 'reserved') continue;
    const value = field(u32, dv, address, spec);
    out[camel(name)] = FLAGS.has(name) ? value !== 0 : value;
  }
  const records = Math.min(out.maxThreads,
    Math.floor((buffer.byteLength - address - THREAD_RECORDS_OFFSET) / THREAD_RECORD_BYTES));
  out.tasks = 0;
  out.steals = 0;
  out.perThread = [];
  for (let i = 0; i < records; i++) {
    const at = address + THREAD_RECORDS_OFFSET + THREAD_RECORD_BYTES * i;
    const state = field(u32, dv, at, THREAD_RECORD.state);
    const tasks = field(u32, dv, at, THREAD_RECORD.tasks);
    const steals = field(u32, dv, at, THREAD_RECORD.steals);
    out.tasks += tasks;
    out.steals += steals;
    if (state !== 0) {
      out.perThread.push({ thread: i, state: THREAD_STATES[state] ?? `state ${state}`, tasks,
        steals });
    }
  }
  return out;
}

// The Int32Array index of a u32 header field, for Atomics.store/notify (e.g. 'cancel').
export function counterIndex(address, name) {
  const [offset, type] = COUNTERS_HEADER[name];
  if (type !== 'u32') throw new TypeError(`counters.${name} is not a u32 field`);
  return (address + offset) >>> 2;
}
