// jr_pi: Monte Carlo hit count with the counter-based SplitMix64 of kernels/ABI.md. Sample i
// depends only on (seed, i), so any split of the samples gives the same count.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const golden: u64 = 0x9E3779B97F4A7C15;
/// Samples per task: about a millisecond of work.
const block: u64 = 1 << 16;
/// More samples than this would take days; refusing keeps the block count inside usize.
pub const max_samples: i64 = 1 << 47;

fn mix(z0: u64) u64 {
    var z = z0;
    z ^= z >> 30;
    z *%= 0xBF58476D1CE4E5B9;
    z ^= z >> 27;
    z *%= 0x94D049BB133111EB;
    return z ^ (z >> 31);
}

pub fn h(seed: u64, counter: u64) u64 {
    return mix(seed +% (counter +% 1) *% golden);
}

pub fn unit(bits: u64) f64 {
    return @as(f64, @floatFromInt(bits >> 11)) * 0x1p-53;
}

/// Hits among samples [lo, hi).
pub fn countHits(seed: u64, lo: u64, hi: u64) u64 {
    var hits: u64 = 0;
    var i = lo;
    while (i < hi) : (i += 1) {
        const x = unit(h(seed, 2 *% i));
        const y = unit(h(seed, 2 *% i +% 1));
        hits += @intFromBool(x * x + y * y < 1.0);
    }
    return hits;
}

const Blocks = struct {
    seed: u64,
    samples: u64,
    hits: u64 = 0,

    pub fn run(self: *Blocks, lo: usize, hi: usize) void {
        // A task may hold many blocks (parallelFor cuts at most 4096 chunks), so look for a
        // cancel after each block (about a millisecond).
        var n: u64 = 0;
        for (lo..hi) |b| {
            if (b != lo and rt.pollCancelled()) return;
            const s = @as(u64, b) * block;
            n += countHits(self.seed, s, @min(self.samples, s + block));
        }
        // One atomic add per task (the runtime's 64-bit atomics: Zig refuses them on wasm32;
        // the st build needs none).
        rt.counters.add64(&self.hits, n);
    }
};

/// jr_pi(samples, seed, out)
pub fn pi(samples: i64, seed: i64, out: usize) i32 {
    if (samples < 0 or samples > max_samples) return c.E_INVAL;
    _ = c.byteRange(out, 1, 8) orelse return c.E_RANGE;
    const ns: u64 = @intCast(samples);
    var body: Blocks = .{ .seed = @bitCast(seed), .samples = ns };
    const nblocks: usize = @intCast((ns + block - 1) / block);
    rt.parallelFor(nblocks, 1, &body);
    c.slice(i64, out, 1)[0] = @intCast(body.hits);
    return c.OK;
}

// ---- tests ---------------------------------------------------------------------------------
// Each kernel runs through c.call (validation, rt.call, the real parallel path), as its jr_*
// export does, and is compared with a plain sequential reference written here, over many sizes
// and thread counts.

const testing = std.testing;
const support = @import("test_support.zig");
const alloc = support.alloc;
const sizes = support.sizes;
const thread_counts = support.thread_counts;
const setThreads = support.setThreads;
const addr = support.addr;
const randomArray = support.randomArray;
const Ref = support.Ref;

test "pi: hit counts equal a Python implementation of the ABI's SplitMix64" {
    // computed with plain Python ints from the formula in kernels/ABI.md
    const known = [_]struct { n: i64, seed: i64, hits: i64 }{
        .{ .n = 0, .seed = 0, .hits = 0 },
        .{ .n = 1, .seed = 0, .hits = 1 },
        .{ .n = 1000, .seed = 0, .hits = 807 },
        .{ .n = 100003, .seed = 7, .hits = 78533 },
        .{ .n = 70000, .seed = -1, .hits = 55140 },
    };
    for (known) |k| for (thread_counts) |t| {
        setThreads(t);
        var out: [1]i64 = undefined;
        try testing.expectEqual(c.OK, c.call(pi, .{ k.n, k.seed, addr(&out) }));
        try testing.expectEqual(k.hits, out[0]);
    };
    setThreads(1);
    var out: [1]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, c.call(pi, .{ -1, 0, addr(&out) }));
    try testing.expectEqual(c.E_INVAL, c.call(pi, .{ max_samples + 1, 0, addr(&out) }));
    try testing.expectEqual(c.E_RANGE, c.call(pi, .{ 10, 0, 0 }));
}

test "pi: a cancel lands within 100 ms in a call of 2^40 samples" {
    for ([_]usize{ 1, 4 }) |t| {
        setThreads(t);
        var out: [1]i64 = undefined;
        try support.expectPromptCancel(pi, .{ 1 << 40, 3, addr(&out) }, 20);
    }
    setThreads(1);
}
