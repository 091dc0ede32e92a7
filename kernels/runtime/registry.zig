//! The pool's threads and their life: worker records, finding work (own deque first, then
//! stealing from random victims), waiting on a latch while helping, the helpers' main loop,
//! growing and shrinking the pool, and the entry wrapper for kernel calls.
const std = @import("std");
const platform = @import("platform.zig");
const counters = @import("counters.zig");
const deque = @import("deque.zig");
const job_mod = @import("job.zig");
const sleep = @import("sleep.zig");
const thread = @import("thread.zig");
const alloc = @import("alloc.zig");
const status = @import("status.zig");

const Job = job_mod.Job;
const Latch = job_mod.Latch;

pub const max_threads = counters.max_threads;
pub const deque_capacity = 1024;
pub const Deque = deque.Deque(Job, deque_capacity);

/// Rounds of searching for work before an idle thread sleeps (rayon uses 32 with yields).
const spin_rounds = 64;
/// The caller sleeps at most this long between host polls when it waits idle.
const caller_wait_ns: u64 = 20 * std.time.ns_per_ms;
/// The caller calls env.host_poll every this many tasks it runs.
const poll_every_tasks = 1024;

pub const Worker = struct {
    index: usize,
    deque: Deque = .{},
    rng: u64 = 0,
    /// Set by setThreads: leave the main loop and return from wasi_thread_start.
    retire: u32 = 0,
    /// Set once the thread has returned (on wasm by the assembly in thread.zig, after the last
    /// use of its stack).
    exited: u32 = 0,
    os: thread.Handle = .{},
};

/// Undefined at start, so the records cost nothing in the module's data segment; `prepare`
/// fills each one on first use.
pub var workers: [max_threads]Worker = undefined;
var prepared: [max_threads]bool = @splat(false);

/// The worker the current thread is, or null outside the pool (then everything runs inline).
threadlocal var current: ?*Worker = null;

pub fn currentWorker() ?*Worker {
    return current;
}

pub fn setCurrent(w: ?*Worker) void {
    current = w;
}

pub fn numThreads() usize {
    return counters.load32(&counters.block.threads);
}

fn prepare(i: usize) *Worker {
    const w = &workers[i];
    if (!prepared[i]) {
        prepared[i] = true;
        w.* = .{ .index = i, .rng = @as(u64, 0x9E3779B97F4A7C15) *% (i + 1) };
        counters.add64(&counters.block.runtime_bytes, @sizeOf(Deque));
    }
    return w;
}

// ---- tasks, polling, cancel ------------------------------------------------------------------

pub fn cancelled() bool {
    return counters.cancelRequested();
}

fn pollHost() void {
    if (platform.hostPoll() != 0) counters.requestCancel();
}

/// Count one task for `w`; the caller polls the host every `poll_every_tasks` tasks.
pub fn countTask(w: *Worker) void {
    const t = counters.countTask(w.index);
    if (w.index == 0 and t % poll_every_tasks == 0) pollHost();
}

pub fn countTaskCurrent() void {
    if (current) |w| countTask(w);
}

// ---- finding and running work ------------------------------------------------------------------

fn nextRandom(w: *Worker) u64 {
    // xorshift64*: only needs to spread victims, not to be strong.
    var x = w.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w.rng = x;
    return x *% 0x2545F4914F6CDD1D;
}

/// Steal from the other live workers, starting at a random victim.
fn steal(w: *Worker) ?*Job {
    const n = numThreads();
    if (n <= 1) return null;
    const start: usize = @intCast(nextRandom(w) % n);
    var retry = true;
    while (retry) {
        retry = false;
        for (0..n) |k| {
            const v = (start + k) % n;
            if (v == w.index) continue;
            switch (workers[v].deque.steal()) {
                .success => |j| {
                    counters.countSteal(w.index);
                    return j;
                },
                .retry => retry = true,
                .empty => {},
            }
        }
    }
    return null;
}

pub fn findWork(w: *Worker) ?*Job {
    if (w.deque.pop()) |j| return j;
    return steal(w);
}

fn anyWorkVisible(w: *Worker) bool {
    if (@atomicLoad(u32, &w.retire, .seq_cst) != 0) return true;
    const n = numThreads();
    for (workers[0..n]) |*v| {
        if (!v.deque.looksEmpty()) return true;
    }
    return false;
}

