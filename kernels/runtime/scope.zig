//! scope: spawn any number of jobs that all finish before `scope` returns. Spawned jobs live
//! on the heap (the spawner's frame may return first); a pending counter, started at 1 for the
//! scope body itself, sets the scope's latch when it drops to zero.
const std = @import("std");
const platform = @import("platform.zig");
const registry = @import("registry.zig");
const job = @import("job.zig");
const alloc = @import("alloc.zig");

pub const Scope = struct {
    pending: usize = 1,
    latch: job.Latch = .{},

    /// Run `task.run()` (task: pointer to a struct with `pub fn run(self) void`), possibly on
    /// another thread. `task` must stay valid until the scope ends.
    pub fn spawn(self: *Scope, task: anytype) void {
        const T = @TypeOf(task.*);
        const HeapJob = struct {
            job: job.Job = .{ .execute_fn = execute },
            scope: *Scope,
            task: *T,

            fn execute(j: *job.Job) void {
                const hj: *@This() = @fieldParentPtr("job", j);
                const s = hj.scope;
                hj.task.run();
                registry.countTaskCurrent();
                alloc.freeBytes(@ptrCast(hj));
                s.complete();
            }
        };
        const w = registry.currentWorker() orelse return runInline(task);
        if (!platform.threaded or registry.numThreads() <= 1) return runInline(task);
        const mem = alloc.allocBytes(@sizeOf(HeapJob), @alignOf(HeapJob), false) orelse
            return runInline(task);
        const hj: *HeapJob = @ptrCast(@alignCast(mem));
        hj.* = .{ .scope = self, .task = task };
        _ = @atomicRmw(usize, &self.pending, .Add, 1, .seq_cst);
        if (!registry.pushJob(w, &hj.job)) {
            // Deque full: run it here, which also releases the job and its pending count.
            hj.job.execute();
        }
    }

    fn complete(self: *Scope) void {
        if (@atomicRmw(usize, &self.pending, .Sub, 1, .seq_cst) == 1) self.latch.set();
    }
};

fn runInline(task: anytype) void {
    task.run();
    registry.countTaskCurrent();
}

/// Run `body(&scope, ctx)`; returns when the body and every job it (transitively) spawned in
/// the scope have finished. The waiting thread helps run them.
pub fn scope(ctx: anytype, comptime body: fn (*Scope, @TypeOf(ctx)) void) void {
    var s: Scope = .{};
    body(&s, ctx);
    s.complete();
    if (registry.currentWorker()) |w| {
        registry.waitUntil(w, &s.latch);
    } else {
        std.debug.assert(s.latch.probe());
    }
}
