// Native tests of the compute kernels, referenced from kernels/tests.zig. Every kernel is
// called through its jr_* export (validation, rt.call, the real parallel path) and compared
// with a plain sequential reference written here, over many sizes and thread counts.
const std = @import("std");
const testing = std.testing;
const c = @import("common.zig");
const rt = c.rt;
const ex = @import("exports.zig");
const map = @import("map.zig");
const sort = @import("sort.zig");
const mandelbrot = @import("mandelbrot.zig");
const histogram = @import("histogram.zig");
const pi = @import("pi.zig");

test {
    _ = @import("common.zig");
    _ = @import("reduce.zig");
    _ = @import("map.zig");
    _ = @import("scan.zig");
    _ = @import("sort.zig");
    _ = @import("matmul.zig");
    _ = @import("mandelbrot.zig");
    _ = @import("histogram.zig");
    _ = @import("pi.zig");
    _ = @import("pow.zig");
}

const alloc = testing.allocator;

/// 0, 1, 2, primes, 2^k +- 1 and block boundaries, up to ~100k.
const sizes = [_]usize{ 0, 1, 2, 3, 7, 8, 9, 31, 33, 127, 255, 257, 1021, 4095, 4096, 4097, 8191, 8193, 12289, 65535, 65537, 100003 };
const thread_counts = [_]usize{ 1, 2, 3, 4 };

fn setThreads(n: usize) void {
    if (@hasDecl(rt, "setThreads")) {
        if (rt.setThreads(@intCast(n)) != c.OK) @panic("setThreads failed");
    } else {
        rt.threads = n;
    }
}

fn addr(p: anytype) usize {
    return @intFromPtr(p.ptr);
}

fn randomArray(comptime T: type, rng: std.Random, n: usize) ![]T {
    const a = try alloc.alloc(T, n);
    for (a) |*v| v.* = switch (@typeInfo(T)) {
        .float => @floatCast(rng.float(f64) * 200.0 - 100.0),
        else => rng.int(T),
    };
    return a;
}

const float_and_int = [_]u32{ 0, 1, 2, 3 };

fn Ref(comptime T: type) type {
    return if (@typeInfo(T) == .float) f64 else i64;
}

// ---------------------------------------------------------------- reductions

/// The documented summation order, written plainly: 4096-element blocks; in a block, 8 lane
/// accumulators over the full groups of 8, combined (l0+l4)+(l2+l6) + (l1+l5)+(l3+l7), then
/// the tail in order; block sums combined level by level, p[i] = p[2i] + p[2i+1].
fn referenceSum(comptime T: type, x: []const T) !Ref(T) {
    const R = Ref(T);
    const nb = (x.len + 4095) / 4096;
    if (nb == 0) return 0;
    var parts = try alloc.alloc(R, nb);
    defer alloc.free(parts);
    for (0..nb) |b| {
        const blk = x[b * 4096 .. @min(x.len, (b + 1) * 4096)];
        if (R == f64) {
            var l = [8]f64{ 0, 0, 0, 0, 0, 0, 0, 0 };
            const full = blk.len / 8 * 8;
            for (blk[0..full], 0..) |v, i| l[i % 8] += toF64(T, v);
            var s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
            for (blk[full..]) |v| s += toF64(T, v);
            parts[b] = s;
        } else {
            var s: i64 = 0;
            for (blk) |v| s +%= @as(i64, v);
            parts[b] = s;
        }
    }
    var m = nb;
    while (m > 1) {
        for (0..m / 2) |i| parts[i] = if (R == f64) parts[2 * i] + parts[2 * i + 1] else parts[2 * i] +% parts[2 * i + 1];
        if (m % 2 == 1) parts[m / 2] = parts[m - 1];
        m = (m + 1) / 2;
    }
    return parts[0];
}

fn toF64(comptime T: type, v: T) f64 {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

fn checkReduce(comptime T: type, dtype: u32, rng: std.Random) !void {
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        var first_sum: ?Ref(T) = null;
        for (thread_counts) |t| {
            setThreads(t);
            var out: [1]Ref(T) = undefined;
            try testing.expectEqual(c.OK, ex.jr_reduce(0, dtype, addr(x), n, addr(&out)));
            // bit-identical to the documented block order, for every thread count
            try testing.expectEqual(try referenceSum(T, x), out[0]);
            if (first_sum) |f| try testing.expectEqual(f, out[0]) else first_sum = out[0];
        }
        // against a plain sequential sum
        var naive: Ref(T) = 0;
        var lo: Ref(T) = if (n > 0) x[0] else 0;
        var hi: Ref(T) = lo;
        var abs_sum: f64 = 0;
        for (x) |v| {
            if (Ref(T) == f64) naive += v else naive +%= v;
            lo = @min(lo, v);
            hi = @max(hi, v);
            abs_sum += @abs(@as(f64, if (@typeInfo(T) == .float) v else @floatFromInt(v)));
        }
        var out: [1]Ref(T) = undefined;
        try testing.expectEqual(c.OK, ex.jr_reduce(0, dtype, addr(x), n, addr(&out)));
        if (Ref(T) == f64) {
            try testing.expectApproxEqAbs(naive, out[0], 1e-12 * abs_sum + 1e-300);
        } else {
            try testing.expectEqual(naive, out[0]);
        }
        var mean: [1]f64 = undefined;
        try testing.expectEqual(c.OK, ex.jr_reduce(3, dtype, addr(x), n, addr(&mean)));
        if (n == 0) {
            try testing.expect(std.math.isNan(mean[0]));
        } else {
            var fsum: f64 = 0;
            for (x) |v| fsum += if (@typeInfo(T) == .float) v else @floatFromInt(v);
            const expect = fsum / @as(f64, @floatFromInt(n));
            try testing.expectApproxEqAbs(expect, mean[0], 1e-12 * abs_sum / @as(f64, @floatFromInt(n)) + 1e-300);
        }
        if (n == 0) {
            try testing.expectEqual(c.E_EMPTY, ex.jr_reduce(1, dtype, addr(x), n, addr(&out)));
            try testing.expectEqual(c.E_EMPTY, ex.jr_reduce(2, dtype, addr(x), n, addr(&out)));
        } else {
            try testing.expectEqual(c.OK, ex.jr_reduce(1, dtype, addr(x), n, addr(&out)));
            try testing.expectEqual(lo, out[0]);
            try testing.expectEqual(c.OK, ex.jr_reduce(2, dtype, addr(x), n, addr(&out)));
            try testing.expectEqual(hi, out[0]);
        }
    }
}