/// Push a job on the current worker's deque and wake a sleeper to steal it. False when the
/// deque is full or there is no pool: the caller then runs the job inline.
pub fn pushJob(w: *Worker, j: *Job) bool {
    if (!w.deque.push(j)) return false;
    sleep.notify(1);
    return true;
}

/// Block until `latch` is set, running other work meanwhile: first spin searching, then sleep
/// on the latch itself (its setter wakes us). The caller (worker 0) sleeps at most 20 ms at a
/// time and polls the host on each wake-up.
pub fn waitUntil(w: *Worker, latch: *Latch) void {
    var idle: u32 = 0;
    while (!latch.probe()) {
        if (findWork(w)) |j| {
            j.execute();
            idle = 0;
            continue;
        }
        idle += 1;
        if (idle < spin_rounds) {
            platform.idlePause();
            continue;
        }
        if (w.index == 0) {
            latch.sleep(caller_wait_ns);
            pollHost();
        } else {
            counters.setState(w.index, .sleeping);
            latch.sleep(null);
            counters.setState(w.index, .working);
        }
        idle = 0;
    }
}

// ---- helper threads ------------------------------------------------------------------------

fn busyAdd(delta: i32) void {
    if (delta > 0) {
        _ = @atomicRmw(u32, &counters.block.busy, .Add, 1, .monotonic);
    } else {
        _ = @atomicRmw(u32, &counters.block.busy, .Sub, 1, .monotonic);
    }
}

/// A helper's life: find work, run it, sleep when there is none, leave when retired.
pub fn helperMain(w: *Worker) void {
    current = w;
    counters.setState(w.index, .working);
    busyAdd(1);
    var idle: u32 = 0;
    while (@atomicLoad(u32, &w.retire, .seq_cst) == 0) {
        if (findWork(w)) |j| {
            j.execute();
            idle = 0;
            continue;
        }
        idle += 1;
        if (idle < spin_rounds) {
            platform.idlePause();
            continue;
        }
        counters.setState(w.index, .sleeping);
        busyAdd(-1);
        sleep.sleepUnless(w, anyWorkVisible, null);
        busyAdd(1);
        counters.setState(w.index, .working);
        idle = 0;
    }
    busyAdd(-1);
    counters.setState(w.index, .absent);
    current = null;
}

/// Make the pool have exactly `n` threads, the caller included. Not during a kernel call.
pub fn setThreads(n: u32) i32 {
    if (n == 0 or n > max_threads) return status.E_INVAL;
    if (@cmpxchgStrong(u32, &counters.block.in_call, 0, 1, .acq_rel, .monotonic) != null) {
        return status.E_BUSY;
    }
    defer counters.store32(&counters.block.in_call, 0);
    _ = prepare(0);
    var have = numThreads();
    if (n < have) {
        // Retire the highest helpers: they leave once idle, and every deque is empty between
        // calls, so nothing is lost.
        for (workers[n..have]) |*w| @atomicStore(u32, &w.retire, 1, .seq_cst);
        counters.store32(&counters.block.threads, n);
        sleep.notifyAll();
        for (workers[n..have]) |*w| thread.waitExited(w);
        return status.OK;
    }
    while (have < n) : (have += 1) {
        const w = prepare(have);
        @atomicStore(u32, &w.retire, 0, .seq_cst);
        @atomicStore(u32, &w.exited, 0, .seq_cst);
        counters.setState(w.index, .working);
        if (!thread.spawn(w)) {
            @atomicStore(u32, &w.exited, 1, .seq_cst);
            counters.setState(w.index, .absent);
            return status.E_THREADS;
        }
        counters.store32(&counters.block.threads, @intCast(have + 1));
    }
    return status.OK;
}

// ---- kernel calls --------------------------------------------------------------------------

/// Entry wrapper for every jr_* kernel export (see runtime.zig `call`).
pub fn call(body: anytype) i32 {
    if (@cmpxchgStrong(u32, &counters.block.in_call, 0, 1, .acq_rel, .monotonic) != null) {
        return status.E_BUSY;
    }
    const w = prepare(0);
    const outer = current;
    current = w;
    counters.setState(0, .working);
    busyAdd(1);
    const rc: i32 = body.run();
    busyAdd(-1);
    counters.setState(0, .sleeping);
    current = outer;
    const result = if (cancelled()) status.E_CANCELED else rc;
    counters.add64(&counters.block.calls, 1);
    counters.store32(&counters.block.in_call, 0);
    return result;
}
