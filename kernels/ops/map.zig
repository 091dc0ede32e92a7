// Element-wise kernels: jr_map_unary, jr_map_binary, jr_map_scalar, jr_clip. numpy semantics:
// float ops in the input's precision, int ops wrap, minimum/maximum/clip propagate NaN.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;
const powm = @import("pow.zig");

pub const Unary = enum(u32) { sqrt = 0, exp = 1, log = 2, sin = 3, cos = 4, abs = 5, negative = 6 };
pub const Binary = enum(u32) { add = 0, sub = 1, mul = 2, div = 3, pow = 4, minimum = 5, maximum = 6 };

/// Elements per task at least: element-wise work is memory-bound and cheap per element.
const min_chunk: usize = 8192;
/// SIMD width: one simd128 register of f32/i32/u32 (two of f64/i64).
const vlen = 4;

inline fn isFloat(comptime T: type) bool {
    return @typeInfo(T) == .float;
}

pub inline fn unarySupported(comptime T: type, op: Unary) bool {
    return isFloat(T) or op == .abs or op == .negative;
}

pub inline fn binarySupported(comptime T: type, op: Binary) bool {
    return isFloat(T) or (op != .div and op != .pow);
}

/// Works on scalars and on @Vector(vlen, T) alike (except exp/log/sin/cos/pow: scalars).
pub fn applyUnary(comptime T: type, comptime op: Unary, v: anytype) @TypeOf(v) {
    return switch (op) {
        .sqrt => @sqrt(v),
        .exp => @exp(v),
        .log => @log(v),
        .sin => @sin(v),
        .cos => @cos(v),
        .abs => if (isFloat(T)) @abs(v) else if (c.isUnsigned(T)) v else @bitCast(@abs(v)),
        .negative => if (isFloat(T)) -v else zeroOf(@TypeOf(v)) -% v,
    };
}

fn zeroOf(comptime V: type) V {
    return if (@typeInfo(V) == .vector) @splat(0) else 0;
}

/// numpy's float minimum/maximum: NaN in either operand gives NaN; ties keep `a`.
pub fn applyBinary(comptime T: type, comptime op: Binary, a: T, b: T) T {
    if (isFloat(T)) return switch (op) {
        .add => a + b,
        .sub => a - b,
        .mul => a * b,
        .div => a / b,
        .pow => powm.pow(T, a, b),
        .minimum => if (a <= b or a != a) a else b,
        .maximum => if (a >= b or a != a) a else b,
    };
    return switch (op) {
        .add => a +% b,
        .sub => a -% b,
        .mul => a *% b,
        .minimum => @min(a, b),
        .maximum => @max(a, b),
        .div, .pow => unreachable,
    };
}

/// applyBinary on @Vector(vlen, T) (all ops but pow), lane for lane the same results.
fn applyBinaryVec(comptime T: type, comptime op: Binary, a: @Vector(vlen, T), b: @Vector(vlen, T)) @Vector(vlen, T) {
    if (isFloat(T)) return switch (op) {
        .add => a + b,
        .sub => a - b,
        .mul => a * b,
        .div => a / b,
        .minimum => @select(T, a != a, a, @select(T, a <= b, a, b)),
        .maximum => @select(T, a != a, a, @select(T, a >= b, a, b)),
        .pow => unreachable,
    };
    return switch (op) {
        .add => a +% b,
        .sub => a -% b,
        .mul => a *% b,
        .minimum => @min(a, b),
        .maximum => @max(a, b),
        .div, .pow => unreachable,
    };
}

fn UnaryBody(comptime T: type, comptime op: Unary) type {
    return struct {
        x: []align(1) const T,
        out: []align(1) T,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            var i = lo;
            if (op != .exp and op != .log and op != .sin and op != .cos) {
                const V = @Vector(vlen, T);
                while (i + vlen <= hi) : (i += vlen) {
                    const v: V = self.x[i..][0..vlen].*;
                    self.out[i..][0..vlen].* = applyUnary(T, op, v);
                }
            }
            while (i < hi) : (i += 1) self.out[i] = applyUnary(T, op, self.x[i]);
        }
    };
}

