// jr_cumsum: inclusive prefix sum. Floats are numpy's np.add.accumulate exactly: one
// sequential pass, out[i] = out[i-1] + x[i] in the dtype. A parallel scan adds in another
// order (block offsets first), and float addition is not associative, so a float cumsum
// cannot be parallel and bit-identical to numpy at once. Integer sums are exact in any order:
// two parallel passes over fixed 4096-element blocks (block totals, then each block
// re-scanned from its offset, the offsets a sequential prefix of the totals).
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

/// Output element type: the input's for floats, uint64 for unsigned ints, int64 for signed
/// ints (numpy's cumsum dtypes), wrapping.
pub fn Out(comptime T: type) type {
    return if (@typeInfo(T) == .float) T else c.Wide(T);
}

/// Type of block totals and offsets of the integer scan.
fn Total(comptime T: type) type {
    return c.Wide(T);
}

fn add(comptime A: type, a: A, b: A) A {
    return if (@typeInfo(A) == .float) a + b else a +% b;
}

/// The identity of the prefix sums: -0.0 for floats (-0.0 + x is x for every x, -0.0
/// included, so cumsum([-0.0, -0.0]) is [-0.0, -0.0] like numpy's), 0 for ints.
fn zero(comptime A: type) A {
    return if (@typeInfo(A) == .float) -0.0 else 0;
}

fn blockTotal(comptime T: type, x: []align(1) const T) Total(T) {
    var acc: Out(T) = zero(Out(T));
    for (x) |v| acc = add(Out(T), acc, v);
    return acc;
}

fn blockScan(comptime T: type, x: []align(1) const T, out: []align(1) Out(T), offset: Total(T)) void {
    var acc: Out(T) = offset;
    for (x, out) |v, *o| {
        acc = add(Out(T), acc, v);
        o.* = acc;
    }
}

/// Elements of the sequential float scan between two polls of the cancel flag (about a
/// millisecond of work, so a cancel lands well within 100 ms).
const scan_poll: usize = 1 << 18;

/// numpy's float cumsum: out[0] = x[0], out[i] = out[i-1] + x[i] in T, on the caller.
fn sequentialScan(comptime T: type, x: []align(1) const T, out: []align(1) T) i32 {
    var acc: T = zero(T);
    var lo: usize = 0;
    while (lo < x.len) : (lo += scan_poll) {
        if (lo != 0 and rt.pollCancelled()) return c.E_CANCELED;
        const hi = @min(x.len, lo + scan_poll);
        for (x[lo..hi], out[lo..hi]) |v, *o| {
            acc += v;
            o.* = acc;
        }
    }
    return c.OK;
}

fn Pass(comptime T: type, comptime scan_pass: bool) type {
    return struct {
        x: []align(1) const T,
        out: []align(1) Out(T),
        totals: []Total(T),
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |b| {
                const s = b * c.block_len;
                const e = @min(self.x.len, s + c.block_len);
                if (scan_pass) {
                    blockScan(T, self.x[s..e], self.out[s..e], self.totals[b]);
                } else {
                    self.totals[b] = blockTotal(T, self.x[s..e]);
                }
            }
        }
    };
}

fn cumsumTyped(comptime T: type, x: []align(1) const T, out: []align(1) Out(T)) i32 {
    if (@typeInfo(T) == .float) return sequentialScan(T, x, out);
    const nb = c.blockCount(x.len);
    if (nb <= 1) {
        blockScan(T, x, out, zero(Total(T)));
        return c.OK;
    }
    const totals = c.scratch(Total(T), nb) orelse return c.E_NOMEM;
    defer c.freeScratch(totals);
    var p1: Pass(T, false) = .{ .x = x, .out = out, .totals = totals };
    rt.parallelFor(nb, 2, &p1);
    if (rt.cancelled()) return c.E_CANCELED;
    // Exclusive prefix of the totals, in place and in block order.
    var run: Total(T) = zero(Total(T));
    for (totals) |*t| {
        const next = add(Total(T), run, t.*);
        t.* = run;
        run = next;
    }
    var p2: Pass(T, true) = .{ .x = x, .out = out, .totals = totals };
    rt.parallelFor(nb, 2, &p2);
    return c.OK;
}

/// jr_cumsum(dtype, x, out, n)
pub fn cumsum(dtype_code: u32, x: usize, out: usize, n: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const out_size: usize = if (dt.isFloat()) dt.size() else 8;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, out_size) orelse return c.E_RANGE;
    // In place works only element for element (same size); any other overlap is refused.
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| cumsumTyped(
            d.Type(),
            c.slice(d.Type(), x, n),
            c.slice(Out(d.Type()), out, n),
        ),
    };
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

fn checkCumsum(comptime T: type, dtype: u32, rng: std.Random) !void {
    const O = Out(T);
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const out = try alloc.alloc(O, n);
        defer alloc.free(out);
        const first = try alloc.alloc(O, n);
        defer alloc.free(first);
        for (thread_counts, 0..) |t, ti| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(cumsum, .{ dtype, addr(x), addr(out), n }));
            if (ti == 0) @memcpy(first, out) else try testing.expectEqualSlices(O, first, out);
        }
        // numpy's np.add.accumulate: out[0] = x[0], out[i] = out[i-1] + x[i] in the dtype
        // (floats: -0.0 + x[0] is x[0]); ints wrap. Bit for bit, every element.
        var acc: O = if (@typeInfo(T) == .float) -0.0 else 0;
        for (x, out) |v, o| {
            if (@typeInfo(T) == .float) acc += v else acc +%= v;
            try testing.expectEqual(acc, o);
        }
    }
    setThreads(1);
}