test "reduce sum/mean/min/max match references for all dtypes, sizes and thread counts" {
    var prng = std.Random.DefaultPrng.init(1);
    const rng = prng.random();
    try checkReduce(f64, 0, rng);
    try checkReduce(f32, 1, rng);
    try checkReduce(i32, 2, rng);
    try checkReduce(i64, 3, rng);
    setThreads(1);
}

test "reduce: NaN propagates through min/max/sum; inf is ordinary" {
    for ([_]usize{ 1, 5, 8, 9, 4096, 4097, 20011 }) |n| {
        for ([_]usize{ 0, n / 2, n - 1 }) |pos| {
            const x = try alloc.alloc(f64, n);
            defer alloc.free(x);
            for (x, 0..) |*v, i| v.* = @floatFromInt(i);
            x[pos] = std.math.nan(f64);
            var out: [1]f64 = undefined;
            for ([_]u32{ 0, 1, 2, 3 }) |op| {
                try testing.expectEqual(c.OK, ex.jr_reduce(op, 0, addr(x), n, addr(&out)));
                try testing.expect(std.math.isNan(out[0]));
            }
            x[pos] = -std.math.inf(f64);
            try testing.expectEqual(c.OK, ex.jr_reduce(1, 0, addr(x), n, addr(&out)));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
            try testing.expectEqual(c.OK, ex.jr_reduce(0, 0, addr(x), n, addr(&out)));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
        }
    }
    // float32 NaN too, written as f64 NaN
    var y = [_]f32{ 1, 2, std.math.nan(f32), 4, 5, 6, 7, 8, 9 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, ex.jr_reduce(2, 1, addr(&y), y.len, addr(&out)));
    try testing.expect(std.math.isNan(out[0]));
}

test "reduce: int sums wrap like numpy int64" {
    var x = [_]i64{ std.math.maxInt(i64), 1, 5 };
    var out: [1]i64 = undefined;
    try testing.expectEqual(c.OK, ex.jr_reduce(0, 3, addr(&x), x.len, addr(&out)));
    try testing.expectEqual(std.math.minInt(i64) + 5, out[0]);
}

test "reduce: float32 sums accumulate in f64" {
    // 2^24 + 1 + 1 ... is not representable in f32 but is in f64
    var x = [_]f32{ 16777216.0, 1.0, 1.0, 1.0 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, ex.jr_reduce(0, 1, addr(&x), x.len, addr(&out)));
    try testing.expectEqual(@as(f64, 16777219.0), out[0]);
}

fn checkDot(comptime T: type, dtype: u32, rng: std.Random) !void {
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const y = try randomArray(T, rng, n);
        defer alloc.free(y);
        var naive: Ref(T) = 0;
        var mag: f64 = 0;
        for (x, y) |a, b| {
            if (Ref(T) == f64) {
                naive += @as(f64, a) * @as(f64, b);
                mag += @abs(@as(f64, a) * @as(f64, b));
            } else {
                naive +%= @as(i64, a) *% @as(i64, b);
            }
        }
        var first: ?Ref(T) = null;
        for (thread_counts) |t| {
            setThreads(t);
            var out: [1]Ref(T) = undefined;
            try testing.expectEqual(c.OK, ex.jr_dot(dtype, addr(x), addr(y), n, addr(&out)));
            if (Ref(T) == f64) {
                try testing.expectApproxEqAbs(naive, out[0], 1e-12 * mag + 1e-300);
            } else {
                try testing.expectEqual(naive, out[0]);
            }
            if (first) |f| try testing.expectEqual(f, out[0]) else first = out[0];
        }
    }
    setThreads(1);
}

test "dot matches a sequential reference and is thread-count independent" {
    var prng = std.Random.DefaultPrng.init(2);
    const rng = prng.random();
    try checkDot(f64, 0, rng);
    try checkDot(f32, 1, rng);
    try checkDot(i32, 2, rng);
    try checkDot(i64, 3, rng);
}

// ---------------------------------------------------------------- maps

fn refUnary(comptime T: type, op: u32, v: T) T {
    if (@typeInfo(T) == .float) return switch (op) {
        0 => std.math.sqrt(v),
        1 => std.math.exp(v),
        2 => std.math.log(T, std.math.e, v),
        3 => std.math.sin(v),
        4 => std.math.cos(v),
        5 => if (v < 0) -v else v,
        6 => -v,
        else => unreachable,
    };
    return switch (op) {
        5 => if (T == u32) v else if (v < 0) 0 -% v else v,
        6 => 0 -% v,
        else => unreachable,
    };
}

fn sameValue(comptime T: type, a: T, b: T) bool {
    if (@typeInfo(T) == .float and a != a) return b != b;
    return a == b;
}

