//! Helpers shared by the compute kernels' native tests (the `test` blocks at the end of each
//! kernel file): sizes and thread counts to sweep, random inputs, pool control.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

/// Leak-checked per test.
pub const alloc = std.testing.allocator;

/// 0, 1, 2, primes, 2^k +- 1 and block boundaries, up to ~100k.
pub const sizes = [_]usize{ 0, 1, 2, 3, 7, 8, 9, 31, 33, 127, 255, 257, 1021, 4095, 4096, 4097, 8191, 8193, 12289, 65535, 65537, 100003 };
pub const thread_counts = [_]usize{ 1, 2, 3, 4 };

pub fn setThreads(n: usize) void {
    if (rt.setThreads(@intCast(n)) != c.OK) @panic("setThreads failed");
}

/// Address of a slice or array pointer, as the exports take it.
pub fn addr(p: anytype) usize {
    return @intFromPtr(p.ptr);
}

/// Floats uniform in [-100, 100), ints over their whole range. Caller frees.
pub fn randomArray(comptime T: type, rng: std.Random, n: usize) ![]T {
    const a = try alloc.alloc(T, n);
    for (a) |*v| v.* = switch (@typeInfo(T)) {
        .float => @floatCast(rng.float(f64) * 200.0 - 100.0),
        else => rng.int(T),
    };
    return a;
}

/// What reductions of T write: f64 for floats, i64 for ints.
pub fn Ref(comptime T: type) type {
    return if (@typeInfo(T) == .float) f64 else i64;
}

/// Store the cancel flag as a host does (1: cancel the running call; 0 before the next).
pub fn setCancel(v: u32) void {
    @atomicStore(u32, &rt.counters.block.cancel, v, .seq_cst);
}

fn nowNs() u64 {
    var ts: std.os.linux.timespec = undefined;
    _ = std.os.linux.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

fn sleepNs(ns: u64) void {
    const never: u32 = 0;
    _ = rt.platform.futexWait(&never, 0, ns);
}

/// Run `f(args)` through c.call (as its export does) while another thread stores the cancel
/// flag `delay_ms` after the call began; returns the nanoseconds from that store until the
/// call returned. The call must end E_CANCELED (a call that ends first was not long enough).
pub fn cancelLatencyNs(comptime f: anytype, args: std.meta.ArgsTuple(@TypeOf(f)), delay_ms: u64) !u64 {
    const Canceller = struct {
        fn run(delay_ns: u64, at: *u64) void {
            var waited: usize = 0;
            while (@atomicLoad(u32, &rt.counters.block.in_call, .seq_cst) == 0 and waited < 100_000_000) : (waited += 1) {
                std.atomic.spinLoopHint();
            }
            sleepNs(delay_ns);
            @atomicStore(u64, at, nowNs(), .seq_cst);
            setCancel(1);
        }
    };
    setCancel(0);
    var at: u64 = 0;
    const t = try std.Thread.spawn(.{}, Canceller.run, .{ delay_ms * std.time.ns_per_ms, &at });
    const st = c.call(f, args);
    const end = nowNs();
    t.join();
    setCancel(0);
    try std.testing.expectEqual(c.E_CANCELED, st);
    const set_at = @atomicLoad(u64, &at, .seq_cst);
    return end -| set_at;
}

/// The ABI's promise: a cancel lands within 100 ms. A shared test machine can stall a thread
/// for longer now and then, so the best of three tries counts.
pub fn expectPromptCancel(comptime f: anytype, args: std.meta.ArgsTuple(@TypeOf(f)), delay_ms: u64) !void {
    var best: u64 = std.math.maxInt(u64);
    for (0..3) |_| {
        best = @min(best, try cancelLatencyNs(f, args, delay_ms));
        if (best < 100 * std.time.ns_per_ms) return;
    }
    std.debug.print("cancel took {d} ms at best\n", .{best / std.time.ns_per_ms});
    return error.CancelTooSlow;
}

/// Per-thread task counts now (to see afterwards which threads ran tasks).
pub fn taskCounts() [rt.counters.max_threads]u64 {
    var t: [rt.counters.max_threads]u64 = undefined;
    for (&t, 0..) |*v, i| v.* = rt.counters.load64(&rt.counters.block.per_thread[i].tasks);
    return t;
}

/// How many threads ran at least one task since `before`.
pub fn threadsThatRan(before: [rt.counters.max_threads]u64) usize {
    const now = taskCounts();
    var n: usize = 0;
    for (now, before) |a, b| n += @intFromBool(a > b);
    return n;
}
