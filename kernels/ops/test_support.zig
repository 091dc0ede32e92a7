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