fn checkUnary(comptime T: type, dtype: u32, rng: std.Random) !void {
    for ([_]usize{ 0, 1, 3, 4, 5, 17, 8191, 8193, 65537 }) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const out = try alloc.alloc(T, n);
        defer alloc.free(out);
        for (0..7) |op| {
            const supported = @typeInfo(T) == .float or op >= 5;
            const st = ex.jr_map_unary(@intCast(op), dtype, addr(x), addr(out), n);
            if (!supported) {
                try testing.expectEqual(c.E_DTYPE, st);
                continue;
            }
            try testing.expectEqual(c.OK, st);
            for (x, out) |v, o| {
                const e = refUnary(T, @intCast(op), v);
                if (@typeInfo(T) == .float and (op == 1 or op == 3 or op == 4)) {
                    try testing.expect(sameValue(T, e, o) or @abs(e - o) <= 4 * std.math.floatEps(T) * @max(1, @abs(e)));
                } else {
                    try testing.expect(sameValue(T, e, o));
                }
            }
        }
    }
}

test "map_unary: every op and dtype against std.math, int abs/negative wrap" {
    var prng = std.Random.DefaultPrng.init(3);
    const rng = prng.random();
    try checkUnary(f64, 0, rng);
    try checkUnary(f32, 1, rng);
    try checkUnary(i32, 2, rng);
    try checkUnary(i64, 3, rng);
    try checkUnary(u32, 4, rng);
    var m = [_]i32{std.math.minInt(i32)};
    try testing.expectEqual(c.OK, ex.jr_map_unary(5, 2, addr(&m), addr(&m), 1));
    try testing.expectEqual(@as(i32, std.math.minInt(i32)), m[0]);
}

fn refBinary(comptime T: type, op: u32, a: T, b: T) T {
    if (@typeInfo(T) == .float) return switch (op) {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        3 => a / b,
        4 => std.math.pow(T, a, b),
        5 => if (std.math.isNan(a) or std.math.isNan(b)) std.math.nan(T) else if (b < a) b else a,
        6 => if (std.math.isNan(a) or std.math.isNan(b)) std.math.nan(T) else if (b > a) b else a,
        else => unreachable,
    };
    return switch (op) {
        0 => a +% b,
        1 => a -% b,
        2 => a *% b,
        5 => if (b < a) b else a,
        6 => if (b > a) b else a,
        else => unreachable,
    };
}

/// Exact, except pow: std.math.pow (the reference) is itself off by up to tens of ULP.
fn closeValue(comptime T: type, op: usize, want: T, got: T) bool {
    if (@typeInfo(T) != .float or op != 4 or sameValue(T, want, got)) return sameValue(T, want, got);
    // distance in ULP (bit patterns of same-signed floats are ordered; covers subnormals and
    // a rounding to inf near the overflow threshold)
    const I = @Int(.signed, @bitSizeOf(T));
    const a: I = @bitCast(want);
    const b: I = @bitCast(got);
    if ((a < 0) != (b < 0)) return false;
    return @abs(@as(i128, a) - b) <= 128;
}

fn checkBinary(comptime T: type, dtype: u32, rng: std.Random) !void {
    for ([_]usize{ 0, 1, 2, 7, 8193, 30011 }) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const y = try randomArray(T, rng, n);
        defer alloc.free(y);
        if (@typeInfo(T) == .float and n > 3) {
            x[1] = std.math.nan(T);
            y[2] = std.math.nan(T);
            x[3] = std.math.inf(T);
        }
        const out = try alloc.alloc(T, n);
        defer alloc.free(out);
        const s: T = if (@typeInfo(T) == .float) 2.5 else if (T == u32) 7 else -7;
        for (0..7) |op| {
            const supported = @typeInfo(T) == .float or (op != 3 and op != 4);
            const st = ex.jr_map_binary(@intCast(op), dtype, addr(x), addr(y), addr(out), n);
            const st_scalar = ex.jr_map_scalar(@intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 0);
            if (!supported) {
                try testing.expectEqual(c.E_DTYPE, st);
                try testing.expectEqual(c.E_DTYPE, st_scalar);
                continue;
            }
            try testing.expectEqual(c.OK, st);
            try testing.expectEqual(c.OK, ex.jr_map_binary(@intCast(op), dtype, addr(x), addr(y), addr(out), n));
            for (x, y, out) |a, b, o| try testing.expect(closeValue(T, op, refBinary(T, @intCast(op), a, b), o));
            try testing.expectEqual(c.OK, st_scalar);
            try testing.expectEqual(c.OK, ex.jr_map_scalar(@intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 0));
            for (x, out) |a, o| try testing.expect(closeValue(T, op, refBinary(T, @intCast(op), a, s), o));
            try testing.expectEqual(c.OK, ex.jr_map_scalar(@intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 1));
            for (x, out) |a, o| try testing.expect(closeValue(T, op, refBinary(T, @intCast(op), s, a), o));
        }
    }
}

test "map_binary and map_scalar (both orders): every op and dtype, NaN/inf" {
    var prng = std.Random.DefaultPrng.init(4);
    const rng = prng.random();
    try checkBinary(f64, 0, rng);
    try checkBinary(f32, 1, rng);
    try checkBinary(i32, 2, rng);
    try checkBinary(i64, 3, rng);
    try checkBinary(u32, 4, rng);
}

test "map: in place works, partial overlap and bad scalars are refused" {
    var x = [_]f64{ 1, 4, 9, 16, 25, 36, 49, 64, 81 };
    try testing.expectEqual(c.OK, ex.jr_map_unary(0, 0, addr(&x), addr(&x), x.len));
    for (x, 1..) |v, i| try testing.expectEqual(@as(f64, @floatFromInt(i)), v);
    try testing.expectEqual(c.E_INVAL, ex.jr_map_unary(0, 0, addr(&x), addr(x[1..]), 8));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_binary(0, 0, addr(&x), addr(x[2..]), addr(x[1..]), 7));
    var i = [_]i32{ 1, 2, 3 };
    // not an integer, out of int32 range, NaN: E_INVAL rather than a silent conversion
    try testing.expectEqual(c.E_INVAL, ex.jr_map_scalar(0, 2, addr(&i), 1.5, addr(&i), 3, 0));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_scalar(0, 2, addr(&i), 3e9, addr(&i), 3, 0));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_scalar(0, 2, addr(&i), std.math.nan(f64), addr(&i), 3, 0));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_scalar(0, 4, addr(&i), -1, addr(&i), 3, 0));
    try testing.expectEqual(c.OK, ex.jr_map_scalar(0, 2, addr(&i), -2147483648.0, addr(&i), 3, 0));
    try testing.expectEqual(@as(i32, -2147483647), i[0]);
    try testing.expectEqual(c.E_INVAL, ex.jr_map_unary(7, 0, addr(&x), addr(&x), 1));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_binary(7, 0, addr(&x), addr(&x), addr(&x), 1));
    try testing.expectEqual(c.E_INVAL, ex.jr_map_unary(0, 5, addr(&x), addr(&x), 1));
}

