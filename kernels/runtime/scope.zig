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

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;
const support = @import("test_support.zig");
const counters = @import("counters.zig");

/// Each task writes its slot; tasks with children spawn them into the same scope, from
/// whatever thread they run on.
const Task = struct {
    index: usize,
    out: []u64,
    tasks: []Task,
    scope: *Scope = undefined,
    fanout: usize,

    pub fn run(self: *Task) void {
        _ = @atomicRmw(u64, &self.out[self.index], .Add, self.index * 3 + 1, .monotonic);
        // Children of i: fanout*i+1 .. fanout*i+fanout (a tree over the array).
        for (1..self.fanout + 1) |k| {
            const c = self.fanout * self.index + k;
            if (c >= self.tasks.len) break;
            self.tasks[c] = .{ .index = c, .out = self.out, .tasks = self.tasks, .scope = self.scope, .fanout = self.fanout };
            self.scope.spawn(&self.tasks[c]);
        }
    }
};

const TreeBody = struct {
    root: *Task,
    fn spawnRoot(s: *Scope, self: *TreeBody) void {
        self.root.scope = s;
        s.spawn(self.root);
    }
    pub fn run(self: *TreeBody) void {
        scope(self, spawnRoot);
    }
};

test "scope: a tree of nested spawns runs every task once, at every thread count" {
    const n = 5000;
    const out = try testing.allocator.alloc(u64, n);
    defer testing.allocator.free(out);
    const tasks = try testing.allocator.alloc(Task, n);
    defer testing.allocator.free(tasks);
    for (support.thread_counts) |t| {
        for ([_]usize{ 1, 2, 7 }) |fanout| {
            @memset(out, 0);
            const before = counters.load64(&counters.block.bytes_in_use);
            tasks[0] = .{ .index = 0, .out = out, .tasks = tasks, .fanout = fanout };
            var body: TreeBody = .{ .root = &tasks[0] };
            try support.runVoid(t, &body);
            for (out, 0..) |v, i| try testing.expectEqual(@as(u64, i * 3 + 1), v);
            // Heap jobs are all released once the scope has returned.
            try testing.expectEqual(before, counters.load64(&counters.block.bytes_in_use));
        }
    }
}

test "scope: an empty scope returns, also outside a kernel call" {
    const Empty = struct {
        fn body(_: *Scope, _: void) void {}
    };
    scope({}, Empty.body);
    var e: struct {
        pub fn run(_: *@This()) void {
            scope({}, Empty.body);
        }
    } = .{};
    try support.runVoid(3, &e);
}

/// Scope jobs that themselves fork with join and parallelFor.
const Mixed = struct {
    index: usize,
    out: []u64,

    pub fn run(self: *Mixed) void {
        const Sum = struct {
            lo: u64,
            hi: u64,
            result: u64 = 0,
            pub fn run(s: *@This()) void {
                var acc: u64 = 0;
                for (s.lo..s.hi) |i| acc += i;
                s.result = acc;
            }
        };
        var a: Sum = .{ .lo = 0, .hi = self.index };
        var b: Sum = .{ .lo = self.index, .hi = 2 * self.index };
        @import("join.zig").join(&a, &b);
        self.out[self.index] = a.result + b.result;
    }
};

test "scope: spawned jobs that join inside, many jobs, every thread count" {
    const n = 700;
    const out = try testing.allocator.alloc(u64, n);
    defer testing.allocator.free(out);
    const jobs = try testing.allocator.alloc(Mixed, n);
    defer testing.allocator.free(jobs);
    const Body = struct {
        jobs: []Mixed,
        fn spawnAll(s: *Scope, self: *@This()) void {
            for (self.jobs) |*j| s.spawn(j);
        }
        pub fn run(self: *@This()) void {
            scope(self, spawnAll);
        }
    };
    for (support.thread_counts) |t| {
        @memset(out, 0);
        for (jobs, 0..) |*j, i| j.* = .{ .index = i, .out = out };
        var body: Body = .{ .jobs = jobs };
        try support.runVoid(t, &body);
        for (out, 0..) |v, i| try testing.expectEqual(@as(u64, 2 * i * i - i), v);
    }
}
