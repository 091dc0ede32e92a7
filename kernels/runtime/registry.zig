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
const status = @import("status.zig");
const abi = @import("abi.zig");

const Job = job_mod.Job;
const Latch = job_mod.Latch;

pub const max_threads = counters.max_threads;
pub const deque_capacity = 1024;
pub const Deque = deque.Deque(Job, deque_capacity);

/// Rounds of searching for work before an idle thread sleeps (rayon uses 32 with yields).
/// 512 rounds are some 50 us on wasm: a helper is still awake when the next call of a loop
/// of short calls (a millisecond) starts, where waking it from the futex can take longer than
/// the call itself; an idle pool still sleeps within that time.
const spin_rounds = 512;
/// The caller sleeps at most this long between host polls when it waits idle.
const caller_wait_ns: u64 = @as(u64, abi.IDLE_WAIT_MS) * std.time.ns_per_ms;
/// The caller calls env.host_poll every this many tasks it runs. A call has at most a few
/// thousand chunks per thread, so an interrupt lands within about 1/256 of a long call; a poll
/// costs a few nanoseconds in JS and in the wasmtime backend (a wasm function there).
const poll_every_tasks = abi.POLL_EVERY_TASKS;

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

/// For kernels whose single task can run long: on the caller thread, ask the host whether to
/// cancel (other threads only read the flag, which the caller's poll sets).
pub fn pollCancelled() bool {
    if (current) |w| {
        if (w.index == 0) pollHost();
    }
    return cancelled();
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
/// until the latch is set or there is work to steal (the thief of our half splits it and
/// pushes the pieces: we must wake to take them, or we idle while it works alone). The caller
/// (worker 0) sleeps at most 20 ms at a time and polls the host on each wake-up.
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
            latch.sleep(w, anyWorkVisible, caller_wait_ns);
            pollHost();
        } else {
            counters.setState(w.index, .sleeping);
            busyAdd(-1);
            latch.sleep(w, anyWorkVisible, null);
            busyAdd(1);
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

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;
const support = @import("test_support.zig");
const join_mod = @import("join.zig");

/// Sum over 0..n split by joins, enough work for every thread to take part.
const SumTree = struct {
    lo: u64,
    hi: u64,
    result: u64 = 0,
    pub fn run(self: *SumTree) void {
        if (self.hi - self.lo <= 64) {
            var s: u64 = 0;
            var i = self.lo;
            while (i < self.hi) : (i += 1) s += i;
            self.result = s;
            return;
        }
        const mid = self.lo + (self.hi - self.lo) / 2;
        var a: SumTree = .{ .lo = self.lo, .hi = mid };
        var b: SumTree = .{ .lo = mid, .hi = self.hi };
        join_mod.join(&a, &b);
        self.result = a.result + b.result;
    }
};

fn expectStates(live: usize) !void {
    for (0..max_threads) |i| {
        const s = counters.load32(&counters.block.per_thread[i].state);
        if (i < live) {
            try testing.expect(s != @backingInt(counters.State.absent));
        } else {
            try testing.expectEqual(@backingInt(counters.State.absent), s);
        }
    }
}

test "setThreads: up and down repeatedly, work correct at each size, retired records absent" {
    const sizes = [_]u32{ 1, 4, 2, 8, 1, 3, 3, 16, 5, 1, 2 };
    for (sizes) |n| {
        var t: SumTree = .{ .lo = 0, .hi = 100_000 };
        try support.runVoid(n, &t);
        try testing.expectEqual(@as(u64, 100_000 * 99_999 / 2), t.result);
        try testing.expectEqual(n, counters.load32(&counters.block.threads));
        try expectStates(n);
    }
    try testing.expectEqual(status.E_INVAL, setThreads(0));
    try testing.expectEqual(status.E_INVAL, setThreads(max_threads + 1));
    try testing.expectEqual(@as(usize, 2), numThreads());
}

test "setThreads: a failed spawn is E_THREADS, keeps the threads it started, pool still works" {
    try testing.expectEqual(status.OK, setThreads(1));
    thread.native_spawn_budget = 2;
    defer thread.native_spawn_budget = null;
    try testing.expectEqual(status.E_THREADS, setThreads(5));
    try testing.expectEqual(@as(usize, 3), numThreads());
    try expectStates(3);
    var t: SumTree = .{ .lo = 0, .hi = 50_000 };
    var v: support.Void(SumTree) = .{ .inner = &t };
    try testing.expectEqual(status.OK, call(&v));
    try testing.expectEqual(@as(u64, 50_000 * 49_999 / 2), t.result);
    thread.native_spawn_budget = null;
    try testing.expectEqual(status.OK, setThreads(5));
    try expectStates(5);
}

test "call: re-entry and setThreads during a call are E_BUSY; counters advance" {
    const Inner = struct {
        set_rc: i32 = 0,
        call_rc: i32 = 0,
        in_call: u32 = 0,
        pub fn run(self: *@This()) i32 {
            self.in_call = counters.load32(&counters.block.in_call);
            self.set_rc = setThreads(2);
            var nothing: support.Void(SumTree) = .{ .inner = undefined };
            self.call_rc = call(&nothing);
            return status.OK;
        }
    };
    const calls_before = counters.load64(&counters.block.calls);
    var inner: Inner = .{};
    try testing.expectEqual(status.OK, try support.runWith(3, &inner));
    try testing.expectEqual(@as(u32, 1), inner.in_call);
    try testing.expectEqual(status.E_BUSY, inner.set_rc);
    try testing.expectEqual(status.E_BUSY, inner.call_rc);
    try testing.expectEqual(@as(u32, 0), counters.load32(&counters.block.in_call));
    try testing.expectEqual(calls_before + 1, counters.load64(&counters.block.calls));
    try testing.expectEqual(@as(usize, 3), numThreads());
    // A body's own error status comes back unchanged.
    const Fails = struct {
        pub fn run(_: *@This()) i32 {
            return status.E_DTYPE;
        }
    };
    var f: Fails = .{};
    try testing.expectEqual(status.E_DTYPE, try support.runWith(3, &f));
}

test "idle: after a call every helper goes to sleep and busy drops to zero" {
    var tasks_before: u64 = 0;
    for (0..max_threads) |i| tasks_before += counters.load64(&counters.block.per_thread[i].tasks);
    var t: SumTree = .{ .lo = 0, .hi = 1_000_000 };
    try support.runVoid(4, &t);
    var tasks_after: u64 = 0;
    for (0..max_threads) |i| tasks_after += counters.load64(&counters.block.per_thread[i].tasks);
    try testing.expect(tasks_after > tasks_before);
    // Helpers spin briefly, then sleep on the futex. Poll (bounded) until they all do.
    var rounds: usize = 0;
    while (rounds < 3000) : (rounds += 1) {
        var sleeping: usize = 0;
        for (1..4) |i| {
            if (counters.load32(&counters.block.per_thread[i].state) == @backingInt(counters.State.sleeping)) sleeping += 1;
        }
        if (sleeping == 3 and counters.load32(&counters.block.busy) == 0) break;
        const never: u32 = 0;
        _ = platform.futexWait(&never, 0, 10 * std.time.ns_per_ms); // a 10 ms sleep
    }
    try testing.expect(rounds < 3000);
    try testing.expectEqual(@backingInt(counters.State.sleeping), counters.load32(&counters.block.per_thread[0].state));
}

/// join(a, b) where b, stolen, waits long enough for the joiner to fall asleep, then splits
/// into a parallel loop: the sleeping joiner must wake and take part (it used to sleep on its
/// latch alone and wake only when the thief had done everything).
const LateSplit = struct {
    const chunks = 64;
    b_started: u32 = 0,
    by_caller: u32 = 0,

    const A = struct {
        outer: *LateSplit,
        pub fn run(self: *A) void {
            // Until b runs on the other thread: then b is surely stolen.
            while (@atomicLoad(u32, &self.outer.b_started, .seq_cst) == 0) platform.idlePause();
        }
    };
    const Chunk = struct {
        outer: *LateSplit,
        pub fn run(self: *Chunk, lo: usize, hi: usize) void {
            for (lo..hi) |i| {
                var x: u64 = i; // a dependent chain of some 50 us
                for (0..50_000) |k| x = x *% 6364136223846793005 +% k;
                std.mem.doNotOptimizeAway(x);
                if (current.?.index == 0) _ = @atomicRmw(u32, &self.outer.by_caller, .Add, 1, .monotonic);
            }
        }
    };
    const B = struct {
        outer: *LateSplit,
        pub fn run(self: *B) void {
            @atomicStore(u32, &self.outer.b_started, 1, .seq_cst);
            const never: u32 = 0;
            _ = platform.futexWait(&never, 0, 5 * std.time.ns_per_ms); // the joiner sleeps by now
            var body: Chunk = .{ .outer = self.outer };
            @import("parallel_for.zig").parallelFor(chunks, 1, &body);
        }
    };
    pub fn run(self: *LateSplit) void {
        var a: A = .{ .outer = self };
        var b: B = .{ .outer = self };
        join_mod.join(&a, &b);
    }
};

test "waitUntil: a joiner asleep on its latch wakes for work its thief pushes" {
    var t: LateSplit = .{};
    try support.runVoid(2, &t);
    // The thief's loop takes 64 x ~50 us; the woken joiner takes about half of it. (The old
    // joiner, asleep on its latch alone, woke only every 20 ms: after the loop was done.)
    try testing.expect(t.by_caller > 0);
}
