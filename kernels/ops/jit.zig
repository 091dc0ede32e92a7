//! The pool side of the jit ABI (docs/jit.md, kernels/ABI.md "Jitted modules"): running a
//! jitted module's main through the call wrapper, its prange bodies on the pool, the cancel
//! poll, registering modules, and the math functions jitted code imports (the pool's own:
//! the same exp/log/sin/cos/pow as jr_map_unary/jr_map_binary, std.math for the rest).
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;
const status = rt.status;
const map = @import("map.zig");
const powm = @import("pow.zig");
const modules = @import("../runtime/modules.zig");

/// A prange body: run iterations (or reduction blocks) [lo, hi) of the loop whose captures
/// are in the frame at ctx.
pub const BodyFn = *const fn (ctx: i32, lo: i64, hi: i64) callconv(.c) void;
/// A jitted module's entry: runs the function on the caller, returns a status.
pub const MainFn = *const fn (ctx: i32) callconv(.c) i32;

/// Set when a thread could not load the jitted modules during the running call.
var load_failed: u32 = 0;

fn loadFailed() void {
    @atomicStore(u32, &load_failed, 1, .release);
    rt.counters.requestCancel(); // the chunks not started yet are skipped
}

/// At most this many iterations per parallelFor: usize is 32 bits on wasm32, n is i64.
const segment: i64 = 1 << 30;

const ForBody = struct {
    body: BodyFn,
    ctx: i32,
    offset: i64,

    pub fn run(self: *ForBody, lo: usize, hi: usize) void {
        if (!modules.ensureLoaded()) return loadFailed();
        self.body(self.ctx, self.offset + @as(i64, @intCast(lo)), self.offset + @as(i64, @intCast(hi)));
    }
};

/// body(ctx, lo, hi) over disjoint ranges covering [0, n), on the pool.
pub fn jitFor(body: BodyFn, ctx: i32, n: i64, min_len: i64) i32 {
    const min: usize = @intCast(std.math.clamp(min_len, 1, segment));
    var done: i64 = 0;
    while (done < n) {
        const count = @min(n - done, segment);
        var b: ForBody = .{ .body = body, .ctx = ctx, .offset = done };
        rt.parallelFor(@intCast(count), min, &b);
        if (rt.cancelled()) return status.E_CANCELED;
        done += count;
    }
    return status.OK;
}

const CallBody = struct {
    main: MainFn,
    ctx: i32,

    pub fn run(self: *CallBody) i32 {
        @atomicStore(u32, &load_failed, 0, .release);
        if (!modules.ensureLoaded()) {
            @atomicStore(u32, &load_failed, 1, .release);
            return status.E_LOAD;
        }
        return self.main(self.ctx);
    }
};

/// main(ctx) inside the call wrapper; E_LOAD wins over the cancel it caused.
pub fn jitCall(main: MainFn, ctx: i32) i32 {
    var b: CallBody = .{ .main = main, .ctx = ctx };
    const rc = rt.call(&b);
    if (rc != status.E_BUSY and @atomicLoad(u32, &load_failed, .acquire) != 0) return status.E_LOAD;
    return rc;
}

pub fn jitPoll() i32 {
    return @intFromBool(rt.pollCancelled());
}

// ---- exports (wasm only: table slots are function pointers there) -----------------------

comptime {
    if (rt.platform.is_wasm) {
        @export(&jr_jit_for, .{ .name = "jr_jit_for" });
        @export(&jr_jit_call, .{ .name = "jr_jit_call" });
    }
}

fn jr_jit_for(body_slot: i32, ctx: i32, n: i64, min_len: i64) callconv(.c) i32 {
    if (n <= 0) return status.OK;
    return jitFor(@ptrFromInt(@as(u32, @bitCast(body_slot))), ctx, n, min_len);
}

fn jr_jit_call(main_slot: u32, ctx: u32) callconv(.c) i32 {
    const start = @atomicLoad(u32, &modules.reg.table_start, .acquire);
    const end = @atomicLoad(u32, &modules.reg.table_end, .acquire);
    if (main_slot < start or main_slot >= end) return status.E_INVAL;
    return jitCall(@ptrFromInt(main_slot), @bitCast(ctx));
}

