// Reductions (sum, min, max, mean) and dot, deterministic for any thread count: each fixed
// 4096-element block is reduced in a fixed order (SIMD lanes, then a fixed lane tree), and
// block partials are combined by common.pairwiseCombine.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

pub const Op = enum(u32) { sum = 0, min = 1, max = 2, mean = 3 };

/// Width of the block accumulators; 8 f64 lanes are four simd128 registers.
const lanes = 8;

/// Per-block partial result: f64 for float inputs (and for mean), u64 for unsigned ints
/// (numpy sums uint32 and uint64 as uint64), i64 for signed ints; integer sums wrap.
fn Acc(comptime T: type) type {
    return if (@typeInfo(T) == .float) f64 else c.Wide(T);
}

fn addAcc(comptime A: type) fn (A, A) A {
    return struct {
        fn f(a: A, b: A) A {
            return if (A == f64) a + b else a +% b;
        }
    }.f;
}

/// Fixed lane tree: (l0+l4)+(l2+l6) + (l1+l5)+(l3+l7).
fn laneSum(v: @Vector(lanes, f64)) f64 {
    const a: [lanes]f64 = v;
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/// Sum of one block into R: f64 (floats, and ints for mean) or wrapping Acc(T) (int sum).
fn blockSum(comptime T: type, comptime R: type, x: []align(1) const T) R {
    if (R == f64) {
        const V = @Vector(lanes, f64);
        var acc: V = @splat(0.0);
        var i: usize = 0;
        while (i + lanes <= x.len) : (i += lanes) acc += toF64Vec(T, x[i..][0..lanes].*);
        var s = laneSum(acc);
        while (i < x.len) : (i += 1) s += toF64(T, x[i]);
        return s;
    } else {
        var s: R = 0;
        for (x) |v| s +%= @as(R, v);
        return s;
    }
}

fn blockDot(comptime T: type, x: []align(1) const T, y: []align(1) const T) Acc(T) {
    if (Acc(T) == f64) {
        const V = @Vector(lanes, f64);
        var acc: V = @splat(0.0);
        var i: usize = 0;
        while (i + lanes <= x.len) : (i += lanes) {
            acc += toF64Vec(T, x[i..][0..lanes].*) * toF64Vec(T, y[i..][0..lanes].*);
        }
        var s = laneSum(acc);
        while (i < x.len) : (i += 1) s += toF64(T, x[i]) * toF64(T, y[i]);
        return s;
    } else {
        const A = Acc(T);
        var s: A = 0;
        for (x, y) |a, b| s +%= @as(A, a) *% @as(A, b);
        return s;
    }
}

fn toF64(comptime T: type, v: T) f64 {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

fn toF64Vec(comptime T: type, v: [lanes]T) @Vector(lanes, f64) {
    const tv: @Vector(lanes, T) = v;
    return if (@typeInfo(T) == .float) @floatCast(tv) else @floatFromInt(tv);
}

/// IEEE 754-2019 minimum / maximum of two non-NaN floats: -0.0 < +0.0, so the result does not
/// depend on the order equal zeros come in (numpy's does). Equal values have equal bits except
/// for zeros, where OR of the bits gives -0.0 (min) and AND gives +0.0 (max).
inline fn pick(comptime T: type, comptime is_min: bool, a: T, b: T) T {
    if (a != b) return if ((a < b) == is_min) a else b;
    const U = @Int(.unsigned, @bitSizeOf(T));
    const ua: U = @bitCast(a);
    const ub: U = @bitCast(b);
    return @bitCast(if (is_min) ua | ub else ua & ub);
}

/// min or max of one non-empty block; floats propagate NaN like numpy, zeros as `pick`.
fn blockExtreme(comptime T: type, comptime is_min: bool, x: []align(1) const T) Acc(T) {
    if (@typeInfo(T) == .float) {
        const V = @Vector(lanes, T);
        const U = @Vector(lanes, @Int(.unsigned, @bitSizeOf(T)));
        var best: V = @splat(x[0]);
        var nan: @Vector(lanes, bool) = @splat(false);
        var i: usize = 0;
        while (i + lanes <= x.len) : (i += lanes) {
            const v: V = x[i..][0..lanes].*;
            nan = nan | (v != v);
            const vb: U = @bitCast(v);
            const bb: U = @bitCast(best);
            const equal: V = @bitCast(if (is_min) vb | bb else vb & bb);
            best = @select(T, if (is_min) v < best else v > best, v, @select(T, v == best, equal, best));
        }
        if (@reduce(.Or, nan)) return std.math.nan(f64);
        const lanes_of: [lanes]T = best;
        var r: T = lanes_of[0];
        for (lanes_of[1..]) |l| r = pick(T, is_min, r, l);
        while (i < x.len) : (i += 1) {
            const v = x[i];
            if (v != v) return std.math.nan(f64);
            r = pick(T, is_min, r, v);
        }
        return r;
    } else {
        var r: T = x[0];
        for (x) |v| r = if (is_min) @min(r, v) else @max(r, v);
        return r;
    }
}

fn extremeCombine(comptime A: type, comptime is_min: bool) fn (A, A) A {
    return struct {
        fn f(a: A, b: A) A {
            if (A == f64) {
                if (a != a or b != b) return std.math.nan(f64);
                return pick(f64, is_min, a, b);
            }
            return if (is_min) @min(a, b) else @max(a, b);
        }
    }.f;
}

/// Reduce `nb` blocks with `ctx.block(b) -> A` in parallel and combine the partials with the
/// fixed pairwise tree. Returns null when scratch memory is exhausted.
fn reduceBlocks(comptime A: type, nb: usize, ctx: anytype, comptime combine: fn (A, A) A) ?A {
    if (nb == 1) return ctx.block(0);
    const parts = c.scratch(A, nb) orelse return null;
    defer c.freeScratch(parts);
    const Body = struct {
        ctx: @TypeOf(ctx),
        parts: []A,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |b| self.parts[b] = self.ctx.block(b);
        }
    };
    var body: Body = .{ .ctx = ctx, .parts = parts };
    // 4 blocks (16K elements) a chunk at least: a few microseconds of work per task.
    rt.parallelFor(nb, 4, &body);
    if (rt.cancelled()) return @as(A, 0);
    return c.pairwiseCombine(A, parts, combine);
}

fn blockSlice(comptime T: type, x: []align(1) const T, b: usize) []align(1) const T {
    const lo = b * c.block_len;
    return x[lo..@min(x.len, lo + c.block_len)];
}

fn reduceTyped(comptime T: type, comptime op: Op, x: []align(1) const T, out: usize) i32 {
    const nb = c.blockCount(x.len);
    const A = Acc(T);
    switch (op) {
        .sum, .mean => {
            const R = if (op == .mean) f64 else A;
            const Ctx = struct {
                x: []align(1) const T,
                fn block(self: @This(), b: usize) R {
                    return blockSum(T, R, blockSlice(T, self.x, b));
                }
            };
            const total: R = if (nb == 0) 0 else reduceBlocks(R, nb, Ctx{ .x = x }, addAcc(R)) orelse
                return c.E_NOMEM;
            if (op == .mean) {
                const mean: f64 = if (x.len == 0)
                    std.math.nan(f64)
                else
                    total / @as(f64, @floatFromInt(x.len));
                c.slice(f64, out, 1)[0] = mean;
            } else {
                c.slice(R, out, 1)[0] = total;
            }
        },
        .min, .max => {
            if (x.len == 0) return c.E_EMPTY;
            const result = extremeOf(T, op == .min, x, nb);
            c.slice(A, out, 1)[0] = result orelse return c.E_NOMEM;
        },
    }
    return c.OK;
}

fn extremeOf(comptime T: type, comptime is_min: bool, x: []align(1) const T, nb: usize) ?Acc(T) {
    const Ctx = struct {
        x: []align(1) const T,
        fn block(self: @This(), b: usize) Acc(T) {
            return blockExtreme(T, is_min, blockSlice(T, self.x, b));
        }
    };
    return reduceBlocks(Acc(T), nb, Ctx{ .x = x }, extremeCombine(Acc(T), is_min));
}

/// jr_reduce(op, dtype, x, n, out): see kernels/ABI.md.
pub fn reduce(op_code: u32, dtype_code: u32, x: usize, n: usize, out: usize) i32 {
    const op = std.enums.fromInt(Op, op_code) orelse return c.E_INVAL;
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, 1, 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| switch (op) {
            inline else => |o| reduceTyped(d.Type(), o, c.slice(d.Type(), x, n), out),
        },
    };
}