test "clip: numpy semantics for floats (NaN stays, NaN bounds) and ints (fractional bounds)" {
    var prng = std.Random.DefaultPrng.init(5);
    const rng = prng.random();
    for ([_]usize{ 0, 1, 9, 8193, 20011 }) |n| {
        const x = try randomArray(f64, rng, n);
        defer alloc.free(x);
        if (n > 2) x[2] = std.math.nan(f64);
        const out = try alloc.alloc(f64, n);
        defer alloc.free(out);
        try testing.expectEqual(c.OK, ex.jr_clip(0, addr(x), -10, 20, addr(out), n));
        for (x, out) |v, o| try testing.expect(sameValue(f64, if (v != v) v else @min(@max(v, -10), 20), o));
        try testing.expectEqual(c.OK, ex.jr_clip(0, addr(x), std.math.nan(f64), 20, addr(out), n));
        for (out) |o| try testing.expect(o != o);
        const xi = try randomArray(i32, rng, n);
        defer alloc.free(xi);
        for (xi) |*v| v.* = @rem(v.*, 100);
        const oi = try alloc.alloc(i32, n);
        defer alloc.free(oi);
        try testing.expectEqual(c.OK, ex.jr_clip(2, addr(xi), -10.5, 20.5, addr(oi), n));
        for (xi, oi) |v, o| try testing.expectEqual(@min(@max(v, -10), 20), o);
        try testing.expectEqual(c.OK, ex.jr_clip(2, addr(xi), -1e300, std.math.inf(f64), addr(oi), n));
        try testing.expectEqualSlices(i32, xi, oi);
        if (n > 0) try testing.expectEqual(c.E_INVAL, ex.jr_clip(2, addr(xi), std.math.nan(f64), 1, addr(oi), n));
    }
    var u = [_]u32{1};
    try testing.expectEqual(c.E_DTYPE, ex.jr_clip(4, addr(&u), 0, 1, addr(&u), 1));
}

// ---------------------------------------------------------------- cumsum

fn checkCumsum(comptime T: type, dtype: u32, rng: std.Random) !void {
    const O = if (@typeInfo(T) == .float) T else i64;
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const out = try alloc.alloc(O, n);
        defer alloc.free(out);
        const first = try alloc.alloc(O, n);
        defer alloc.free(first);
        for (thread_counts, 0..) |t, ti| {
            setThreads(t);
            try testing.expectEqual(c.OK, ex.jr_cumsum(dtype, addr(x), addr(out), n));
            if (ti == 0) @memcpy(first, out) else try testing.expectEqualSlices(O, first, out);
        }
        var acc: O = 0;
        var mag: f64 = 0;
        for (x, out, 0..) |v, o, i| {
            if (@typeInfo(T) == .float) {
                acc += v;
                mag += @abs(@as(f64, v));
                // the first block is scanned exactly like numpy's sequential loop
                if (i < c.block_len) try testing.expectEqual(acc, o);
                try testing.expectApproxEqAbs(@as(f64, acc), @as(f64, o), 4 * std.math.floatEps(T) * mag * 1e-0 * @as(f64, @floatFromInt(@min(i + 1, 64))));
            } else {
                acc +%= v;
                try testing.expectEqual(acc, o);
            }
        }
    }
    setThreads(1);
}

test "cumsum matches sequential prefix sums, identical for every thread count" {
    var prng = std.Random.DefaultPrng.init(6);
    const rng = prng.random();
    try checkCumsum(f64, 0, rng);
    try checkCumsum(f32, 1, rng);
    try checkCumsum(i32, 2, rng);
    try checkCumsum(i64, 3, rng);
    // in place (same element size) works; int32 -> int64 over itself is refused
    var x = [_]f64{ 1, 2, 3, 4 };
    try testing.expectEqual(c.OK, ex.jr_cumsum(0, addr(&x), addr(&x), 4));
    try testing.expectEqualSlices(f64, &.{ 1, 3, 6, 10 }, &x);
    var xi = [_]i32{ 1, 2, 3, 4 };
    try testing.expectEqual(c.E_INVAL, ex.jr_cumsum(2, addr(&xi), addr(&xi), 2));
    var u = [_]u32{1};
    try testing.expectEqual(c.E_DTYPE, ex.jr_cumsum(4, addr(&u), addr(&u), 1));
}

// ---------------------------------------------------------------- sort

fn refArgsort(comptime T: type, x: []const T, idx: []i64) void {
    for (idx, 0..) |*v, i| v.* = @intCast(i);
    const Ctx = struct {
        keys: []const T,
        fn less(self: @This(), a: i64, b: i64) bool {
            const ka = self.keys[@intCast(a)];
            const kb = self.keys[@intCast(b)];
            if (@typeInfo(T) == .float) {
                if (std.math.isNan(ka)) return false;
                if (std.math.isNan(kb)) return true;
            }
            return ka < kb;
        }
    };
    std.sort.insertion(i64, idx, Ctx{ .keys = x }, Ctx.less);
}

