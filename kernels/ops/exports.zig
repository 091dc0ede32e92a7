// The kernel exports of kernels/ABI.md ("Exports: kernels"). Each runs its kernel family's
// entry point inside rt.call, which marks the call, rejects re-entry and maps cancellation.
// Addresses and element counts are usize (i32 on wasm32).
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;
const reduce = @import("reduce.zig");
const map = @import("map.zig");
const scan = @import("scan.zig");
const sort = @import("sort.zig");
const matmul = @import("matmul.zig");
const mandelbrot = @import("mandelbrot.zig");
const histogram = @import("histogram.zig");
const pi = @import("pi.zig");

pub export fn jr_reduce(op: u32, dtype: u32, x: usize, n: usize, out: usize) i32 {
    return c.call(reduce.reduce, .{ op, dtype, x, n, out });
}

pub export fn jr_dot(dtype: u32, x: usize, y: usize, n: usize, out: usize) i32 {
    return c.call(reduce.dot, .{ dtype, x, y, n, out });
}

pub export fn jr_map_unary(op: u32, dtype: u32, x: usize, out: usize, n: usize) i32 {
    return c.call(map.mapUnary, .{ op, dtype, x, out, n });
}

pub export fn jr_map_binary(op: u32, dtype: u32, x: usize, y: usize, out: usize, n: usize) i32 {
    return c.call(map.mapBinary, .{ op, dtype, x, y, out, n });
}

pub export fn jr_map_scalar(op: u32, dtype: u32, x: usize, s: f64, out: usize, n: usize, swap: u32) i32 {
    return c.call(map.mapScalar, .{ op, dtype, x, s, out, n, swap });
}

pub export fn jr_clip(dtype: u32, x: usize, lo: f64, hi: f64, out: usize, n: usize) i32 {
    return c.call(map.clip, .{ dtype, x, lo, hi, out, n });
}

pub export fn jr_cumsum(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return c.call(scan.cumsum, .{ dtype, x, out, n });
}

pub export fn jr_sort(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return c.call(sort.sort, .{ dtype, x, out, n });
}

pub export fn jr_argsort(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return c.call(sort.argsort, .{ dtype, x, out, n });
}

pub export fn jr_matmul(dtype: u32, a: usize, b: usize, cm: usize, m: usize, k: usize, n: usize) i32 {
    return c.call(matmul.matmul, .{ dtype, a, b, cm, m, k, n });
}

pub export fn jr_mandelbrot(out: usize, width: u32, height: u32, x0: f64, x1: f64, y0: f64, y1: f64, max_iter: u32) i32 {
    return c.call(mandelbrot.mandelbrot, .{ out, width, height, x0, x1, y0, y1, max_iter });
}

pub export fn jr_histogram(dtype: u32, x: usize, n: usize, bins: u32, lo: f64, hi: f64, out: usize, edges: usize, denom: f64, flags: u32) i32 {
    return c.call(histogram.histogram, .{ dtype, x, n, bins, lo, hi, out, edges, denom, flags });
}

pub export fn jr_pi(samples: i64, seed: i64, out: usize) i32 {
    return c.call(pi.pi, .{ samples, seed, out });
}

// ---- tests ---------------------------------------------------------------------------------
// These go through the exports themselves: every jr_* kernel with bad input, and under cancel.

const testing = std.testing;
const support = @import("test_support.zig");
const alloc = support.alloc;
const setThreads = support.setThreads;
const addr = support.addr;
const setCancel = support.setCancel;