/// jr_dot(dtype, x, y, n, out): sum of x[i]*y[i], blocks and tree as for sum.
pub fn dot(dtype_code: u32, x: usize, y: usize, n: usize, out: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const yr = c.byteRange(y, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, 1, 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr) or yr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| dotTyped(d.Type(), c.slice(d.Type(), x, n), c.slice(d.Type(), y, n), out),
    };
}

fn dotTyped(comptime T: type, x: []align(1) const T, y: []align(1) const T, out: usize) i32 {
    const A = Acc(T);
    const Ctx = struct {
        x: []align(1) const T,
        y: []align(1) const T,
        fn block(self: @This(), b: usize) A {
            return blockDot(T, blockSlice(T, self.x, b), blockSlice(T, self.y, b));
        }
    };
    const nb = c.blockCount(x.len);
    // numpy's dot of one pair is that product (-0.0 stays -0.0); longer sums start from +0.0
    // as numpy's do. A float32 product is exact in f64.
    if (A == f64 and x.len == 1) {
        c.slice(A, out, 1)[0] = toF64(T, x[0]) * toF64(T, y[0]);
        return c.OK;
    }
    const total: A = if (nb == 0) 0 else reduceBlocks(A, nb, Ctx{ .x = x, .y = y }, addAcc(A)) orelse
        return c.E_NOMEM;
    c.slice(A, out, 1)[0] = total;
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
/// What the reductions of T write: f64 for floats, u64 for unsigned ints, i64 for signed ints.
const Ref = Acc;

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
            for (blk[0..full], 0..) |v, i| l[i % 8] += refToF64(T, v);
            var s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
            for (blk[full..]) |v| s += refToF64(T, v);
            parts[b] = s;
        } else {
            var s: R = 0;
            for (blk) |v| s +%= @as(R, v);
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

fn refToF64(comptime T: type, v: T) f64 {
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
            try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
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
        try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
        if (Ref(T) == f64) {
            try testing.expectApproxEqAbs(naive, out[0], 1e-12 * abs_sum + 1e-300);
        } else {
            try testing.expectEqual(naive, out[0]);
        }
        var mean: [1]f64 = undefined;
        try testing.expectEqual(c.OK, c.call(reduce, .{ 3, dtype, addr(x), n, addr(&mean) }));
        if (n == 0) {
            try testing.expect(std.math.isNan(mean[0]));
        } else {
            var fsum: f64 = 0;
            for (x) |v| fsum += if (@typeInfo(T) == .float) v else @floatFromInt(v);
            const expect = fsum / @as(f64, @floatFromInt(n));
            try testing.expectApproxEqAbs(expect, mean[0], 1e-12 * abs_sum / @as(f64, @floatFromInt(n)) + 1e-300);
        }
        if (n == 0) {
            try testing.expectEqual(c.E_EMPTY, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
            try testing.expectEqual(c.E_EMPTY, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
        } else {
            try testing.expectEqual(c.OK, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
            try testing.expectEqual(lo, out[0]);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
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
    try checkReduce(u32, 4, rng);
    try checkReduce(u64, 5, rng);
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
                try testing.expectEqual(c.OK, c.call(reduce, .{ op, 0, addr(x), n, addr(&out) }));
                try testing.expect(std.math.isNan(out[0]));
            }
            x[pos] = -std.math.inf(f64);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 0, addr(x), n, addr(&out) }));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 0, addr(x), n, addr(&out) }));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
        }
    }
    // float32 NaN too, written as f64 NaN
    var y = [_]f32{ 1, 2, std.math.nan(f32), 4, 5, 6, 7, 8, 9 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 1, addr(&y), y.len, addr(&out) }));
    try testing.expect(std.math.isNan(out[0]));
}