fn checkSort(comptime T: type, dtype: u32, rng: std.Random, few_keys: bool) !void {
    for (sizes) |n| {
        if (n > 20000) continue; // the insertion-sort reference is quadratic
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        if (few_keys) for (x) |*v| {
            v.* = if (@typeInfo(T) == .float) @floatFromInt(rng.uintLessThan(u32, 5)) else @intCast(rng.uintLessThan(u32, 5));
        };
        if (@typeInfo(T) == .float and n > 10) {
            for (0..n / 10) |_| x[rng.uintLessThan(usize, n)] = std.math.nan(T);
            x[rng.uintLessThan(usize, n)] = -0.0;
            x[rng.uintLessThan(usize, n)] = 0.0;
            x[rng.uintLessThan(usize, n)] = -std.math.inf(T);
        }
        const ref = try alloc.alloc(i64, n);
        defer alloc.free(ref);
        refArgsort(T, x, ref);
        const idx = try alloc.alloc(i64, n);
        defer alloc.free(idx);
        const sorted = try alloc.alloc(T, n);
        defer alloc.free(sorted);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, ex.jr_argsort(dtype, addr(x), addr(idx), n));
            try testing.expectEqualSlices(i64, ref, idx);
            // the low-memory path (indices compared through x) gives the same result
            sort.use_pairs = false;
            @memset(idx, -1);
            const st = ex.jr_argsort(dtype, addr(x), addr(idx), n);
            sort.use_pairs = true;
            try testing.expectEqual(c.OK, st);
            try testing.expectEqualSlices(i64, ref, idx);
            try testing.expectEqual(c.OK, ex.jr_sort(dtype, addr(x), addr(sorted), n));
            for (ref, sorted) |r, s| try testing.expect(std.mem.eql(u8, std.mem.asBytes(&x[@intCast(r)]), std.mem.asBytes(&s)));
        }
        // in place
        const copy = try alloc.dupe(T, x);
        defer alloc.free(copy);
        try testing.expectEqual(c.OK, ex.jr_sort(dtype, addr(copy), addr(copy), n));
        try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(sorted), std.mem.sliceAsBytes(copy)));
    }
    setThreads(1);
}

test "sort/argsort: stable, NaN last, -0.0/0.0 kept in order, equal to a reference" {
    var prng = std.Random.DefaultPrng.init(7);
    const rng = prng.random();
    inline for (.{ false, true }) |few| {
        try checkSort(f64, 0, rng, few);
        try checkSort(f32, 1, rng, few);
        try checkSort(i32, 2, rng, few);
        try checkSort(i64, 3, rng, few);
        try checkSort(u32, 4, rng, few);
    }
}

test "sort: large arrays with many equal keys across every merge level" {
    var prng = std.Random.DefaultPrng.init(8);
    const rng = prng.random();
    for ([_]usize{ 65536, 65537, 100003, 262147 }) |n| {
        const x = try alloc.alloc(i32, n);
        defer alloc.free(x);
        for (x) |*v| v.* = @intCast(rng.uintLessThan(u32, 50));
        const idx = try alloc.alloc(i64, n);
        defer alloc.free(idx);
        for ([_]usize{ 1, 2, 4 }, 0..) |t, round| {
            setThreads(t);
            sort.use_pairs = round != 1;
            defer sort.use_pairs = true;
            try testing.expectEqual(c.OK, ex.jr_argsort(2, addr(x), addr(idx), n));
            // sorted by key, and within a key by index (stability); a permutation
            const seen = try alloc.alloc(bool, n);
            defer alloc.free(seen);
            @memset(seen, false);
            for (idx, 0..) |v, i| {
                const u: usize = @intCast(v);
                try testing.expect(!seen[u]);
                seen[u] = true;
                if (i > 0) {
                    const p: usize = @intCast(idx[i - 1]);
                    try testing.expect(x[p] < x[u] or (x[p] == x[u] and p < u));
                }
            }
        }
    }
    setThreads(1);
}

// ---------------------------------------------------------------- matmul

fn checkMatmul(comptime T: type, dtype: u32, rng: std.Random, m: usize, k: usize, n: usize) !void {
    const a = try randomArray(T, rng, m * k);
    defer alloc.free(a);
    const b = try randomArray(T, rng, k * n);
    defer alloc.free(b);
    const out = try alloc.alloc(T, m * n);
    defer alloc.free(out);
    const first = try alloc.alloc(T, m * n);
    defer alloc.free(first);
    @memset(out, std.math.nan(T)); // must be overwritten, not accumulated into
    for (thread_counts, 0..) |t, ti| {
        setThreads(t);
        try testing.expectEqual(c.OK, ex.jr_matmul(dtype, addr(a), addr(b), addr(out), m, k, n));
        if (ti == 0) @memcpy(first, out) else try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(first), std.mem.sliceAsBytes(out)));
    }
    setThreads(1);
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        var mag: f64 = 0;
        for (0..k) |p| {
            const prod = @as(f64, a[i * k + p]) * @as(f64, b[p * n + j]);
            s += prod;
            mag += @abs(prod);
        }
        const tol = 2 * @as(f64, @floatFromInt(k + 1)) * std.math.floatEps(T) * mag;
        try testing.expectApproxEqAbs(s, @as(f64, out[i * n + j]), tol);
    };
}

test "matmul: odd shapes, f32 and f64, against a naive triple loop" {
    var prng = std.Random.DefaultPrng.init(9);
    const rng = prng.random();
    const shapes = [_][3]usize{ .{ 1, 1, 1 }, .{ 7, 13, 5 }, .{ 65, 33, 129 }, .{ 4, 8, 16 }, .{ 1, 300, 70 }, .{ 131, 257, 3 }, .{ 64, 512, 33 }, .{ 2, 1, 2 }, .{ 0, 3, 4 }, .{ 3, 0, 4 }, .{ 129, 65, 200 } };
    for (shapes) |s| {
        try checkMatmul(f64, 0, rng, s[0], s[1], s[2]);
        try checkMatmul(f32, 1, rng, s[0], s[1], s[2]);
    }
    var x = [_]i32{ 1, 2 };
    var o = [_]i32{ 0, 0, 0, 0 };
    try testing.expectEqual(c.E_DTYPE, ex.jr_matmul(2, addr(&x), addr(&x), addr(&o), 2, 1, 2));
    var f = [_]f64{ 1, 2, 3, 4 };
    try testing.expectEqual(c.E_INVAL, ex.jr_matmul(0, addr(&f), addr(&f), addr(&f), 2, 2, 2));
    try testing.expectEqual(c.E_INVAL, ex.jr_matmul(0, addr(&f), addr(&f), addr(&o), std.math.maxInt(usize) / 2, 4, 1));
}

