// wasi.mjs: the minimal WASI preview1 of the host, for foreign wasi-threads modules: output,
// clocks, random, empty args/environ, proc_exit raises; everything else is ENOSYS.
//
// makeWasi() is stringified into the helper workers' source (workers.mjs), so it must not
// reference anything outside itself.

export function makeWasi() {
  class WasiExit extends Error {
    constructor(code) {
      super(`the module called proc_exit(${code})`);
      this.name = 'ProcExit';
      this.exitCode = code;
    }
  }

  // Returns name => the import function of wasi_snapshot_preview1 `name`, on `memory`; `write`
  // takes (fd, text) for fd_write to 1 and 2.
  function imports(memory, write) {
    const ENOSYS = 52, EBADF = 8;
    const dv = () => new DataView(memory.buffer);
    const bytes = (ptr, len) => new Uint8Array(memory.buffer, ptr, len).slice();
    const zero2 = (a, b) => { dv().setUint32(a, 0, true); dv().setUint32(b, 0, true); return 0; };
    const now = (clock) => (clock === 0 ? Date.now() * 1e6 : performance.now() * 1e6);
    const fns = {
      fd_write(fd, iovs, iovsLen, nwritten) {
        if (fd !== 1 && fd !== 2) return EBADF;
        const d = dv();
        const parts = [];
        let total = 0;
        for (let k = 0; k < iovsLen; k++) {
          const p = d.getUint32(iovs + 8 * k, true), l = d.getUint32(iovs + 8 * k + 4, true);
          parts.push(bytes(p, l));
          total += l;
        }
        const all = new Uint8Array(total);
        let o = 0;
        for (const part of parts) { all.set(part, o); o += part.length; }
        write(fd, new TextDecoder().decode(all));
        d.setUint32(nwritten, total, true);
        return 0;
      },
      clock_time_get(clock, _precision, out) {
        dv().setBigUint64(out, BigInt(Math.round(now(clock))), true);
        return 0;
      },
      clock_res_get(_clock, out) { dv().setBigUint64(out, 1000n, true); return 0; },
      random_get(ptr, len) {
        // getRandomValues refuses shared views: fill a private buffer, then copy.
        const tmp = new Uint8Array(len);
        for (let o = 0; o < len; o += 65536) crypto.getRandomValues(tmp.subarray(o, o + 65536));
        new Uint8Array(memory.buffer, ptr, len).set(tmp);
        return 0;
      },
      args_sizes_get: zero2,
      environ_sizes_get: zero2,
      args_get: () => 0,
      environ_get: () => 0,
      sched_yield: () => 0,
      proc_exit(code) { throw new WasiExit(code); },
    };
    return (name) => fns[name] || (() => ENOSYS);
  }

  return { WasiExit, imports };
}