test "bad input: unknown codes, null and overflowing ranges, empty min/max" {
    var x = [_]f64{ 1, 2, 3 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.E_INVAL, jr_reduce(4, 0, addr(&x), 3, addr(&out)));
    try testing.expectEqual(c.E_INVAL, jr_reduce(0, 9, addr(&x), 3, addr(&out)));
    try testing.expectEqual(c.E_DTYPE, jr_map_unary(0, 2, addr(&x), addr(&x), 3)); // sqrt of int32
    try testing.expectEqual(c.E_RANGE, jr_reduce(0, 0, 0, 3, addr(&out)));
    try testing.expectEqual(c.E_RANGE, jr_reduce(0, 0, addr(&x), 3, 0));
    try testing.expectEqual(c.E_RANGE, jr_reduce(0, 0, addr(&x), std.math.maxInt(usize) / 4, addr(&out)));
    try testing.expectEqual(c.E_INVAL, jr_reduce(0, 0, addr(&x), 3, addr(x[1..])));
    try testing.expectEqual(c.E_RANGE, jr_dot(0, addr(&x), 0, 3, addr(&out)));
    try testing.expectEqual(c.E_RANGE, jr_sort(0, addr(&x), std.math.maxInt(usize) - 8, 3));
    try testing.expectEqual(c.E_INVAL, jr_sort(0, addr(&x), addr(x[1..]), 2));
    try testing.expectEqual(c.E_INVAL, jr_argsort(0, addr(&x), addr(&x), 3));
    try testing.expectEqual(c.E_INVAL, jr_sort(6, addr(&x), addr(&x), 3));
    // outputs that would be written over inputs still being read
    var h: [4]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, jr_histogram(0, addr(&x), 3, 2, 0, 1, addr(x[1..]), 0, 0, 0));
    try testing.expectEqual(c.E_INVAL, jr_dot(0, addr(&x), addr(&h), 3, addr(x[2..])));
    try testing.expectEqual(c.E_INVAL, jr_cumsum(0, addr(&x), addr(x[1..]), 2));
    var sq = [_]f64{ 1, 2, 3, 4, 5, 6, 7, 8 };
    try testing.expectEqual(c.E_INVAL, jr_matmul(0, addr(&sq), addr(sq[4..]), addr(sq[5..]), 1, 2, 1));
    try testing.expectEqual(c.OK, jr_matmul(0, addr(&sq), addr(&sq), addr(&h), 2, 2, 2));
    try testing.expectEqualSlices(i64, &.{ @bitCast(@as(f64, 7)), @bitCast(@as(f64, 10)), @bitCast(@as(f64, 15)), @bitCast(@as(f64, 22)) }, &h);
    // a binary map fully in place (out == x == y)
    var v = [_]f64{ 1, 2, 3 };
    try testing.expectEqual(c.OK, jr_map_binary(2, 0, addr(&v), addr(&v), addr(&v), 3));
    try testing.expectEqualSlices(f64, &.{ 1, 4, 9 }, &v);
    // zero pixels need no memory at all
    try testing.expectEqual(c.OK, jr_mandelbrot(0, 0, 100, -2, 1, -1, 1, 10));
    // empty arrays at address 0 are fine
    try testing.expectEqual(c.OK, jr_reduce(0, 0, 0, 0, addr(&out)));
    try testing.expectEqual(@as(f64, 0), out[0]);
    try testing.expectEqual(c.OK, jr_sort(0, 0, 0, 0));
    // the kernels still work after all that
    try testing.expectEqual(c.OK, jr_reduce(0, 0, addr(&x), 3, addr(&out)));
    try testing.expectEqual(@as(f64, 6), out[0]);
}