test "cumsum is numpy's sequential prefix sum bit for bit, for every thread count" {
    var prng = std.Random.DefaultPrng.init(6);
    const rng = prng.random();
    try checkCumsum(f64, 0, rng);
    try checkCumsum(f32, 1, rng);
    try checkCumsum(i32, 2, rng);
    try checkCumsum(i64, 3, rng);
    try checkCumsum(u32, 4, rng);
    try checkCumsum(u64, 5, rng);
    // in place (same element size) works; int32 -> int64 over itself is refused
    var x = [_]f64{ 1, 2, 3, 4 };
    try testing.expectEqual(c.OK, c.call(cumsum, .{ 0, addr(&x), addr(&x), 4 }));
    try testing.expectEqualSlices(f64, &.{ 1, 3, 6, 10 }, &x);
    var xi = [_]i32{ 1, 2, 3, 4 };
    try testing.expectEqual(c.E_INVAL, c.call(cumsum, .{ 2, addr(&xi), addr(&xi), 2 }));
    // uint32 -> uint64 over itself is refused too; uint64 in place works and wraps modulo 2^64
    var u = [_]u32{ 1, 2 };
    try testing.expectEqual(c.E_INVAL, c.call(cumsum, .{ 4, addr(&u), addr(&u), 2 }));
    var w = [_]u64{ std.math.maxInt(u64), 3, 1 << 63 };
    try testing.expectEqual(c.OK, c.call(cumsum, .{ 5, addr(&w), addr(&w), 3 }));
    try testing.expectEqualSlices(u64, &.{ std.math.maxInt(u64), 2, (1 << 63) + 2 }, &w);
}

test "cumsum of uint32 is uint64, past 2^32 without wrapping (numpy's dtype)" {
    const n = 3 * c.block_len + 5;
    const x = try alloc.alloc(u32, n);
    defer alloc.free(x);
    @memset(x, std.math.maxInt(u32));
    const out = try alloc.alloc(u64, n);
    defer alloc.free(out);
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(cumsum, .{ 4, addr(x), addr(out), n }));
        for (out, 1..) |v, i| try testing.expectEqual(@as(u64, i) * std.math.maxInt(u32), v);
    }
    setThreads(1);
}

test "cumsum: a cancel lands within 100 ms" {
    const n = 1 << 24;
    const x = try alloc.alloc(f64, n);
    defer alloc.free(x);
    @memset(x, 0.25);
    const out = try alloc.alloc(f64, n);
    defer alloc.free(out);
    setThreads(1);
    try support.expectPromptCancel(cumsum, .{ 0, addr(x), addr(out), n }, 2);
}

test "cumsum of signed zeros is numpy's: -0.0 stays -0.0, on small and large arrays" {
    inline for (.{ f64, f32 }, .{ 0, 1 }) |T, dtype| {
        for ([_]usize{ 1, 2, 7, 4096, 4097, 100003 }) |n| {
            const x = try alloc.alloc(T, n);
            defer alloc.free(x);
            const out = try alloc.alloc(T, n);
            defer alloc.free(out);
            @memset(x, -0.0);
            x[n - 1] = 0.0; // the last sum is -0.0 + +0.0 = +0.0
            for (thread_counts) |t| {
                setThreads(t);
                try testing.expectEqual(c.OK, c.call(cumsum, .{ dtype, addr(x), addr(out), n }));
                for (out[0 .. n - 1]) |v| try testing.expect(v == 0 and std.math.signbit(v));
                try testing.expect(!std.math.signbit(out[n - 1]));
            }
        }
    }
    setThreads(1);
}

test "float cumsum is sequential in the dtype: float32 in float32, overflow to inf" {
    // 2^24 + 1 rounds back to 2^24 in float32 (a float64 accumulator would reach 2^24 + 2)
    var x = [_]f32{ 16777216.0, 1.0, 1.0 };
    var out: [3]f32 = undefined;
    try testing.expectEqual(c.OK, c.call(cumsum, .{ 1, addr(&x), addr(&out), 3 }));
    try testing.expectEqualSlices(f32, &.{ 16777216.0, 16777216.0, 16777216.0 }, &out);
    var big = [_]f32{ 3e38, 3e38, -3e38 };
    try testing.expectEqual(c.OK, c.call(cumsum, .{ 1, addr(&big), addr(&out), 3 }));
    try testing.expectEqualSlices(f32, &.{ 3e38, std.math.inf(f32), std.math.inf(f32) }, &out);
    // far past one block, at 1..8 threads: each element is the previous one plus x[i]
    var prng = std.Random.DefaultPrng.init(12);
    const rng = prng.random();
    const n = 3 * c.block_len + 7;
    const y = try alloc.alloc(f64, n);
    defer alloc.free(y);
    for (y) |*v| v.* = std.math.ldexp(rng.float(f64) - 0.5, rng.intRangeAtMost(i32, -30, 30));
    const o = try alloc.alloc(f64, n);
    defer alloc.free(o);
    for ([_]usize{ 1, 2, 3, 4, 8 }) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(cumsum, .{ 0, addr(y), addr(o), n }));
        try testing.expectEqual(y[0], o[0]);
        for (1..n) |i| try testing.expectEqual(o[i - 1] + y[i], o[i]);
    }
    setThreads(1);
}
