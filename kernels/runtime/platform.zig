//! What differs between the wasm builds and the native test build: futex wait/wake, where new
//! memory comes from, and how the host is polled. Everything above this file is shared.
const std = @import("std");
const builtin = @import("builtin");

pub const is_wasm = builtin.cpu.arch == .wasm32;
/// false for pool-st.wasm (-fsingle-threaded): no atomics, no futexes, no threads.
pub const threaded = !builtin.single_threaded;

/// Size of one unit of new memory: a wasm page, also used natively so both builds behave alike.
pub const page_size: usize = @import("abi.zig").PAGE_BYTES;

pub const WaitResult = enum { woken, not_equal, timed_out };

/// Block while `ptr.* == expect`, up to `timeout_ns` (null: forever). Spurious wake-ups are
/// allowed: every caller re-checks its condition in a loop.
pub fn futexWait(ptr: *const u32, expect: u32, timeout_ns: ?u64) WaitResult {
    if (!threaded) return .not_equal;
    if (is_wasm) {
        const t: i64 = if (timeout_ns) |ns| @intCast(@min(ns, std.math.maxInt(i63))) else -1;
        const r = asm volatile (
            \\local.get %[ptr]
            \\local.get %[expected]
            \\local.get %[timeout]
            \\memory.atomic.wait32 0
            \\local.set %[ret]
            : [ret] "=r" (-> u32),
            : [ptr] "r" (ptr),
              [expected] "r" (@as(i32, @bitCast(expect))),
              [timeout] "r" (t),
        );
        return switch (r) {
            0 => .woken,
            1 => .not_equal,
            else => .timed_out,
        };
    }
    const linux = std.os.linux;
    var ts: linux.timespec = undefined;
    var tsp: ?*const linux.timespec = null;
    if (timeout_ns) |ns| {
        ts = .{ .sec = @intCast(ns / std.time.ns_per_s), .nsec = @intCast(ns % std.time.ns_per_s) };
        tsp = &ts;
    }
    const rc = linux.futex_4arg(ptr, .{ .cmd = .WAIT, .private = true }, expect, tsp);
    return switch (linux.errno(rc)) {
        .SUCCESS => .woken,
        .AGAIN => .not_equal,
        .TIMEDOUT => .timed_out,
        else => .woken, // EINTR and friends: the caller re-checks anyway
    };
}

/// Wake up to `n` threads blocked in futexWait on `ptr`.
pub fn futexWake(ptr: *const u32, n: u32) void {
    if (!threaded) return;
    if (is_wasm) {
        _ = asm volatile (
            \\local.get %[ptr]
            \\local.get %[n]
            \\memory.atomic.notify 0
            \\local.set %[ret]
            : [ret] "=r" (-> u32),
            : [ptr] "r" (ptr),
              [n] "r" (n),
        );
        return;
    }
    const linux = std.os.linux;
    _ = linux.futex_3arg(ptr, .{ .cmd = .WAKE, .private = true }, @min(n, std.math.maxInt(i32)));
}

pub inline fn spinHint() void {
    std.atomic.spinLoopHint();
}

var spin_sink: u32 = 0;

/// One idle round between searches for work: a short pause (about a microsecond), and
/// natively a yield so that oversubscribed test runs make progress. Wasm has neither a pause
/// instruction nor a yield, so there the pause is a run of atomic loads the compiler cannot
/// drop.
pub fn idlePause() void {
    if (is_wasm) {
        for (0..256) |_| _ = @atomicLoad(u32, &spin_sink, .monotonic);
        return;
    }
    for (0..32) |_| std.atomic.spinLoopHint();
    if (threaded) std.Thread.yield() catch {};
}

// ---- memory --------------------------------------------------------------------------------

extern var __heap_base: u8;

/// Native stand-in for linear memory: one large reservation handed out page by page, so the
/// allocator above sees the same "grow at the end" behaviour as wasm memory.grow.
const native_reserve: usize = 8 << 30;
var native_base: usize = 0;
var native_pages: usize = 0;
/// Native cap in pages, settable by tests to exercise out-of-memory paths.
pub var native_max_pages: usize = native_reserve / page_size;

/// Grow memory by `pages` pages; returns the address of the first new byte, or null when the
/// maximum is reached. Called with the allocator lock held.
pub fn growPages(pages: usize) ?usize {
    if (is_wasm) {
        const old = @wasmMemoryGrow(0, pages);
        if (old < 0) return null;
        return @as(usize, @intCast(old)) * page_size;
    }
    if (native_base == 0) {
        const linux = std.os.linux;
        const rc = linux.mmap(null, native_reserve, .{ .READ = true, .WRITE = true }, .{
            .TYPE = .PRIVATE,
            .ANONYMOUS = true,
            .NORESERVE = true,
        }, -1, 0);
        if (linux.errno(rc) != .SUCCESS) return null;
        native_base = std.mem.alignForward(usize, rc, page_size);
        native_max_pages = @min(native_max_pages, native_reserve / page_size - 1);
    }
    if (pages > native_max_pages - native_pages) return null;
    const addr = native_base + native_pages * page_size;
    native_pages += pages;
    return addr;
}

/// One past the last usable byte of memory right now.
pub fn memoryTop() usize {
    if (is_wasm) return @as(usize, @wasmMemorySize(0)) * page_size;
    return native_base + native_pages * page_size;
}

/// First address the allocator may hand out.
pub fn memoryBase() usize {
    return if (is_wasm) 0 else native_base;
}

pub fn memoryTopPages() usize {
    if (is_wasm) return @wasmMemorySize(0);
    return native_pages;
}

/// Memory between the end of static data/stack and the end of the initial memory: the
/// allocator's first free run, so the initial 4 MiB are not wasted. Empty natively.
pub fn initialFreeRegion() struct { start: usize, len: usize } {
    if (!is_wasm) return .{ .start = 0, .len = 0 };
    const start = std.mem.alignForward(usize, @intFromPtr(&__heap_base), page_size);
    const end = @as(usize, @wasmMemorySize(0)) * page_size;
    if (end <= start) return .{ .start = 0, .len = 0 };
    return .{ .start = start, .len = end - start };
}

// ---- host ----------------------------------------------------------------------------------

extern "env" fn host_poll() i32;

/// Native stand-in for env.host_poll (tests set it).
pub var native_host_poll: ?*const fn () i32 = null;

pub fn hostPoll() i32 {
    if (is_wasm) return host_poll();
    if (native_host_poll) |f| return f();
    return 0;
}
