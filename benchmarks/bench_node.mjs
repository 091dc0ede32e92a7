// Node benchmark of the pool: every kernel at 1 and 2 threads in one run (interleaved rounds,
// best of k), CPU/wall beside every wall time, fork-join overhead and idle CPU.
//
//   node benchmarks/bench_node.mjs [--rounds 5] [--scale 1] [--threads 1,2]
//
// --scale shrinks or grows every problem size (0.1 for a quick smoke run). The machine may be
// shared: cpu/wall says how much of a core each thread count really got; compare the columns of
// one run, not runs made at different times.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool } from '../jupyterlite_rayon/host/index.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WASM = process.env.JR_WASM_DIR || path.join(HERE, '..', 'jupyterlite_rayon', 'wasm');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const ROUNDS = Number(option('rounds', 5));
const SCALE = Number(option('scale', 1));
const THREADS = option('threads', '1,2').split(',').map(Number);
const scaled = (n) => Math.max(1, Math.round(n * SCALE));

// One pool per thread count, so switching between them costs nothing inside a round.
const bytes = fs.readFileSync(path.join(WASM, 'pool-mt.wasm'));
const module = await WebAssembly.compile(bytes);
const pools = [];
for (const t of THREADS) pools.push(await createPool({ wasm: bytes, threads: t, threaded: true }));

function fill(pool, Ctor, n, gen) {
  const ptr = pool.alloc(n * Ctor.BYTES_PER_ELEMENT);
  const v = pool.view(Ctor, ptr, n);
  for (let i = 0; i < n; i++) v[i] = gen(i);
  return ptr;
}

// Deterministic data, the same in every pool.
let seed = 1;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };

const N = scaled(8_000_000);
const NMAP = scaled(4_000_000);
const NSORT = scaled(2_000_000);
const MM = Math.max(8, Math.round(512 * Math.sqrt(SCALE)));
const MW = Math.max(8, Math.round(1024 * Math.sqrt(SCALE)));
const MH = Math.max(6, Math.round(768 * Math.sqrt(SCALE)));
const PI = scaled(20_000_000);

// Each case: a name, its size, setup(pool) -> state (inputs resident in that pool's memory),
// args(state) -> the export and its arguments, result(pool, state) -> a value to compare
// between thread counts.
// Inputs and big outputs are shared between the cases of one pool (named), so a full-size run
// needs about 200 MB per pool rather than twice that.
const resident = new Map();
const f64 = (p, n, name = 'x') => {
  if (!resident.has(p)) resident.set(p, new Map());
  const mine = resident.get(p);
  const key = `${name}/${n}`;
  if (!mine.has(key)) {
    mine.set(key, name.startsWith('out') ? p.alloc(8 * n) : fill(p, Float64Array, n, rand));
  }
  return mine.get(key);
};
const read = (Ctor, offset = 0) => (p, s) => p.view(Ctor, s.out + offset, 1)[0];
const cases = [
  { name: 'sum f64', size: N, setup: (p) => ({ x: f64(p, N), out: p.alloc(8) }),
    args: (s) => ['jr_reduce', 0, 0, s.x, N, s.out], result: read(Float64Array) },
  { name: 'dot f64', size: N, setup: (p) => ({ x: f64(p, N), y: f64(p, N, 'y'), out: p.alloc(8) }),
    args: (s) => ['jr_dot', 0, s.x, s.y, N, s.out], result: read(Float64Array) },
  { name: 'map exp f64', size: NMAP, setup: (p) => ({ x: f64(p, NMAP), out: f64(p, NMAP, 'out') }),
    args: (s) => ['jr_map_unary', 1, 0, s.x, s.out, NMAP], result: read(Float64Array) },
  { name: 'cumsum f64', size: NMAP, setup: (p) => ({ x: f64(p, NMAP), out: f64(p, NMAP, 'out') }),
    args: (s) => ['jr_cumsum', 0, s.x, s.out, NMAP],
    result: read(Float64Array, 8 * (NMAP - 1)) },
  { name: 'sort f64', size: NSORT,
    setup: (p) => ({ x: f64(p, NSORT), out: f64(p, NSORT, 'out') }),
    args: (s) => ['jr_sort', 0, s.x, s.out, NSORT], result: read(Float64Array) },
  { name: `matmul f64 ${MM}x${MM}`, size: MM * MM,
    setup: (p) => ({ a: f64(p, MM * MM), b: f64(p, MM * MM), out: p.alloc(8 * MM * MM) }),
    args: (s) => ['jr_matmul', 0, s.a, s.b, s.out, MM, MM, MM], result: read(Float64Array) },
  { name: `mandelbrot ${MW}x${MH} it256`, size: MW * MH,
    setup: (p) => ({ out: p.alloc(4 * MW * MH) }),
    args: (s) => ['jr_mandelbrot', s.out, MW, MH, -2, 1, -1.5, 1.5, 256],
    result: read(Uint32Array, 4 * (MW * (MH >> 1) + (MW >> 1))) },
  { name: 'histogram f64 100 bins', size: N, setup: (p) => ({ x: f64(p, N), out: p.alloc(800) }),
    args: (s) => ['jr_histogram', 0, s.x, N, 100, 0, 1, s.out, 0, 0, 0], result: read(BigInt64Array) },
  { name: 'monte carlo pi', size: PI, setup: (p) => ({ out: p.alloc(8) }),
    args: (s) => ['jr_pi', PI, 42, s.out], result: read(BigInt64Array) },
];
for (const c of cases) {
  c.export = c.args({})[0];
  c.run = (p, s) => { p.call(...c.args(s)); return c.result(p, s); };
}

