//! join: run two closures, the second possibly on another thread (rayon's join_context).
//! The second half is pushed as a StackJob on the current worker's deque; the first half runs
//! at once; then the second half is popped back and run inline unless a thief took it, in
//! which case we help with other work until its latch is set.
const std = @import("std");
const platform = @import("platform.zig");
const registry = @import("registry.zig");
const job = @import("job.zig");

/// a, b: pointers to structs with `fn run(self, migrated: bool) void`. `migrated` is true when
/// the closure runs on a thread that stole it (parallelFor's splitter reacts to that).
pub fn joinContext(a: anytype, b: anytype) void {
    const B = @TypeOf(b.*);
    const w = registry.currentWorker() orelse return runBoth(a, b, null);
    if (!platform.threaded or registry.numThreads() <= 1) return runBoth(a, b, w);

    const Counted = struct {
        inner: *B,
        pub fn run(self: *@This(), migrated: bool) void {
            self.inner.run(migrated);
            registry.countTaskCurrent();
        }
    };
    var counted: Counted = .{ .inner = b };
    var sj: job.StackJob(Counted) = .{ .body = &counted };
    if (!registry.pushJob(w, &sj.job)) return runBoth(a, b, w);
    a.run(false);
    while (!sj.latch.probe()) {
        const j = w.deque.pop() orelse {
            registry.waitUntil(w, &sj.latch);
            return;
        };
        if (j == &sj.job) {
            counted.run(false);
            return;
        }
        // Left behind by work that ran inside `a` (it normally pops its own jobs): run it.
        j.execute();
    }
}

fn runBoth(a: anytype, b: anytype, w: ?*registry.Worker) void {
    a.run(false);
    b.run(false);
    if (w) |wk| registry.countTask(wk);
}

/// Public join: a, b are pointers to structs with `pub fn run(self) void`.
pub fn join(a: anytype, b: anytype) void {
    var aa = Plain(@TypeOf(a.*)){ .p = a };
    var bb = Plain(@TypeOf(b.*)){ .p = b };
    joinContext(&aa, &bb);
}

fn Plain(comptime T: type) type {
    return struct {
        p: *T,
        pub fn run(self: *@This(), _: bool) void {
            self.p.run();
        }
    };
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;
const support = @import("test_support.zig");

const Fib = struct {
    n: u32,
    result: u64 = 0,
    pub fn run(self: *Fib) void {
        if (self.n < 2) {
            self.result = self.n;
            return;
        }
        var a: Fib = .{ .n = self.n - 1 };
        var b: Fib = .{ .n = self.n - 2 };
        join(&a, &b);
        self.result = a.result + b.result;
    }
};

fn fibRef(n: u32) u64 {
    var a: u64 = 0;
    var b: u64 = 1;
    for (0..n) |_| {
        const c = a + b;
        a = b;
        b = c;
    }
    return a;
}

test "join: fib via join matches the iterative value at every thread count" {
    for (support.thread_counts) |t| {
        for ([_]u32{ 0, 1, 2, 3, 10, 17, 22 }) |n| {
            var f: Fib = .{ .n = n };
            try support.runVoid(t, &f);
            try testing.expectEqual(fibRef(n), f.result);
        }
    }
}

test "join: outside a kernel call both halves run inline" {
    var f: Fib = .{ .n = 15 };
    f.run();
    try testing.expectEqual(fibRef(15), f.result);
}

/// join(deeper, leaf) nested `depth` times: more pending jobs than a deque holds, so the
/// inline fallback for a full deque runs too. Every leaf adds its level once.
const Deep = struct {
    depth: u32,
    sum: *u64,
    pub fn run(self: *Deep) void {
        if (self.depth == 0) return;
        var next: Deep = .{ .depth = self.depth - 1, .sum = self.sum };
        var leaf: Leaf = .{ .value = self.depth, .sum = self.sum };
        join(&next, &leaf);
    }
    const Leaf = struct {
        value: u64,
        sum: *u64,
        pub fn run(self: *Leaf) void {
            _ = @atomicRmw(u64, self.sum, .Add, self.value, .monotonic);
        }
    };
};

test "join: nested 10,000 deep" {
    // The test runner's main thread is the pool's caller; 10,000 frames need a larger stack
    // than its default, so the whole check runs on a thread with 256 MiB of stack.
    const Check = struct {
        fn run(result: *anyerror!void) void {
            result.* = check();
        }
        fn check() !void {
            for ([_]u32{ 1, 2, 4 }) |t| {
                var sum: u64 = 0;
                var d: Deep = .{ .depth = 10_000, .sum = &sum };
                try support.runVoid(t, &d);
                try testing.expectEqual(@as(u64, 10_000 * 10_001 / 2), sum);
            }
        }
    };
    var result: anyerror!void = {};
    const th = try std.Thread.spawn(.{ .stack_size = 256 << 20 }, Check.run, .{&result});
    th.join();
    try result;
}

test "join: many calls in a row, helpers falling asleep and waking between them" {
    // A lost wake-up of a helper that waits for a stolen half would hang one of these calls.
    for ([_]u32{ 4, 8, 2 }) |t| {
        for (0..150) |k| {
            const n: u32 = 8 + @as(u32, @intCast(k % 11));
            var f: Fib = .{ .n = n };
            try support.runVoid(t, &f);
            try testing.expectEqual(fibRef(n), f.result);
        }
    }
}
