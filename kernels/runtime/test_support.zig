//! Helpers for the runtime's native tests: run a body in the pool with a given thread count.
const std = @import("std");
const registry = @import("registry.zig");
const counters = @import("counters.zig");
const status = @import("status.zig");

/// Resize the pool to `threads`, clear the cancel flag (as hosts do before each call) and run
/// `body.run() -> i32` through the kernel-call wrapper.
pub fn runWith(threads: u32, body: anytype) !i32 {
    try std.testing.expectEqual(status.OK, registry.setThreads(threads));
    try std.testing.expectEqual(@as(usize, threads), registry.numThreads());
    @atomicStore(u32, &counters.block.cancel, 0, .seq_cst);
    return registry.call(body);
}

/// Adapts a `fn run(self) void` body to the i32-returning form `call` expects.
pub fn Void(comptime T: type) type {
    return struct {
        inner: *T,
        pub fn run(self: *@This()) i32 {
            self.inner.run();
            return status.OK;
        }
    };
}

pub fn runVoid(threads: u32, body: anytype) !void {
    var v: Void(@TypeOf(body.*)) = .{ .inner = body };
    try std.testing.expectEqual(status.OK, try runWith(threads, &v));
}

/// Thread counts every pool test runs at (1 = everything inline on the caller).
pub const thread_counts = [_]u32{ 1, 2, 3, 4, 8 };