function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { result, wall, cpu: (c.user + c.system) / 1000 };
}

const available = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
const runnable = cases.filter((c) => available.has(c.export));
const missing = cases.filter((c) => !available.has(c.export)).map((c) => c.name);

// Setup: each pool gets its own copy of every input (the same data: the seed restarts).
const states = pools.map((pool) => { seed = 1; return runnable.map((c) => c.setup(pool)); });

const best = runnable.map(() => pools.map(() => ({ wall: Infinity, cpu: 0 })));
const results = runnable.map(() => pools.map(() => null));
for (let round = 0; round <= ROUNDS; round++) {
  runnable.forEach((c, ci) => {
    pools.forEach((pool, pi) => {
      const t = timed(() => c.run(pool, states[pi][ci]));
      results[ci][pi] = t.result;
      // Round 0 only warms up (tier-up of the wasm code, first-touch of memory).
      if (round > 0 && t.wall < best[ci][pi].wall) best[ci][pi] = t;
    });
  });
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const cell = (t) => `${t.wall.toFixed(t.wall < 10 ? 3 : 1)} ms (${(t.cpu / t.wall).toFixed(2)})`;
console.log(`node ${process.version}, ${os.cpus().length} cpus, loadavg ` +
  `${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, best of ${ROUNDS} interleaved rounds, ` +
  'wall ms (cpu/wall)');
console.log(pad('kernel', 28) + lpad('n', 11) +
  THREADS.map((t) => lpad(`${t} thread${t > 1 ? 's' : ''}`, 20)).join('') + lpad('speedup', 10) +
  '  same result');
runnable.forEach((c, ci) => {
  const speedup = best[ci][0].wall / best[ci][best[ci].length - 1].wall;
  const same = results[ci].every((r) => Object.is(r, results[ci][0]));
  console.log(pad(c.name, 28) + lpad(c.size.toLocaleString('en'), 11) +
    best[ci].map((t) => lpad(cell(t), 20)).join('') + lpad(speedup.toFixed(2), 10) +
    `  ${same ? 'yes' : 'NO'}`);
});
if (missing.length) console.log(`not in this build (skipped): ${missing.join(', ')}`);

// Fork-join overhead: fib(30) by recursive join, and an empty parallel-for of 10^6 items.
console.log('\nfork-join overhead');
const out = pools.map((p) => p.alloc(8));
const overhead = [
  ['fib(30) via join', (p, o) => p.call('jr_bench_fib', 30, o), false],
  ['empty parallel-for 10^6', (p, o) => p.call('jr_bench_for', 1_000_000, o), true],
];
for (const [name, run, perChunk] of overhead) {
  const bestT = pools.map(() => ({ wall: Infinity }));
  const value = pools.map(() => 0n);
  for (let round = 0; round <= ROUNDS; round++) {
    pools.forEach((p, pi) => {
      const t = timed(() => run(p, out[pi]));
      value[pi] = p.view(BigInt64Array, out[pi], 1)[0];
      if (round > 0 && t.wall < bestT[pi].wall) bestT[pi] = t;
    });
  }
  console.log(pad(name, 28) + lpad('', 11) + bestT.map((t) => lpad(cell(t), 20)).join('') +
    '   ' + bestT.map((t, pi) => `${THREADS[pi]}T ` + (perChunk
      ? `${value[pi]} chunks, ${(t.wall * 1e6 / Number(value[pi])).toFixed(1)} ns/chunk`
      : `result ${value[pi]}`)).join('; '));
}

// Idle: every pool sleeps for 1 s (process CPU counts all their threads); helpers must not spin.
await new Promise((r) => setTimeout(r, 100));
const idle = await (async () => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 1000));
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, wall: performance.now() - t0 };
})();
console.log(`\nidle pools (${pools.map((p) => p.threads).join(' + ')} threads): ` +
  `${idle.cpu.toFixed(1)} ms CPU over ` +
  `${idle.wall.toFixed(0)} ms (${(100 * idle.cpu / idle.wall).toFixed(2)}% of one core)`);

for (const p of pools) await p.terminate();