/// `y` is either a slice (binary) or a scalar (map_scalar); `swap` puts the scalar first.
fn BinaryBody(comptime T: type, comptime op: Binary, comptime Y: type, comptime swap: bool) type {
    return struct {
        x: []align(1) const T,
        y: Y,
        out: []align(1) T,
        inline fn rhs(self: *const @This(), i: usize) T {
            return if (Y == T) self.y else self.y[i];
        }
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            var i = lo;
            if (op != .pow) {
                const V = @Vector(vlen, T);
                while (i + vlen <= hi) : (i += vlen) {
                    const a: V = self.x[i..][0..vlen].*;
                    const b: V = if (Y == T) @splat(self.y) else self.y[i..][0..vlen].*;
                    self.out[i..][0..vlen].* = if (swap) applyBinaryVec(T, op, b, a) else applyBinaryVec(T, op, a, b);
                }
            }
            while (i < hi) : (i += 1) {
                const a = self.x[i];
                const b = self.rhs(i);
                self.out[i] = if (swap) applyBinary(T, op, b, a) else applyBinary(T, op, a, b);
            }
        }
    };
}

fn ClipBody(comptime T: type) type {
    return struct {
        x: []align(1) const T,
        lo: T,
        hi: T,
        out: []align(1) T,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            const V = @Vector(vlen, T);
            const l: V = @splat(self.lo);
            const h: V = @splat(self.hi);
            var i = lo;
            while (i + vlen <= hi) : (i += vlen) {
                const x: V = self.x[i..][0..vlen].*;
                self.out[i..][0..vlen].* = if (isFloat(T)) blk: {
                    const m = @select(T, x != x, x, @select(T, x > l, x, l));
                    break :blk @select(T, m != m, m, @select(T, m < h, m, h));
                } else @min(@max(x, l), h);
            }
            while (i < hi) : (i += 1) self.out[i] = clipOne(T, self.x[i], self.lo, self.hi);
        }
    };
}

/// numpy's _NPY_CLIP: MIN(MAX(x, lo), hi) where MAX/MIN keep a NaN first operand.
pub fn clipOne(comptime T: type, x: T, lo: T, hi: T) T {
    if (!isFloat(T)) return @min(@max(x, lo), hi);
    const m = if (x != x) x else if (x > lo) x else lo;
    return if (m != m) m else if (m < hi) m else hi;
}

/// jr_map_unary(op, dtype, x, out, n)
pub fn mapUnary(op_code: u32, dtype_code: u32, x: usize, out: usize, n: usize) i32 {
    const op = std.enums.fromInt(Unary, op_code) orelse return c.E_INVAL;
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    switch (dt) {
        inline else => |d| {
            const T = d.Type();
            switch (op) {
                inline else => |o| {
                    if (!unarySupported(T, o)) {
                        return c.E_DTYPE;
                    } else {
                        var body: UnaryBody(T, o) = .{ .x = c.slice(T, x, n), .out = c.slice(T, out, n) };
                        rt.parallelFor(n, min_chunk, &body);
                    }
                },
            }
        },
    }
    return c.OK;
}

/// jr_map_binary(op, dtype, x, y, out, n)
pub fn mapBinary(op_code: u32, dtype_code: u32, x: usize, y: usize, out: usize, n: usize) i32 {
    const op = std.enums.fromInt(Binary, op_code) orelse return c.E_INVAL;
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const yr = c.byteRange(y, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr) or !yr.sameOrDisjoint(outr)) return c.E_INVAL;
    switch (dt) {
        inline else => |d| {
            const T = d.Type();
            switch (op) {
                inline else => |o| {
                    if (!binarySupported(T, o)) return c.E_DTYPE;
                    var body: BinaryBody(T, o, []align(1) const T, false) = .{
                        .x = c.slice(T, x, n),
                        .y = c.slice(T, y, n),
                        .out = c.slice(T, out, n),
                    };
                    rt.parallelFor(n, min_chunk, &body);
                },
            }
        },
    }
    return c.OK;
}

