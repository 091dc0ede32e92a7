//! The runtime API the compute kernels use (kernels/ABI.md, "Inside the module").
const std = @import("std");
const registry = @import("registry.zig");
const join_mod = @import("join.zig");
const scope_mod = @import("scope.zig");
const parallel_for = @import("parallel_for.zig");
const alloc = @import("alloc.zig");

pub const platform = @import("platform.zig");
pub const counters = @import("counters.zig");
pub const status = @import("status.zig");

/// Run a.run() and b.run(), possibly in parallel; returns when both are done.
pub const join = join_mod.join;
/// body.run(lo, hi) over disjoint ranges covering [0, n), each >= min_len unless n is smaller.
pub const parallelFor = parallel_for.parallelFor;
pub const Scope = scope_mod.Scope;
/// Fork-join scope: every job spawned with s.spawn(job) has finished when it returns.
pub const scope = scope_mod.scope;

/// Thread-safe, counted in bytes_in_use.
pub const allocator: std.mem.Allocator = alloc.allocator;

/// True once the running call was cancelled (a host store into counters.cancel, or host_poll).
pub fn cancelled() bool {
    return registry.cancelled();
}

/// Like cancelled(), but the caller thread also polls the host (env.host_poll) first: for checks
/// inside one long task, where the between-task polls would come too late.
pub fn pollCancelled() bool {
    return registry.pollCancelled();
}

/// Threads live in the pool now, the caller included.
pub fn numThreads() usize {
    return registry.numThreads();
}

/// Entry wrapper for every jr_* kernel export: marks in_call, rejects re-entry (E_BUSY), runs
/// body.run() -> i32 on the caller thread as worker 0, returns E_CANCELED if the run was
/// cancelled, else body's status.
pub fn call(body: anytype) i32 {
    return registry.call(body);
}

/// Pool control, used by exports.zig.
pub const setThreads = registry.setThreads;
pub const allocBytes = alloc.allocBytes;
pub const freeBytes = alloc.freeBytes;