// ---------------------------------------------------------------- mandelbrot

test "mandelbrot equals the ABI formula pixel for pixel" {
    const cases = [_]struct { w: u32, h: u32, x0: f64, x1: f64, y0: f64, y1: f64, it: u32 }{
        .{ .w = 1, .h = 1, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 256 },
        .{ .w = 97, .h = 61, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 256 },
        .{ .w = 64, .h = 33, .x0 = -0.75, .x1 = -0.74, .y0 = 0.1, .y1 = 0.11, .it = 1000 },
        .{ .w = 5, .h = 3, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 0 },
        // pixel (0, 1) is c = -2 + 0i: |z|^2 stays exactly 4, so only "> 4" keeps it inside
        .{ .w = 6, .h = 2, .x0 = -2, .x1 = 1, .y0 = -1, .y1 = 1, .it = 100 },
        .{ .w = 0, .h = 7, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 10 },
    };
    for (cases) |cs| {
        const out = try alloc.alloc(u32, @as(usize, cs.w) * cs.h);
        defer alloc.free(out);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, ex.jr_mandelbrot(addr(out), cs.w, cs.h, cs.x0, cs.x1, cs.y0, cs.y1, cs.it));
            const dx = (cs.x1 - cs.x0) / @as(f64, @floatFromInt(cs.w));
            const dy = (cs.y1 - cs.y0) / @as(f64, @floatFromInt(cs.h));
            for (0..cs.h) |j| for (0..cs.w) |i| {
                const cx = cs.x0 + @as(f64, @floatFromInt(i)) * dx;
                const cy = cs.y0 + @as(f64, @floatFromInt(j)) * dy;
                try testing.expectEqual(mandelbrot.escapeScalar(cx, cy, cs.it), out[j * cs.w + i]);
            };
        }
    }
    setThreads(1);
    var edge: [12]u32 = undefined;
    try testing.expectEqual(c.OK, ex.jr_mandelbrot(addr(&edge), 6, 2, -2, 1, -1, 1, 100));
    try testing.expectEqual(@as(u32, 100), edge[6]);
    // known values: the origin never escapes; c = 1 gives z = 0, 1, 2, 5: |5|^2 > 4 at k = 3
    try testing.expectEqual(@as(u32, 50), mandelbrot.escapeScalar(0, 0, 50));
    try testing.expectEqual(@as(u32, 3), mandelbrot.escapeScalar(1, 0, 50));
    // c = -2 stays on |z|^2 == 4 (never > 4): the boundary is exclusive
    try testing.expectEqual(@as(u32, 50), mandelbrot.escapeScalar(-2, 0, 50));
    var o: [1]u32 = undefined;
    try testing.expectEqual(c.E_RANGE, ex.jr_mandelbrot(0, 4, 4, -2, 1, -1, 1, 10));
    try testing.expectEqual(c.E_RANGE, ex.jr_mandelbrot(addr(&o), 0xFFFF_FFFF, 0xFFFF_FFFF, -2, 1, -1, 1, 10));
}

// ---------------------------------------------------------------- histogram

/// numpy's definition: bin j holds edges[j] <= x < edges[j+1], the last bin also x == hi,
/// with edges from np.linspace in the dtype numpy uses (float32 for float32 input).
fn refHistogram(comptime T: type, x: []const T, bins: usize, lo: f64, hi: f64, counts: []i64) void {
    const E = if (T == f32) f32 else f64;
    @memset(counts, 0);
    for (x) |v| {
        const xe: E = if (@typeInfo(T) == .float) v else @floatFromInt(v);
        if (!(xe >= @as(E, @floatCast(lo)) and xe <= @as(E, @floatCast(hi)))) continue;
        var j: usize = bins - 1;
        for (0..bins) |b| {
            const next: E = @floatCast(histogram.linspaceEdge(lo, hi, bins, b + 1));
            if (xe < next) {
                j = b;
                break;
            }
        }
        counts[j] += 1;
    }
}

fn checkHistogram(comptime T: type, dtype: u32, rng: std.Random, bins: u32, lo: f64, hi: f64) !void {
    for ([_]usize{ 0, 1, 2, 7, 4097, 30011 }) |n| {
        const x = try alloc.alloc(T, n);
        defer alloc.free(x);
        for (x, 0..) |*v, i| {
            const span = hi - lo;
            // values around and on the edges: exactly lo, exactly hi, edges, just below edges
            const e = histogram.linspaceEdge(lo, hi, bins, rng.uintLessThan(usize, bins + 1));
            const raw: f64 = switch (i % 6) {
                0 => lo,
                1 => hi,
                2 => e,
                3 => std.math.nextAfter(f64, e, -std.math.inf(f64)),
                4 => lo - 0.1 * span + rng.float(f64) * 1.2 * span,
                else => if (@typeInfo(T) == .float) std.math.nan(f64) else lo + rng.float(f64) * span,
            };
            v.* = if (@typeInfo(T) == .float) @floatCast(raw) else @intFromFloat(@round(raw));
        }
        const ref = try alloc.alloc(i64, bins);
        defer alloc.free(ref);
        refHistogram(T, x, bins, lo, hi, ref);
        const out = try alloc.alloc(i64, bins);
        defer alloc.free(out);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, ex.jr_histogram(dtype, addr(x), n, bins, lo, hi, addr(out)));
            try testing.expectEqualSlices(i64, ref, out);
        }
    }
    setThreads(1);
}

