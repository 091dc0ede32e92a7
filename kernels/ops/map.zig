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
        .abs => if (isFloat(T)) @abs(v) else if (T == u32) v else @bitCast(@abs(v)),
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
    if (dt == .u32) return c.E_DTYPE;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    switch (dt) {
        inline .f64, .f32, .i32, .i64 => |d| {
            const T = d.Type();
            if (!isFloat(T) and (lo != lo or hi != hi)) return c.E_INVAL;
            const l: T = if (isFloat(T)) @floatCast(lo) else intBound(T, lo, true);
            const h: T = if (isFloat(T)) @floatCast(hi) else intBound(T, hi, false);
            var body: ClipBody(T) = .{ .x = c.slice(T, x, n), .lo = l, .hi = h, .out = c.slice(T, out, n) };
            rt.parallelFor(n, min_chunk, &body);
        },
        .u32 => unreachable,
    }
    return c.OK;
}
