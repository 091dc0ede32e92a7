// errors.mjs: the host's one error class and the one conversion of a failed status into it.
import { STATUS_ADVICE, STATUS_NAMES } from './abi.mjs';

// Its fields (code, status, name, kernel, detail, advice) are documented, and kept stable, at
// the top of index.mjs.
export class PoolError extends Error {
  constructor(message, { code = null, status = null, name = 'PoolError', kernel = null,
    detail = null, advice = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = name;
    this.code = code;
    this.status = status;
    this.kernel = kernel;
    this.detail = detail;
    this.advice = advice;
  }
}

// A failed status as a PoolError. `detail` says what happened (jr_strerror, or the host's own
// words for a status the host decides), `note` adds context before it, `advice` replaces ABI.md's
// advice when the host knows better (e.g. the thread range of this build).
export function statusError(kernel, code, detail, { note = null, advice = null } = {}) {
  const status = STATUS_NAMES[code] ?? null;
  const what = advice ?? STATUS_ADVICE[code] ?? 'see kernels/ABI.md';
  const label = status ?? `status ${code}`;
  const head = [note, detail].filter(Boolean).join(': ');
  return new PoolError(`${kernel}: ${head ? `${head} (${label})` : label}; ${what}`,
    { code, status, name: status ?? 'PoolError', kernel, detail: detail || null, advice: what });
}

// Thrown from host_poll into a caller that waits on a pool that broke or was terminated: a join
// waiting for a job whose thread is gone would otherwise wait forever. Unwinding the caller's wasm
// stack is fine: such a pool is never entered again. Not exported from index.mjs.
export class PoolAbort extends Error {}
