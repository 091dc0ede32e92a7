/**
 * The pool's counters block (kernels/ABI.md), decoded from the offsets in the generated abi.ts,
 * so the page reads the same fields the Python side reads, without a message to the kernel.
 */
import {
  ABI_VERSION,
  COUNTERS_HEADER,
  COUNTERS_MAGIC,
  THREAD_RECORD,
  THREAD_RECORD_BYTES,
  THREAD_RECORDS_OFFSET,
  THREAD_STATES
} from './abi.js';

// abi.ts types a field as (string | number)[]: [byte offset, 'u32' | 'u64'].
type Field = readonly (string | number)[];

/** One pool thread's record: every field of THREAD_RECORD, `state` by its name. */
export interface IThreadCounters {
  [field: string]: number | string;
  state: string;
  tasks: number;
  steals: number;
}

/** The header fields of the block, plus its per-thread records. */
export interface ICounters {
  [field: string]: number | IThreadCounters[];
  threads: number;
  busy: number;
  per_thread: IThreadCounters[];
}

/** Read one field of the block at `base` (u32 or u64; u64 as a Number, exact below 2^53). */
function readField(buffer: ArrayBufferLike, base: number, field: Field): number {
  const at = base + Number(field[0]);
  const type = field[1];
  // Atomics where aligned: the pool's threads write these while the page reads them.
  if (type === 'u32') {
    return at % 4 === 0
      ? Atomics.load(new Uint32Array(buffer, at, 1), 0)
      : new DataView(buffer, at, 4).getUint32(0, true);
  }
  if (type === 'u64') {
    return Number(
      at % 8 === 0
        ? Atomics.load(new BigUint64Array(buffer, at, 1), 0)
        : new DataView(buffer, at, 8).getBigUint64(0, true)
    );
  }
  throw new Error(`counters block: unknown field type ${type} (abi.ts is newer than this code)`);
}

/**
 * Decode the counters block at byte `address` of the pool's memory `buffer`. Throws when the
 * address holds no block of this ABI (a wrong address, or a kernel of another version).
 */
export function decodeCounters(buffer: ArrayBufferLike, address: number): ICounters {
  const header = COUNTERS_HEADER as Record<string, Field>;
  const magic = readField(buffer, address, header.magic);
  if (magic !== COUNTERS_MAGIC) {
    throw new Error(
      `no jupyterlite-rayon counters block at ${address}: magic 0x${magic.toString(16)}, ` +
        `expected 0x${COUNTERS_MAGIC.toString(16)}`
    );
  }
  const out: Record<string, number | IThreadCounters[]> = {};
  for (const [name, field] of Object.entries(header)) {
    out[name] = readField(buffer, address, field);
  }
  if (out.abi_version !== ABI_VERSION) {
    throw new Error(
      `the kernel's pool has ABI version ${out.abi_version}, this page expects ` +
        `${ABI_VERSION}: install the same jupyterlite-rayon version in the site and the kernel`
    );
  }
  const record = THREAD_RECORD as Record<string, Field>;
  const states = THREAD_STATES as Record<number, string>;
  const perThread: IThreadCounters[] = [];
  for (let i = 0; i < (out.threads as number); i++) {
    const base = address + THREAD_RECORDS_OFFSET + i * THREAD_RECORD_BYTES;
    const thread: Record<string, number | string> = {};
    for (const [name, field] of Object.entries(record)) {
      thread[name] = readField(buffer, base, field);
    }
    thread.state = states[thread.state as number] ?? String(thread.state);
    perThread.push(thread as IThreadCounters);
  }
  out.per_thread = perThread;
  return out as ICounters;
}
