// wasm_info.mjs: reading a module binary: its memory import limits and export signatures (the
// host checks arguments against them, and sizes the memory from them).

const VALTYPES = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128',
  0x70: 'funcref', 0x6f: 'externref' };

export function asBytes(source) {
  if (source instanceof Uint8Array) return source;
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  }
  if (source instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer !== 'undefined' && source instanceof SharedArrayBuffer)) {
    return new Uint8Array(source);
  }
  return null;
}

// Returns {memory: {module, name, initial, maximum, shared} | null, signatures: {export: {params,
// results}}}, or null when the bytes use encodings this reader does not know (then the host
// falls back to ABI.md's limits and passes arguments through unchecked).
export function readModuleInfo(bytes) {
  const u8 = asBytes(bytes);
  if (!u8) return null;
  try {
    return parseModule(u8);
  } catch {
    return null;
  }
}

function parseModule(u8) {
  if (u8.length < 8 || u8[0] !== 0 || u8[1] !== 0x61 || u8[2] !== 0x73 || u8[3] !== 0x6d) {
    throw new Error('not a wasm binary');
  }
  let pos = 8;
  const byte = () => {
    if (pos >= u8.length) throw new Error('truncated');
    return u8[pos++];
  };
  const leb = () => {
    let result = 0, mul = 1, b;
    do { b = byte(); result += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
    return result;
  };
  const text = () => {
    const n = leb();
    const s = new TextDecoder().decode(u8.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const valtype = () => {
    const t = VALTYPES[byte()];
    if (!t) throw new Error('unknown value type');
    return t;
  };
  const limits = () => {
    const flags = leb();
    const min = leb();
    const max = flags & 1 ? leb() : null;
    return { initial: min, maximum: max, shared: (flags & 2) !== 0 };
  };
  const types = [], funcTypes = [], exportsIdx = {};
  let memory = null;
  while (pos < u8.length) {
    const id = byte();
    const size = leb();
    const end = pos + size;
    if (id === 1) {
      for (let n = leb(); n > 0; n--) {
        if (byte() !== 0x60) throw new Error('unknown type form');
        const params = [], results = [];
        for (let k = leb(); k > 0; k--) params.push(valtype());
        for (let k = leb(); k > 0; k--) results.push(valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = leb(); n > 0; n--) {
        const module = text(), name = text(), kind = byte();
        if (kind === 0) funcTypes.push(leb());
        else if (kind === 1) { byte(); limits(); }
        else if (kind === 2) memory = { module, name, ...limits() };
        else if (kind === 3) { valtype(); byte(); }
        else if (kind === 4) { byte(); leb(); }
        else throw new Error('unknown import kind');
      }
    } else if (id === 3) {
      for (let n = leb(); n > 0; n--) funcTypes.push(leb());
    } else if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const name = text(), kind = byte(), index = leb();
        if (kind === 0) exportsIdx[name] = index;
      }
    }
    pos = end;
  }
  const signatures = {};
  for (const [name, index] of Object.entries(exportsIdx)) {
    signatures[name] = types[funcTypes[index]];
  }
  return { memory, signatures };
}