/// The f64 scalar as the array's dtype, or null when an int dtype cannot hold it exactly.
pub fn scalarAs(comptime T: type, s: f64) ?T {
    if (isFloat(T)) return @floatCast(s);
    if (s != s or @trunc(s) != s) return null;
    // Bounds as f64: both are exact powers of two (or 0), so the comparison is exact.
    const lo: f64 = @floatFromInt(std.math.minInt(T));
    const hi_excl: f64 = @as(f64, @floatFromInt(std.math.maxInt(T))) + 1.0;
    if (s < lo or s >= hi_excl) return null;
    return @intFromFloat(s);
}

/// jr_map_scalar(op, dtype, x, s, out, n, swap)
pub fn mapScalar(op_code: u32, dtype_code: u32, x: usize, s: f64, out: usize, n: usize, swap: u32) i32 {
    const op = std.enums.fromInt(Binary, op_code) orelse return c.E_INVAL;
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    switch (dt) {
        inline else => |d| {
            const T = d.Type();
            const sv = scalarAs(T, s) orelse return c.E_INVAL;
            switch (op) {
                inline else => |o| {
                    if (!binarySupported(T, o)) return c.E_DTYPE;
                    if (swap != 0) {
                        var body: BinaryBody(T, o, T, true) = .{ .x = c.slice(T, x, n), .y = sv, .out = c.slice(T, out, n) };
                        rt.parallelFor(n, min_chunk, &body);
                    } else {
                        var body: BinaryBody(T, o, T, false) = .{ .x = c.slice(T, x, n), .y = sv, .out = c.slice(T, out, n) };
                        rt.parallelFor(n, min_chunk, &body);
                    }
                },
            }
        },
    }
    return c.OK;
}

/// Integer clip bounds: the smallest int >= lo and the largest int <= hi, clamped to T.
fn intBound(comptime T: type, v: f64, comptime is_lo: bool) T {
    const r = if (is_lo) @ceil(v) else @floor(v);
    const lo: f64 = @floatFromInt(std.math.minInt(T));
    const hi_excl: f64 = @as(f64, @floatFromInt(std.math.maxInt(T))) + 1.0;
    if (r < lo) return std.math.minInt(T);
    if (r >= hi_excl) return std.math.maxInt(T);
    return @intFromFloat(r);
}