test "histogram: numpy edges and edge rules at exactly lo, hi, edges and just below" {
    var prng = std.Random.DefaultPrng.init(10);
    const rng = prng.random();
    const ranges = [_][2]f64{ .{ 0, 1 }, .{ -1.3, 2.9 }, .{ 0.1, 0.7 }, .{ -1e6, 3 }, .{ 5, 1000 } };
    for (ranges) |r| {
        for ([_]u32{ 1, 2, 7, 10, 100, 1000 }) |bins| {
            try checkHistogram(f64, 0, rng, bins, r[0], r[1]);
            try checkHistogram(f32, 1, rng, bins, r[0], r[1]);
            try checkHistogram(i32, 2, rng, bins, r[0], r[1]);
            try checkHistogram(i64, 3, rng, bins, r[0], r[1]);
        }
    }
    // numpy.histogram(np.float32([0.7]), 2, range=(0.7, 1.0)) == [1, 0]: compared in float32
    var f = [_]f32{0.7};
    var out: [2]i64 = undefined;
    try testing.expectEqual(c.OK, ex.jr_histogram(1, addr(&f), 1, 2, 0.7, 1.0, addr(&out)));
    try testing.expectEqualSlices(i64, &.{ 1, 0 }, &out);
    var d = [_]f64{ 0.0, 1.0, 0.5, -0.0, 2.0, -1.0, std.math.nan(f64), std.math.inf(f64) };
    try testing.expectEqual(c.OK, ex.jr_histogram(0, addr(&d), d.len, 2, 0.0, 1.0, addr(&out)));
    try testing.expectEqualSlices(i64, &.{ 2, 2 }, &out);
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(0, addr(&d), d.len, 0, 0.0, 1.0, addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(0, addr(&d), d.len, 2, 1.0, 1.0, addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(0, addr(&d), d.len, 2, 0.0, std.math.inf(f64), addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(0, addr(&d), d.len, 2, std.math.nan(f64), 1.0, addr(&out)));
    // numpy: "Too many bins for data range" when edges stop increasing
    var big: [3]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(1, addr(&f), 1, 3, 1.0, 1.0000001, addr(&big)));
    var u = [_]u32{1};
    try testing.expectEqual(c.E_DTYPE, ex.jr_histogram(4, addr(&u), 1, 2, 0.0, 1.0, addr(&out)));
}

// ---------------------------------------------------------------- pi

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
        try testing.expectEqual(c.OK, ex.jr_pi(k.n, k.seed, addr(&out)));
        try testing.expectEqual(k.hits, out[0]);
    };
    setThreads(1);
    var out: [1]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, ex.jr_pi(-1, 0, addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_pi(pi.max_samples + 1, 0, addr(&out)));
    try testing.expectEqual(c.E_RANGE, ex.jr_pi(10, 0, 0));
}

// ---------------------------------------------------------------- bad input

test "bad input: unknown codes, null and overflowing ranges, empty min/max" {
    var x = [_]f64{ 1, 2, 3 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.E_INVAL, ex.jr_reduce(4, 0, addr(&x), 3, addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_reduce(0, 9, addr(&x), 3, addr(&out)));
    try testing.expectEqual(c.E_DTYPE, ex.jr_reduce(0, 4, addr(&x), 3, addr(&out)));
    try testing.expectEqual(c.E_RANGE, ex.jr_reduce(0, 0, 0, 3, addr(&out)));
    try testing.expectEqual(c.E_RANGE, ex.jr_reduce(0, 0, addr(&x), 3, 0));
    try testing.expectEqual(c.E_RANGE, ex.jr_reduce(0, 0, addr(&x), std.math.maxInt(usize) / 4, addr(&out)));
    try testing.expectEqual(c.E_INVAL, ex.jr_reduce(0, 0, addr(&x), 3, addr(x[1..])));
    try testing.expectEqual(c.E_RANGE, ex.jr_dot(0, addr(&x), 0, 3, addr(&out)));
    try testing.expectEqual(c.E_RANGE, ex.jr_sort(0, addr(&x), std.math.maxInt(usize) - 8, 3));
    try testing.expectEqual(c.E_INVAL, ex.jr_sort(0, addr(&x), addr(x[1..]), 2));
    try testing.expectEqual(c.E_INVAL, ex.jr_argsort(0, addr(&x), addr(&x), 3));
    try testing.expectEqual(c.E_INVAL, ex.jr_sort(5, addr(&x), addr(&x), 3));
    // outputs that would be written over inputs still being read
    var h: [4]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, ex.jr_histogram(0, addr(&x), 3, 2, 0, 1, addr(x[1..])));
    try testing.expectEqual(c.E_INVAL, ex.jr_dot(0, addr(&x), addr(&h), 3, addr(x[2..])));
    try testing.expectEqual(c.E_INVAL, ex.jr_cumsum(0, addr(&x), addr(x[1..]), 2));
    var sq = [_]f64{ 1, 2, 3, 4, 5, 6, 7, 8 };
    try testing.expectEqual(c.E_INVAL, ex.jr_matmul(0, addr(&sq), addr(sq[4..]), addr(sq[5..]), 1, 2, 1));
    try testing.expectEqual(c.OK, ex.jr_matmul(0, addr(&sq), addr(&sq), addr(&h), 2, 2, 2));
    try testing.expectEqualSlices(i64, &.{ @bitCast(@as(f64, 7)), @bitCast(@as(f64, 10)), @bitCast(@as(f64, 15)), @bitCast(@as(f64, 22)) }, &h);
    // a binary map fully in place (out == x == y)
    var v = [_]f64{ 1, 2, 3 };
    try testing.expectEqual(c.OK, ex.jr_map_binary(2, 0, addr(&v), addr(&v), addr(&v), 3));
    try testing.expectEqualSlices(f64, &.{ 1, 4, 9 }, &v);
    // zero pixels need no memory at all
    try testing.expectEqual(c.OK, ex.jr_mandelbrot(0, 0, 100, -2, 1, -1, 1, 10));
    // empty arrays at address 0 are fine
    try testing.expectEqual(c.OK, ex.jr_reduce(0, 0, 0, 0, addr(&out)));
    try testing.expectEqual(@as(f64, 0), out[0]);
    try testing.expectEqual(c.OK, ex.jr_sort(0, 0, 0, 0));
    // the kernels still work after all that
    try testing.expectEqual(c.OK, ex.jr_reduce(0, 0, addr(&x), 3, addr(&out)));
    try testing.expectEqual(@as(f64, 6), out[0]);
}