test "cancel: every kernel returns E_CANCELED when the flag is set, and works once cleared" {
    const n = 50_000;
    const x = try alloc.alloc(f64, n);
    defer alloc.free(x);
    for (x, 0..) |*v, i| v.* = @floatFromInt((i * 7919) % n);
    const out = try alloc.alloc(f64, n);
    defer alloc.free(out);
    const idx = try alloc.alloc(i64, n);
    defer alloc.free(idx);
    var o: [1]f64 = undefined;
    const m = try alloc.alloc(u32, 64 * 64);
    defer alloc.free(m);
    for ([_]usize{ 1, 2 }) |t| {
        setThreads(t);
        setCancel(1);
        try testing.expectEqual(c.E_CANCELED, jr_reduce(0, 0, addr(x), n, addr(&o)));
        try testing.expectEqual(c.E_CANCELED, jr_dot(0, addr(x), addr(x), n, addr(&o)));
        try testing.expectEqual(c.E_CANCELED, jr_map_unary(0, 0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, jr_map_binary(0, 0, addr(x), addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, jr_map_scalar(0, 0, addr(x), 1, addr(out), n, 0));
        try testing.expectEqual(c.E_CANCELED, jr_clip(0, addr(x), 0, 1, addr(out), n));
        try testing.expectEqual(c.E_CANCELED, jr_cumsum(0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, jr_sort(0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, jr_argsort(0, addr(x), addr(idx), n));
        try testing.expectEqual(c.E_CANCELED, jr_matmul(0, addr(x), addr(x), addr(out), 100, 100, 100));
        try testing.expectEqual(c.E_CANCELED, jr_mandelbrot(addr(m), 64, 64, -2, 1, -1, 1, 100));
        try testing.expectEqual(c.E_CANCELED, jr_histogram(0, addr(x), n, 10, 0, n, addr(idx), 0, 0, 0));
        try testing.expectEqual(c.E_CANCELED, jr_pi(1_000_000, 0, addr(&o)));
        // sorting in place under a cancel leaves the data untouched (a permutation at least)
        const before = try alloc.dupe(f64, x);
        defer alloc.free(before);
        try testing.expectEqual(c.E_CANCELED, jr_sort(0, addr(x), addr(x), n));
        try testing.expectEqualSlices(f64, before, x);
        setCancel(0);
        try testing.expectEqual(c.OK, jr_reduce(0, 0, addr(x), n, addr(&o)));
        try testing.expectEqual(@as(f64, @floatFromInt(n * (n - 1) / 2)), o[0]);
        try testing.expectEqual(c.OK, jr_sort(0, addr(x), addr(out), n));
        for (out, 0..) |v, i| try testing.expectEqual(@as(f64, @floatFromInt(i)), v);
    }
    setThreads(1);
}

fn stealCount() u64 {
    var s: u64 = 0;
    for (&rt.counters.block.per_thread) |*r| s += rt.counters.load64(&r.steals);
    return s;
}

test "small inputs run on the caller alone: tasks only on thread 0, no steals" {
    var x = [_]f64{ 1, 2, 3, 4, 5, 6, 7, 8 };
    var y = [_]f64{ 8, 7, 6, 5, 4, 3, 2, 1 };
    var out: [8]f64 = undefined;
    var o: [1]f64 = undefined;
    var xi = [_]i64{ 5, -2, 7, 1, 0, 3, 3, 9 };
    var oi: [8]i64 = undefined;
    setThreads(4);
    defer setThreads(1);
    const before = support.taskCounts();
    const steals = stealCount();
    for (0..50) |_| {
        for (0..4) |op| try testing.expectEqual(c.OK, jr_reduce(@intCast(op), 0, addr(&x), 8, addr(&o)));
        try testing.expectEqual(c.OK, jr_reduce(0, 3, addr(&xi), 8, addr(&o)));
        try testing.expectEqual(c.OK, jr_dot(0, addr(&x), addr(&y), 8, addr(&o)));
        for (0..7) |op| try testing.expectEqual(c.OK, jr_map_unary(@intCast(op), 0, addr(&x), addr(&out), 8));
        for (0..7) |op| try testing.expectEqual(c.OK, jr_map_binary(@intCast(op), 0, addr(&x), addr(&y), addr(&out), 8));
        try testing.expectEqual(c.OK, jr_map_scalar(0, 0, addr(&x), 2.0, addr(&out), 8, 0));
        try testing.expectEqual(c.OK, jr_clip(0, addr(&x), 2.0, 6.0, addr(&out), 8));
        try testing.expectEqual(c.OK, jr_cumsum(0, addr(&x), addr(&out), 8));
        try testing.expectEqual(c.OK, jr_sort(3, addr(&xi), addr(&oi), 8));
    }
    const after = support.taskCounts();
    try testing.expect(after[0] > before[0]);
    for (after[1..], before[1..]) |a, b| try testing.expectEqual(b, a);
    try testing.expectEqual(steals, stealCount());
}
