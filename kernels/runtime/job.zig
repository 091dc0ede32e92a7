//! Jobs and latches. A Job is a type-erased "run me" header embedded in a larger struct; the
//! deques hold pointers to it. A Latch is how a thread waits for a job another thread runs
//! (rayon's CoreLatch: the owner announces it is going to sleep so the setter knows to wake it).
//! A sleeping owner sleeps in sleep.zig's eventcount, like an idle helper, so that work pushed
//! meanwhile (the thief splitting the half it stole) wakes it too, not only the latch.
const std = @import("std");
const sleep_mod = @import("sleep.zig");

pub const Job = struct {
    execute_fn: *const fn (*Job) void,

    /// Run the job on the current thread, as a stolen (migrated) job.
    pub fn execute(self: *Job) void {
        self.execute_fn(self);
    }
};

pub const Latch = struct {
    const unset: u32 = 0;
    const sleepy: u32 = 1; // the owner is about to sleep, or sleeps (in sleep.zig's eventcount)
    const set_: u32 = 2;

    state: u32 = unset,

    pub fn probe(self: *const Latch) bool {
        return @atomicLoad(u32, &self.state, .acquire) == set_;
    }

    /// Mark done and wake the owner if it sleeps. The latch may be freed by its owner as soon
    /// as the swap is visible; the wake-up below touches only the eventcount, never the latch.
    pub fn set(self: *Latch) void {
        const old = @atomicRmw(u32, &self.state, .Xchg, set_, .seq_cst);
        // Every sleeper wakes (the owner cannot be singled out on the shared futex word); it
        // happens only when the owner ran out of work to steal and went to sleep.
        if (old == sleepy) sleep_mod.notifyAll();
    }

    /// Owner: block until set, until `hasWork(ctx)` (something to steal appeared), or until
    /// `timeout_ns` passes. No wake-up can be lost: the owner moves unset -> sleepy before it
    /// registers as a sleeper, so a setter that swapped before the move makes the move fail,
    /// and one that swapped after it notifies; sleep.zig's protocol then covers the rest (a
    /// notifier that saw no sleeper swapped before the registration, so the owner's re-check
    /// after it sees the latch set). Work pushed meanwhile wakes it through the same protocol.
    pub fn sleep(self: *Latch, ctx: anytype, comptime hasWork: fn (@TypeOf(ctx)) bool, timeout_ns: ?u64) void {
        if (@cmpxchgStrong(u32, &self.state, unset, sleepy, .seq_cst, .seq_cst)) |cur| {
            if (cur == set_) return;
        }
        const Wait = struct {
            latch: *const Latch,
            ctx: @TypeOf(ctx),
            fn ready(wait: @This()) bool {
                return wait.latch.probe() or hasWork(wait.ctx);
            }
        };
        sleep_mod.sleepUnless(Wait{ .latch = self, .ctx = ctx }, Wait.ready, timeout_ns);
        // Back to unset so the next set() does not wake the pool for a thread that is awake.
        _ = @cmpxchgStrong(u32, &self.state, sleepy, unset, .seq_cst, .seq_cst);
    }
};

/// A job that lives on the stack of the thread that pushed it (the second half of a join).
/// `Body` has `fn run(self: *Body, migrated: bool) void`.
pub fn StackJob(comptime Body: type) type {
    return struct {
        const Self = @This();

        job: Job = .{ .execute_fn = executeStolen },
        body: *Body,
        latch: Latch = .{},

        fn executeStolen(j: *Job) void {
            const self: *Self = @fieldParentPtr("job", j);
            self.body.run(true);
            self.latch.set();
        }
    };
}