export fn jr_jit_poll() i32 {
    return jitPoll();
}

export fn jr_jit_modules() usize {
    return @intFromPtr(&modules.reg);
}

export fn jr_jit_add_module(ptr: usize, len: usize, nfuncs: u32) i32 {
    const end = std.math.add(usize, ptr, len) catch return status.E_INVAL;
    if (ptr == 0 or end > rt.platform.memoryTop()) return status.E_INVAL;
    const base = modules.add(ptr, len, nfuncs) catch return status.E_INVAL;
    return @intCast(base);
}

// The math jitted code imports. exp, log, sin and cos are jr_map_unary's, pow is
// jr_map_binary's, so a jitted kernel and a built-in one agree bit for bit.
export fn jr_math_exp(x: f64) f64 {
    return map.applyUnary(f64, .exp, x);
}
export fn jr_math_log(x: f64) f64 {
    return map.applyUnary(f64, .log, x);
}
export fn jr_math_sin(x: f64) f64 {
    return map.applyUnary(f64, .sin, x);
}
export fn jr_math_cos(x: f64) f64 {
    return map.applyUnary(f64, .cos, x);
}
export fn jr_math_log2(x: f64) f64 {
    return @log2(x);
}
export fn jr_math_log10(x: f64) f64 {
    return @log10(x);
}
export fn jr_math_tan(x: f64) f64 {
    return @tan(x);
}
export fn jr_math_atan(x: f64) f64 {
    return std.math.atan(x);
}
export fn jr_math_sinh(x: f64) f64 {
    return std.math.sinh(x);
}
export fn jr_math_cosh(x: f64) f64 {
    return std.math.cosh(x);
}
export fn jr_math_tanh(x: f64) f64 {
    return std.math.tanh(x);
}
export fn jr_math_atan2(y: f64, x: f64) f64 {
    return std.math.atan2(y, x);
}
export fn jr_math_pow(x: f64, y: f64) f64 {
    return powm.pow64(x, y);
}
export fn jr_math_hypot(x: f64, y: f64) f64 {
    return std.math.hypot(x, y);
}
export fn jr_math_fmod(x: f64, y: f64) f64 {
    // C's fmod: nan for y == 0 or infinite x (@rem's result is only defined otherwise).
    if (y == 0 or std.math.isInf(x) or std.math.isNan(x) or std.math.isNan(y)) return std.math.nan(f64);
    if (std.math.isInf(y)) return x;
    return @rem(x, y);
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;
const support = @import("test_support.zig");

/// A body that marks each iteration it runs (as jitted code writes disjoint outputs).
var marks: [20_000]u8 = undefined;

fn markBody(ctx: i32, lo: i64, hi: i64) callconv(.c) void {
    _ = ctx;
    var i = lo;
    while (i < hi) : (i += 1) _ = @atomicRmw(u8, &marks[@intCast(i)], .Add, 1, .monotonic);
}

fn markMain(ctx: i32) callconv(.c) i32 {
    return jitFor(markBody, ctx, @intCast(marks.len), 1);
}

var loads: u32 = 0;

fn countingLoad() i32 {
    _ = @atomicRmw(u32, &loads, .Add, 1, .monotonic);
    modules.nativeSetTable(@atomicLoad(u32, &modules.reg.table_end, .acquire));
    return @intCast(@atomicLoad(u32, &modules.reg.count, .acquire));
}

fn failingLoad() i32 {
    return -1;
}

fn runCall(threads: usize, main: MainFn) !i32 {
    try testing.expectEqual(status.OK, rt.setThreads(@intCast(threads)));
    rt.counters.store32(&rt.counters.block.cancel, 0);
    return jitCall(main, 0);
}

test "jit: main and every chunk's thread load the registered modules first; every index once" {
    modules.resetForTest();
    defer modules.resetForTest();
    modules.native_load = countingLoad;
    _ = try modules.add(64, 64, 3);
    for (support.thread_counts) |t| {
        @memset(&marks, 0);
        loads = 0;
        try testing.expectEqual(status.OK, try runCall(t, markMain));
        for (marks) |m| try testing.expectEqual(@as(u8, 1), m);
        // Each thread loads at most once per new module (threads keep their tables).
        try testing.expect(loads <= t);
        _ = try modules.add(64, 64, 1); // the next round has a module no thread has yet
    }
}

test "jit: a thread that cannot load makes the call E_LOAD, and the pool runs the next call" {
    modules.resetForTest();
    defer modules.resetForTest();
    _ = try modules.add(64, 64, 2);
    modules.native_load = failingLoad;
    modules.nativeResetTable();
    try testing.expectEqual(status.E_LOAD, try runCall(2, markMain));
    modules.native_load = countingLoad;
    @memset(&marks, 0);
    try testing.expectEqual(status.OK, try runCall(2, markMain));
    for (marks) |m| try testing.expectEqual(@as(u8, 1), m);
}

fn cancelBody(ctx: i32, lo: i64, hi: i64) callconv(.c) void {
    _ = ctx;
    _ = lo;
    _ = hi;
    rt.counters.requestCancel();
}

fn cancelMain(ctx: i32) callconv(.c) i32 {
    const rc = jitFor(cancelBody, ctx, 1 << 20, 1);
    return if (rc == status.E_CANCELED) 77 else 0;
}

test "jit: a cancelled jr_jit_for returns E_CANCELED to main; the call reports E_CANCELED" {
    modules.resetForTest();
    defer modules.resetForTest();
    try testing.expectEqual(status.E_CANCELED, try runCall(3, cancelMain));
}

fn nothing(ctx: i32, lo: i64, hi: i64) callconv(.c) void {
    _ = ctx;
    _ = lo;
    _ = hi;
}

fn hugeMain(ctx: i32) callconv(.c) i32 {
    // More iterations than a wasm32 usize holds: split into segments, nothing overflows.
    return jitFor(nothing, ctx, (@as(i64, 1) << 32) + 5, 1 << 20);
}

test "jit: n beyond 32 bits runs in segments; n <= 0 runs nothing; main's status passes through" {
    modules.resetForTest();
    defer modules.resetForTest();
    try testing.expectEqual(status.OK, try runCall(2, hugeMain));
    const Seven = struct {
        fn main(_: i32) callconv(.c) i32 {
            return status.E_INDEX;
        }
    };
    try testing.expectEqual(status.E_INDEX, try runCall(2, Seven.main));
}

test "jit math: C semantics at the edges, the map kernels' exp/log/pow" {
    const inf = std.math.inf(f64);
    try testing.expect(std.math.isNan(jr_math_fmod(1.0, 0.0)));
    try testing.expect(std.math.isNan(jr_math_fmod(inf, 2.0)));
    try testing.expectEqual(@as(f64, 1.5), jr_math_fmod(1.5, inf));
    try testing.expectEqual(@as(f64, -1.0), jr_math_fmod(-7.0, 3.0));
    try testing.expectEqual(@as(f64, 1.0), jr_math_fmod(7.0, -3.0));
    try testing.expectEqual(-inf, jr_math_log(0.0));
    try testing.expect(std.math.isNan(jr_math_log(-1.0)));
    try testing.expectEqual(inf, jr_math_exp(1000.0));
    try testing.expectEqual(@as(f64, 8.0), jr_math_pow(2.0, 3.0));
    try testing.expectEqual(@as(f64, 5.0), jr_math_hypot(3.0, 4.0));
    try testing.expectEqual(@as(f64, 3.0), jr_math_log10(1000.0));
    try testing.expectEqual(@as(f64, 10.0), jr_math_log2(1024.0));
    try testing.expectApproxEqAbs(std.math.pi / 4.0, jr_math_atan2(1.0, 1.0), 1e-15);
    try testing.expectApproxEqAbs(@as(f64, 0.7615941559557649), jr_math_tanh(1.0), 1e-15);
    try testing.expectEqual(@as(f64, 1.0), jr_math_cosh(0.0));
    try testing.expectEqual(@as(f64, 0.0), jr_math_sinh(0.0));
    try testing.expectApproxEqAbs(@as(f64, 1.5574077246549023), jr_math_tan(1.0), 1e-15);
    try testing.expectApproxEqAbs(std.math.pi / 4.0, jr_math_atan(1.0), 1e-15);
}