// ---------------------------------------------------------------- cancellation

fn setCancel(v: u32) void {
    @atomicStore(u32, &rt.counters.block.cancel, v, .seq_cst);
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
        try testing.expectEqual(c.E_CANCELED, ex.jr_reduce(0, 0, addr(x), n, addr(&o)));
        try testing.expectEqual(c.E_CANCELED, ex.jr_dot(0, addr(x), addr(x), n, addr(&o)));
        try testing.expectEqual(c.E_CANCELED, ex.jr_map_unary(0, 0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_map_binary(0, 0, addr(x), addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_map_scalar(0, 0, addr(x), 1, addr(out), n, 0));
        try testing.expectEqual(c.E_CANCELED, ex.jr_clip(0, addr(x), 0, 1, addr(out), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_cumsum(0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_sort(0, addr(x), addr(out), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_argsort(0, addr(x), addr(idx), n));
        try testing.expectEqual(c.E_CANCELED, ex.jr_matmul(0, addr(x), addr(x), addr(out), 100, 100, 100));
        try testing.expectEqual(c.E_CANCELED, ex.jr_mandelbrot(addr(m), 64, 64, -2, 1, -1, 1, 100));
        try testing.expectEqual(c.E_CANCELED, ex.jr_histogram(0, addr(x), n, 10, 0, n, addr(idx)));
        try testing.expectEqual(c.E_CANCELED, ex.jr_pi(1_000_000, 0, addr(&o)));
        // sorting in place under a cancel leaves the data untouched (a permutation at least)
        const before = try alloc.dupe(f64, x);
        defer alloc.free(before);
        try testing.expectEqual(c.E_CANCELED, ex.jr_sort(0, addr(x), addr(x), n));
        try testing.expectEqualSlices(f64, before, x);
        setCancel(0);
        try testing.expectEqual(c.OK, ex.jr_reduce(0, 0, addr(x), n, addr(&o)));
        try testing.expectEqual(@as(f64, @floatFromInt(n * (n - 1) / 2)), o[0]);
        try testing.expectEqual(c.OK, ex.jr_sort(0, addr(x), addr(out), n));
        for (out, 0..) |v, i| try testing.expectEqual(@as(f64, @floatFromInt(i)), v);
    }
    setThreads(1);
}

var polls_left: usize = 0;
fn pollCancelsLater() i32 {
    if (polls_left == 0) return 1;
    polls_left -= 1;
    return 0;
}

test "cancel in the middle of an in-place sort keeps every element" {
    if (!@hasDecl(rt.platform, "native_host_poll")) return error.SkipZigTest;
    const n = 1 << 21;
    const x = try alloc.alloc(i32, n);
    defer alloc.free(x);
    var prng = std.Random.DefaultPrng.init(11);
    for (x) |*v| v.* = prng.random().int(i32);
    const want = try alloc.dupe(i32, x);
    defer alloc.free(want);
    std.mem.sort(i32, want, {}, std.sort.asc(i32));
    setThreads(1);
    // the host poll says "cancel" after a few polls: somewhere in the merge levels
    var cancelled_runs: usize = 0;
    for ([_]usize{ 0, 1, 2, 3 }) |after| {
        polls_left = after;
        rt.platform.native_host_poll = &pollCancelsLater;
        const st = ex.jr_sort(2, addr(x), addr(x), n);
        rt.platform.native_host_poll = null;
        setCancel(0);
        try testing.expect(st == c.E_CANCELED or st == c.OK);
        cancelled_runs += @intFromBool(st == c.E_CANCELED);
        const got = try alloc.dupe(i32, x);
        defer alloc.free(got);
        std.mem.sort(i32, got, {}, std.sort.asc(i32));
        try testing.expectEqualSlices(i32, want, got);
    }
    try testing.expect(cancelled_runs > 0);
    try testing.expectEqual(c.OK, ex.jr_sort(2, addr(x), addr(x), n));
    try testing.expectEqualSlices(i32, want, x);
}

test "cancel reaches inside one long mandelbrot pixel" {
    setThreads(1);
    const Canceller = struct {
        fn run() void {
            while (@atomicLoad(u32, &rt.counters.block.in_call, .seq_cst) == 0) std.atomic.spinLoopHint();
            // Let the kernel get deep into its first pixel (4e9 iterations: many seconds).
            var spin: usize = 0;
            while (spin < 20_000_000) : (spin += 1) std.atomic.spinLoopHint();
            setCancel(1);
        }
    };
    const t = try std.Thread.spawn(.{}, Canceller.run, .{});
    var out: [16]u32 = undefined;
    // every point of this window is inside the set: no pixel escapes early
    const st = ex.jr_mandelbrot(addr(&out), 4, 4, -0.1, 0.1, -0.1, 0.1, 4_000_000_000);
    t.join();
    setCancel(0);
    try testing.expectEqual(c.E_CANCELED, st);
    try testing.expectEqual(c.OK, ex.jr_mandelbrot(addr(&out), 4, 4, -2, 1, -1, 1, 50));
}
