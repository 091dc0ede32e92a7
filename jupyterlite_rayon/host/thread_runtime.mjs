// thread_runtime.mjs: the code every pool thread runs (the caller and each helper worker): the
// slot table that `thread-spawn` hands threads through, and instantiating the modules of a pool
// on its memory.
//
// Why a slot table: a worker created inside `thread-spawn` while the spawner blocks deadlocks
// in browsers, so helpers are pre-started; `thread-spawn` then hands a (tid, arg) to an idle
// helper through a SharedArrayBuffer with compareExchange + Atomics.notify, synchronously, from
// any thread, with no postMessage.
//
// threadRuntime(wasi) is stringified into the helper workers' source (workers.mjs), so it must
// not reference anything outside itself; `wasi` is makeWasi() of wasi.mjs, `jit` jitLoader() of
// modules.mjs.

export function threadRuntime(wasi, jit) {
  // ctl: Int32Array over a SharedArrayBuffer.
  //   [0] next tid, [1] number of slots, [2] broken flag (a thread trapped), [3] reserved,
  //   slot i at 4 + 4*i: [word, tid, arg, module index], word = generation << 3 | state
  const NEXT_TID = 0, NSLOTS = 1, BROKEN = 2, SLOT_BASE = 4, SLOT_SIZE = 4;
  // EMPTY: no worker behind the slot; START: a worker is being started for it; FREE: idle
  // worker, claimable; CLAIMED: a spawner is filling it in; GO: run wasi_thread_start; EXIT:
  // leave; YIELD: return to the event loop to take a message; DEAD: the thread trapped.
  const S = { EMPTY: 0, FREE: 1, CLAIMED: 2, GO: 3, EXIT: 4, YIELD: 5, DEAD: 6, START: 7 };
  const STATE_BITS = 3, STATE_MASK = 7, GEN_MASK = 0x0fffffff;

  // Why a generation in the slot word. A browser's Worker.terminate() returns at once and the
  // worker stops later (it may be parked in Atomics.wait, or not yet scheduled, when the slot
  // is given to its successor). If the retired worker then saw its successor's FREE and GO, two
  // threads would run one helper's start block: one stack, one TLS block, one deque owner
  // (issue 11: a call_indirect on a garbage job pointer, "table index is out of bounds").
  // So every worker a slot gets is a new generation (the host raises it when it starts one),
  // every transition is a compareExchange on the whole word, and a worker acts only on words of
  // its own generation: a word of another generation, or EMPTY/EXIT of its own (the host is
  // done with it), makes it leave the slot loop for good. Nothing waits for a terminate() to
  // finish, so the protocol is the same in Node, where terminate() happens to be synchronous.
  const word = (gen, state) => ((gen & GEN_MASK) << STATE_BITS) | state;
  const stateOf = (w) => w & STATE_MASK;
  const genOf = (w) => (w >>> STATE_BITS) & GEN_MASK;

  // After the slots: NOTE_BYTES of UTF-8 saying why the pool broke, written by the thread that
  // trapped, so the blocked caller can report it without waiting for a message.
  const NOTE_BYTES = 512;

  function makeCtl(nslots) {
    const size = (SLOT_BASE + SLOT_SIZE * nslots) * 4 + NOTE_BYTES;
    // Without threads (and, in a browser that is not isolated, without SharedArrayBuffer) the
    // table is only the broken flag and the note: a plain buffer does.
    const Buffer = nslots > 0 ? SharedArrayBuffer : ArrayBuffer;
    const ctl = new Int32Array(new Buffer(size));
    ctl[NEXT_TID] = 1;
    ctl[NSLOTS] = nslots;
    return ctl;
  }

  function noteArea(ctl) {
    return new Uint8Array(ctl.buffer, (SLOT_BASE + SLOT_SIZE * ctl[NSLOTS]) * 4, NOTE_BYTES);
  }

  // First writer wins: later traps are usually consequences of the first.
  function markBroken(ctl, why) {
    if (Atomics.compareExchange(ctl, BROKEN, 0, -1) !== 0) return;
    const area = noteArea(ctl);
    const bytes = new TextEncoder().encode(why).slice(0, NOTE_BYTES - 1);
    area.set(bytes);
    area[bytes.length] = 0;
    Atomics.store(ctl, BROKEN, 1);
  }

  function brokenNote(ctl) {
    const flag = Atomics.load(ctl, BROKEN);
    if (flag !== 1) return flag ? 'a pool thread failed' : null;
    const area = noteArea(ctl);
    const end = area.indexOf(0);
    return new TextDecoder().decode(area.slice(0, end < 0 ? area.length : end));
  }

  function slotIndex(slot) {
    return SLOT_BASE + SLOT_SIZE * slot;
  }

  // ---- the host's side of a slot (pool.mjs, on the thread that owns the workers) ----------

  // The state of a slot (S.*), whatever its generation.
  function slotState(ctl, slot) {
    return stateOf(Atomics.load(ctl, slotIndex(slot)));
  }

  // An EMPTY slot gets a new worker: returns the new generation, with the slot at START. A
  // worker of an older generation that still runs leaves as soon as it looks at the slot.
  function openSlot(ctl, slot) {
    const b = slotIndex(slot);
    const old = Atomics.load(ctl, b);
    if (stateOf(old) !== S.EMPTY) throw new Error(`slot ${slot} is not empty (${stateOf(old)})`);
    const gen = (genOf(old) + 1) & GEN_MASK;
    Atomics.store(ctl, b, word(gen, S.START));
    return gen;
  }

  // Move slot `slot` of generation `gen` from state `from` to `to`; true if it was in `from`.
  function moveSlot(ctl, slot, gen, from, to) {
    const b = slotIndex(slot);
    const ok = Atomics.compareExchange(ctl, b, word(gen, from), word(gen, to)) === word(gen, from);
    if (ok) Atomics.notify(ctl, b);
    return ok;
  }

  // Tell the worker of generation `gen` to leave, whatever it is doing (it sees EXIT when its
  // thread returns); a no-op once the slot has a newer generation.
  function exitSlot(ctl, slot, gen) {
    const b = slotIndex(slot);
    for (;;) {
      const w = Atomics.load(ctl, b);
      if (genOf(w) !== gen || stateOf(w) === S.EXIT || stateOf(w) === S.EMPTY) return;
      if (Atomics.compareExchange(ctl, b, w, word(gen, S.EXIT)) === w) break;
    }
    Atomics.notify(ctl, b);
  }

  // The host is done with the worker of generation `gen` (it was told to exit and terminated):
  // the slot is EMPTY, ready for a new generation. A worker that missed EXIT (a browser
  // worker that has not stopped yet) sees EMPTY of its own generation and leaves.
  function closeSlot(ctl, slot, gen) {
    const b = slotIndex(slot);
    Atomics.store(ctl, b, word(gen, S.EMPTY));
    Atomics.notify(ctl, b);
  }

  // ---- spawning (any pool thread) ----------------------------------------------------------

  // wasi `thread-spawn`: hand (tid, arg) to an idle worker. Returns tid > 0, or -1 (EAGAIN)
  // when no worker becomes idle within SPAWN_WAIT_MS (the runtime reports E_THREADS).
  // Waiting a little matters: a thread that has just told its joiner it is done is still
  // returning from wasi_thread_start, and its worker is free a moment later.
  const SPAWN_WAIT_MS = 100;

  function spawn(ctl, moduleIndex, arg) {
    const deadline = performance.now() + SPAWN_WAIT_MS;
    for (;;) {
      const r = claimAndGo(ctl, moduleIndex, arg);
      if (r > 0) return r;
      // r === -1: no thread runs, so no worker will free up (none started, or all gone).
      if (r === -1 || performance.now() > deadline) return -1;
      const b = slotIndex(-r - 2);
      const w = Atomics.load(ctl, b);
      if (stateOf(w) === S.GO || stateOf(w) === S.CLAIMED) Atomics.wait(ctl, b, w, 1);
    }
  }

  // Claims a FREE slot and starts the thread: returns its tid. Otherwise -1 when no slot runs a
  // thread, or -(slot + 2) of a running slot to wait on.
  function claimAndGo(ctl, moduleIndex, arg) {
    const n = ctl[NSLOTS];
    let running = -1;
    for (let i = 0; i < n; i++) {
      const b = slotIndex(i);
      const w = Atomics.load(ctl, b);
      const state = stateOf(w);
      if (state === S.FREE) {
        const gen = genOf(w);
        // The generation in the compare: a slot reopened meanwhile is not claimed.
        if (Atomics.compareExchange(ctl, b, w, word(gen, S.CLAIMED)) !== w) {
          i--; // look at this slot again
          continue;
        }
        // wasi-threads tids are 1..2^29-1; wrap rather than overflow in a long-lived pool.
        const tid = ((Atomics.add(ctl, NEXT_TID, 1) - 1) % 0x1ffffffe) + 1;
        ctl[b + 1] = tid;
        ctl[b + 2] = arg;
        ctl[b + 3] = moduleIndex;
        // Only this spawner moves a CLAIMED slot: a plain store publishes tid, arg, module.
        Atomics.store(ctl, b, word(gen, S.GO));
        Atomics.notify(ctl, b);
        return tid;
      }
      if ((state === S.GO || state === S.CLAIMED) && running < 0) running = -(i + 2);
    }
    return running;
  }

  // ---- a helper worker's side of its slot (workers.mjs) ----------------------------------

  // A started worker has loaded its modules: START -> FREE. False when the host stopped it (or
  // gave the slot to a newer worker) meanwhile: the worker must not serve the slot.
  function slotReady(ctl, slot, gen, from = S.START) {
    return moveSlot(ctl, slot, gen, from, S.FREE);
  }

  // A helper's life between threads: wait for GO, run the thread, repeat. Returns 'exit',
  // 'yield' or {trap}. Blocking here is fine: helpers are workers.
  function slotLoop(ctl, slot, gen, starts) {
    const b = slotIndex(slot);
    for (;;) {
      const w = Atomics.load(ctl, b);
      const state = stateOf(w);
      // The slot is another worker's now, or the host is done with this one: leave for good.
      if (genOf(w) !== gen || state === S.EXIT || state === S.EMPTY) return 'exit';
      if (state === S.GO) {
        try {
          starts[ctl[b + 3]](ctl[b + 1], ctl[b + 2]);
        } catch (error) {
          moveSlot(ctl, slot, gen, S.GO, S.DEAD);
          markBroken(ctl, `pool thread ${slot + 1} trapped: ${error && error.name || 'Error'}: ` +
            `${error && error.message || error}`);
          return { trap: error };
        }
        // Fails only if the host said EXIT meanwhile (terminate): the loop then leaves.
        moveSlot(ctl, slot, gen, S.GO, S.FREE);
        continue;
      }
      if (state === S.YIELD) return 'yield';
      Atomics.wait(ctl, b, w);
    }
  }

  // Instantiate every descriptor ({name, module}) on one memory, in order. A module may import
  // `env.memory`, `wasi.thread-spawn`, `env.host_poll`, `env.host_load_modules` (the pool's
  // jitted modules, loaded into this instance), `wasi_snapshot_preview1.*`, and the
  // exports of any module loaded before it under that module's name.
  function instantiateAll(descs, ctx, loaded = []) {
    const { memory, ctl, poll, write } = ctx;
    const wasiImport = wasi.imports(memory, write);
    for (let index = loaded.length; index < descs.length; index++) {
      const { name, module } = descs[index];
      const imports = {};
      let instance;
      for (const imp of WebAssembly.Module.imports(module)) {
        let value;
        const key = `${imp.module}.${imp.name}`;
        if (key === 'env.memory') value = memory;
        else if (key === 'wasi.thread-spawn') value = (arg) => spawn(ctl, index, arg);
        else if (key === 'env.host_poll') value = poll;
        else if (key === 'env.host_load_modules') {
          value = jit.hostLoadModules(memory, () => instance);
        }
        else if (imp.module === 'wasi_snapshot_preview1') value = wasiImport(imp.name);
        else {
          const from = loaded.find((l) => l.name === imp.module);
          value = from && from.instance.exports[imp.name];
        }
        if (value === undefined) {
          throw new Error(`module "${name}" imports ${key}, which the pool host does not provide ` +
            '(it provides env.memory, wasi.thread-spawn, env.host_poll, wasi_snapshot_preview1 ' +
            'and the exports of modules loaded before it)');
        }
        (imports[imp.module] ||= {})[imp.name] = value;
      }
      instance = new WebAssembly.Instance(module, imports);
      loaded.push({ name, instance });
    }
    return loaded;
  }

  function threadStarts(loaded) {
    return loaded.map(({ name, instance }) => instance.exports.wasi_thread_start ||
      (() => {
        throw new Error(`module "${name}" spawned a thread but has no wasi_thread_start`);
      }));
  }

  return { S, BROKEN, NSLOTS, makeCtl, slotIndex, slotState, openSlot, moveSlot, exitSlot,
    closeSlot, spawn, slotReady, slotLoop, instantiateAll, threadStarts, markBroken, brokenNote,
    WasiExit: wasi.WasiExit };
}
