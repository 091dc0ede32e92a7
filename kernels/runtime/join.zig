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