/// jr_clip(dtype, x, lo, hi, out, n)
pub fn clip(dtype_code: u32, x: usize, lo: f64, hi: f64, out: usize, n: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    switch (dt) {
        inline else => |d| {
            const T = d.Type();
            if (!isFloat(T) and (lo != lo or hi != hi)) return c.E_INVAL;
            const l: T = if (isFloat(T)) @floatCast(lo) else intBound(T, lo, true);
            const h: T = if (isFloat(T)) @floatCast(hi) else intBound(T, hi, false);
            var body: ClipBody(T) = .{ .x = c.slice(T, x, n), .lo = l, .hi = h, .out = c.slice(T, out, n) };
            rt.parallelFor(n, min_chunk, &body);
        },
    }
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
        5 => if (c.isUnsigned(T)) v else if (v < 0) 0 -% v else v,
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
            const st = c.call(mapUnary, .{ @intCast(op), dtype, addr(x), addr(out), n });
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
    try checkUnary(u64, 5, rng);
    var m = [_]i32{std.math.minInt(i32)};
    try testing.expectEqual(c.OK, c.call(mapUnary, .{ 5, 2, addr(&m), addr(&m), 1 }));
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
        const s: T = if (@typeInfo(T) == .float) 2.5 else if (c.isUnsigned(T)) 7 else -7;
        for (0..7) |op| {
            const supported = @typeInfo(T) == .float or (op != 3 and op != 4);
            const st = c.call(mapBinary, .{ @intCast(op), dtype, addr(x), addr(y), addr(out), n });
            const st_scalar = c.call(mapScalar, .{ @intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 0 });
            if (!supported) {
                try testing.expectEqual(c.E_DTYPE, st);
                try testing.expectEqual(c.E_DTYPE, st_scalar);
                continue;
            }
            try testing.expectEqual(c.OK, st);
            try testing.expectEqual(c.OK, c.call(mapBinary, .{ @intCast(op), dtype, addr(x), addr(y), addr(out), n }));
            for (x, y, out) |a, b, o| try testing.expect(closeValue(T, op, refBinary(T, @intCast(op), a, b), o));
            try testing.expectEqual(c.OK, st_scalar);
            try testing.expectEqual(c.OK, c.call(mapScalar, .{ @intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 0 }));
            for (x, out) |a, o| try testing.expect(closeValue(T, op, refBinary(T, @intCast(op), a, s), o));
            try testing.expectEqual(c.OK, c.call(mapScalar, .{ @intCast(op), dtype, addr(x), @floatCast(if (@typeInfo(T) == .float) s else @as(f64, @floatFromInt(s))), addr(out), n, 1 }));
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
    try checkBinary(u64, 5, rng);
}

test "map on uint64: unsigned order, wrapping, scalars up to 2^64 exclusive" {
    const big: u64 = std.math.maxInt(u64);
    var x = [_]u64{ big, 1 << 63, 0, 5 };
    var y = [_]u64{ 1, 2, 3, 1 << 63 };
    var out: [4]u64 = undefined;
    try testing.expectEqual(c.OK, c.call(mapBinary, .{ 5, 5, addr(&x), addr(&y), addr(&out), 4 }));
    try testing.expectEqualSlices(u64, &.{ 1, 2, 0, 5 }, &out); // minimum, without sign
    try testing.expectEqual(c.OK, c.call(mapBinary, .{ 6, 5, addr(&x), addr(&y), addr(&out), 4 }));
    try testing.expectEqualSlices(u64, &.{ big, 1 << 63, 3, 1 << 63 }, &out);
    try testing.expectEqual(c.OK, c.call(mapBinary, .{ 0, 5, addr(&x), addr(&y), addr(&out), 4 }));
    try testing.expectEqualSlices(u64, &.{ 0, (1 << 63) + 2, 3, (1 << 63) + 5 }, &out);
    try testing.expectEqual(c.OK, c.call(mapUnary, .{ 6, 5, addr(&x), addr(&out), 4 }));
    try testing.expectEqualSlices(u64, &.{ 1, 1 << 63, 0, big - 4 }, &out); // numpy's negative
    try testing.expectEqual(c.OK, c.call(mapUnary, .{ 5, 5, addr(&x), addr(&out), 4 }));
    try testing.expectEqualSlices(u64, &x, &out);
    // 2^64 - 2048 is the largest double below 2^64: a valid scalar; 2^64 and -1 are not
    try testing.expectEqual(c.OK, c.call(mapScalar, .{ 1, 5, addr(&x), 18446744073709549568.0, addr(&out), 4, 1 }));
    try testing.expectEqual(@as(u64, 18446744073709549568) -% big, out[0]);
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 5, addr(&x), 18446744073709551616.0, addr(&out), 4, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 5, addr(&x), -1, addr(&out), 4, 0 }));
    try testing.expectEqual(c.E_DTYPE, c.call(mapBinary, .{ 3, 5, addr(&x), addr(&y), addr(&out), 4 }));
    try testing.expectEqual(c.E_DTYPE, c.call(mapUnary, .{ 0, 5, addr(&x), addr(&out), 4 }));
}

