//! Jobs and latches. A Job is a type-erased "run me" header embedded in a larger struct; the
//! deques hold pointers to it. A Latch is how a thread waits for a job another thread runs
//! (rayon's CoreLatch: the owner announces it is going to sleep so the setter knows to wake it).
const std = @import("std");
const platform = @import("platform.zig");

pub const Job = struct {
    execute_fn: *const fn (*Job) void,

    /// Run the job on the current thread, as a stolen (migrated) job.
    pub fn execute(self: *Job) void {
        self.execute_fn(self);
    }
};

pub const Latch = struct {
    const unset: u32 = 0;
    const sleepy: u32 = 1; // the owner is about to sleep, or sleeps, on `state`
    const set_: u32 = 2;

    state: u32 = unset,

    pub fn probe(self: *const Latch) bool {
        return @atomicLoad(u32, &self.state, .acquire) == set_;
    }

    /// Mark done and wake the owner if it sleeps. The latch may be freed by its owner as soon
    /// as the swap is visible; the wake-up below then hits a dead address, which is harmless
    /// (at worst a spurious wake-up of a later waiter on the same address, and every waiter
    /// re-checks its condition).
    pub fn set(self: *Latch) void {
        const old = @atomicRmw(u32, &self.state, .Xchg, set_, .seq_cst);
        if (old == sleepy) platform.futexWake(&self.state, std.math.maxInt(u32));
    }

    /// Owner: block until set, or until `timeout_ns` passes. No wake-up can be lost: the owner
    /// moves unset -> sleepy first, and the futex only blocks while the state is still sleepy;
    /// a setter that swapped in `set` before then makes the wait return at once.
    pub fn sleep(self: *Latch, timeout_ns: ?u64) void {
        if (@cmpxchgStrong(u32, &self.state, unset, sleepy, .seq_cst, .seq_cst)) |cur| {
            if (cur == set_) return;
        }
        _ = platform.futexWait(&self.state, sleepy, timeout_ns);
        // Back to unset so the next set() does not wake a thread that is not sleeping.
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