test "reduce: int sums wrap like numpy int64" {
    var x = [_]i64{ std.math.maxInt(i64), 1, 5 };
    var out: [1]i64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 3, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(std.math.minInt(i64) + 5, out[0]);
}

test "reduce: unsigned ints are numpy's uint64: sums wrap modulo 2^64, extremes compare unsigned" {
    const big: u64 = std.math.maxInt(u64);
    var x = [_]u64{ big, 2, 1 << 63, 5 };
    var out: [1]u64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(@as(u64, (1 << 63) + 6), out[0]); // big + 2 wraps to 1; + 2^63 + 5
    try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(@as(u64, 2), out[0]);
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(big, out[0]); // above 2^63: the largest, not negative
    var mean: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 3, 5, addr(&x), x.len, addr(&mean) }));
    try testing.expectEqual((18446744073709551615.0 + 2.0 + 9223372036854775808.0 + 5.0) / 4.0, mean[0]);
    // uint32 sums are uint64 (numpy's dtype): no wrap at 32 bits
    const u = try alloc.alloc(u32, 10_000);
    defer alloc.free(u);
    @memset(u, std.math.maxInt(u32));
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 4, addr(u), u.len, addr(&out) }));
        try testing.expectEqual(@as(u64, 10_000) * std.math.maxInt(u32), out[0]);
        try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 4, addr(u), u.len, addr(&out) }));
        try testing.expectEqual(@as(u64, std.math.maxInt(u32)), out[0]);
    }
    setThreads(1);
    // dot of uint64 wraps modulo 2^64
    var y = [_]u64{ 2, 3, 2, 1 };
    try testing.expectEqual(c.OK, c.call(dot, .{ 5, addr(&x), addr(&y), x.len, addr(&out) }));
    // big*2 = 2^64 - 2, + 2*3, + 2^63*2 = 2^64, + 5*1: 9 modulo 2^64
    try testing.expectEqual(@as(u64, 9), out[0]);
}

