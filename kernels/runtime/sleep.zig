//! Sleeping and waking idle threads: an eventcount on one futex word.
//!
//! Protocol (no wake-up can be lost):
//!   sleeper: sleepers += 1; e = epoch; re-check for work (and for being retired);
//!            if none: futex_wait(&epoch, e); sleepers -= 1
//!   notifier: publish the work (a seq_cst store: the deque's bottom); if sleepers > 0:
//!            epoch += 1; futex_wake(&epoch)
//! All of these are seq_cst operations (wasm atomics are, natively the orders say so). If the
//! notifier reads sleepers == 0, its read, and the publishing store before it, precede the
//! sleeper's increment in the single total order of seq_cst operations, so the sleeper's
//! re-check (after the increment) sees the published work. Otherwise the notifier bumps the epoch: a sleeper that read `e`
//! before the bump fails the futex compare and does not block, one that is already blocked is
//! woken, and one that reads `e` after the bump also re-checks after it and sees the work.
const std = @import("std");
const platform = @import("platform.zig");

var epoch: u32 align(64) = 0;
var sleepers: u32 align(64) = 0;

/// Called after making work visible (a push) or after a state change sleepers must see.
pub fn notify(count: u32) void {
    if (!platform.threaded) return;
    // A plain load keeps the common case (nobody asleep) free of writes to a shared line.
    if (@atomicLoad(u32, &sleepers, .seq_cst) == 0) return;
    _ = @atomicRmw(u32, &epoch, .Add, 1, .seq_cst);
    platform.futexWake(&epoch, count);
}

pub fn notifyAll() void {
    notify(std.math.maxInt(u32));
}

/// Block until notified, unless `hasWork(ctx)` is true after registering as a sleeper.
/// Returns without sleeping when there is work; spurious returns are allowed.
pub fn sleepUnless(ctx: anytype, comptime hasWork: fn (@TypeOf(ctx)) bool, timeout_ns: ?u64) void {
    if (!platform.threaded) return;
    _ = @atomicRmw(u32, &sleepers, .Add, 1, .seq_cst);
    const e = @atomicLoad(u32, &epoch, .seq_cst);
    if (!hasWork(ctx)) _ = platform.futexWait(&epoch, e, timeout_ns);
    _ = @atomicRmw(u32, &sleepers, .Sub, 1, .seq_cst);
}

pub fn sleeperCount() u32 {
    return @atomicLoad(u32, &sleepers, .seq_cst);
}