test "map: in place works, partial overlap and bad scalars are refused" {
    var x = [_]f64{ 1, 4, 9, 16, 25, 36, 49, 64, 81 };
    try testing.expectEqual(c.OK, c.call(mapUnary, .{ 0, 0, addr(&x), addr(&x), x.len }));
    for (x, 1..) |v, i| try testing.expectEqual(@as(f64, @floatFromInt(i)), v);
    try testing.expectEqual(c.E_INVAL, c.call(mapUnary, .{ 0, 0, addr(&x), addr(x[1..]), 8 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapBinary, .{ 0, 0, addr(&x), addr(x[2..]), addr(x[1..]), 7 }));
    var i = [_]i32{ 1, 2, 3 };
    // not an integer, out of int32 range, NaN: E_INVAL rather than a silent conversion
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 2, addr(&i), 1.5, addr(&i), 3, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 2, addr(&i), 3e9, addr(&i), 3, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 2, addr(&i), std.math.nan(f64), addr(&i), 3, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapScalar, .{ 0, 4, addr(&i), -1, addr(&i), 3, 0 }));
    try testing.expectEqual(c.OK, c.call(mapScalar, .{ 0, 2, addr(&i), -2147483648.0, addr(&i), 3, 0 }));
    try testing.expectEqual(@as(i32, -2147483647), i[0]);
    try testing.expectEqual(c.E_INVAL, c.call(mapUnary, .{ 7, 0, addr(&x), addr(&x), 1 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapBinary, .{ 7, 0, addr(&x), addr(&x), addr(&x), 1 }));
    try testing.expectEqual(c.E_INVAL, c.call(mapUnary, .{ 0, 6, addr(&x), addr(&x), 1 }));
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
        try testing.expectEqual(c.OK, c.call(clip, .{ 0, addr(x), -10, 20, addr(out), n }));
        for (x, out) |v, o| try testing.expect(sameValue(f64, if (v != v) v else @min(@max(v, -10), 20), o));
        try testing.expectEqual(c.OK, c.call(clip, .{ 0, addr(x), std.math.nan(f64), 20, addr(out), n }));
        for (out) |o| try testing.expect(o != o);
        const xi = try randomArray(i32, rng, n);
        defer alloc.free(xi);
        for (xi) |*v| v.* = @rem(v.*, 100);
        const oi = try alloc.alloc(i32, n);
        defer alloc.free(oi);
        try testing.expectEqual(c.OK, c.call(clip, .{ 2, addr(xi), -10.5, 20.5, addr(oi), n }));
        for (xi, oi) |v, o| try testing.expectEqual(@min(@max(v, -10), 20), o);
        try testing.expectEqual(c.OK, c.call(clip, .{ 2, addr(xi), -1e300, std.math.inf(f64), addr(oi), n }));
        try testing.expectEqualSlices(i32, xi, oi);
        if (n > 0) try testing.expectEqual(c.E_INVAL, c.call(clip, .{ 2, addr(xi), std.math.nan(f64), 1, addr(oi), n }));
    }
    // unsigned: bounds compare without sign, saturate at 0 and at the top of the dtype
    var u = [_]u32{ 0, 7, std.math.maxInt(u32), 3 };
    var uo: [4]u32 = undefined;
    try testing.expectEqual(c.OK, c.call(clip, .{ 4, addr(&u), 2.5, 5e9, addr(&uo), 4 }));
    try testing.expectEqualSlices(u32, &.{ 3, 7, std.math.maxInt(u32), 3 }, &uo);
    try testing.expectEqual(c.OK, c.call(clip, .{ 4, addr(&u), -5, 6, addr(&uo), 4 }));
    try testing.expectEqualSlices(u32, &.{ 0, 6, 6, 3 }, &uo);
    var w = [_]u64{ 0, 1 << 63, std.math.maxInt(u64), 9 };
    var wo: [4]u64 = undefined;
    try testing.expectEqual(c.OK, c.call(clip, .{ 5, addr(&w), 1, 9223372036854775808.0, addr(&wo), 4 }));
    try testing.expectEqualSlices(u64, &.{ 1, 1 << 63, 1 << 63, 9 }, &wo);
    try testing.expectEqual(c.OK, c.call(clip, .{ 5, addr(&w), -1, std.math.inf(f64), addr(&wo), 4 }));
    try testing.expectEqualSlices(u64, &w, &wo);
    try testing.expectEqual(c.E_INVAL, c.call(clip, .{ 5, addr(&w), std.math.nan(f64), 1, addr(&wo), 4 }));
    // long inputs go through the vector loop
    for ([_]usize{ 8193, 20011 }) |n| {
        const xs = try randomArray(u64, rng, n);
        defer alloc.free(xs);
        const os = try alloc.alloc(u64, n);
        defer alloc.free(os);
        try testing.expectEqual(c.OK, c.call(clip, .{ 5, addr(xs), 4611686018427387904.0, 13835058055282163712.0, addr(os), n }));
        for (xs, os) |v, o| try testing.expectEqual(@min(@max(v, 1 << 62), 3 << 62), o);
    }
}