test "reduce: float32 sums accumulate in f64" {
    // 2^24 + 1 + 1 ... is not representable in f32 but is in f64
    var x = [_]f32{ 16777216.0, 1.0, 1.0, 1.0 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 1, addr(&x), x.len, addr(&out) }));
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
                naive +%= @as(Ref(T), a) *% @as(Ref(T), b);
            }
        }
        var first: ?Ref(T) = null;
        for (thread_counts) |t| {
            setThreads(t);
            var out: [1]Ref(T) = undefined;
            try testing.expectEqual(c.OK, c.call(dot, .{ dtype, addr(x), addr(y), n, addr(&out) }));
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
    try checkDot(u32, 4, rng);
    try checkDot(u64, 5, rng);
}

fn isNegZero(v: f64) bool {
    return v == 0 and std.math.signbit(v);
}

fn checkSignedZeros(comptime T: type, dtype: u32) !void {
    var prng = std.Random.DefaultPrng.init(99);
    const rng = prng.random();
    for ([_]usize{ 1, 2, 7, 8, 9, 17, 4097, 100003 }) |n| {
        const x = try alloc.alloc(T, n);
        defer alloc.free(x);
        const ones = try alloc.alloc(T, n);
        defer alloc.free(ones);
        @memset(ones, 1);
        // 0: all -0.0; 1: all +0.0; 2: random signs with at least one of each (n > 1)
        for (0..3) |kind| {
            for (x) |*v| v.* = switch (kind) {
                0 => -0.0,
                1 => 0.0,
                else => if (rng.boolean()) -0.0 else 0.0,
            };
            if (kind == 2) {
                const at = rng.uintLessThan(usize, n);
                x[at] = -0.0;
                if (n > 1) x[(at + 1) % n] = 0.0;
            }
            const has_neg = for (x) |v| {
                if (std.math.signbit(v)) break true;
            } else false;
            const has_pos = for (x) |v| {
                if (!std.math.signbit(v)) break true;
            } else false;
            for (thread_counts) |t| {
                setThreads(t);
                var out: [1]f64 = undefined;
                try testing.expectEqual(c.OK, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
                try testing.expectEqual(has_neg, isNegZero(out[0])); // min: -0.0 < +0.0
                try testing.expectEqual(@as(f64, 0), out[0]);
                try testing.expectEqual(c.OK, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
                try testing.expectEqual(!has_pos, isNegZero(out[0])); // max: +0.0 > -0.0
                try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
                try testing.expect(!isNegZero(out[0])); // numpy: sum([-0.0]) is 0.0
                try testing.expectEqual(c.OK, c.call(dot, .{ dtype, addr(x), addr(ones), n, addr(&out) }));
                // numpy: dot([-0.0], [1.0]) is -0.0; a longer sum starts from +0.0
                try testing.expectEqual(n == 1 and has_neg, isNegZero(out[0]));
            }
        }
    }
    setThreads(1);
}

test "signed zeros: min/max are IEEE minimum/maximum, sum +0.0, dot of one pair its product" {
    try checkSignedZeros(f64, 0);
    try checkSignedZeros(f32, 1);
    // a zero against negative and positive values: the ordinary answer
    var x = [_]f64{ 0.0, -1.5, -0.0, 2.0 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 0, addr(&x), 4, addr(&out) }));
    try testing.expectEqual(@as(f64, -1.5), out[0]);
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 0, addr(&x), 4, addr(&out) }));
    try testing.expectEqual(@as(f64, 2.0), out[0]);
}
