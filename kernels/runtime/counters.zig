//! The counters block of kernels/ABI.md: a fixed layout in memory that hosts read at any time
//! without calling into the module. Per-thread records sit on their own 64-byte lines so
//! counting does not make threads contend.
const std = @import("std");
const platform = @import("platform.zig");

pub const magic: u32 = 0x4A52504C;
pub const abi_version: u32 = 1;
pub const max_threads: u32 = if (platform.threaded) 64 else 1;

pub const State = enum(u32) { absent = 0, sleeping = 1, working = 2 };

pub const ThreadRecord = extern struct {
    state: u32 = @intFromEnum(State.absent),
    reserved: u32 = 0,
    tasks: u64 = 0,
    steals: u64 = 0,
    pad: [40]u8 = @splat(0),
};

pub const Block = extern struct {
    magic: u32 = magic,
    abi: u32 = abi_version,
    threads: u32 = 1,
    busy: u32 = 0,
    cancel: u32 = 0,
    max_threads: u32 = max_threads,
    threaded: u32 = @intFromBool(platform.threaded),
    in_call: u32 = 0,
    bytes_in_use: u64 = 0,
    runtime_bytes: u64 = 0,
    calls: u64 = 0,
    reserved: u64 = 0,
    // Record 0 is the caller: present from the start, sleeping between calls.
    per_thread: [max_threads]ThreadRecord = records: {
        var r: [max_threads]ThreadRecord = @splat(.{});
        r[0].state = @intFromEnum(State.sleeping);
        break :records r;
    },
};

comptime {
    std.debug.assert(@sizeOf(ThreadRecord) == 64);
    std.debug.assert(@offsetOf(Block, "bytes_in_use") == 32);
    std.debug.assert(@offsetOf(Block, "calls") == 48);
    std.debug.assert(@offsetOf(Block, "per_thread") == 64);
}

/// The one block of this instance; `jr_counters` returns its address.
pub var block: Block align(64) = .{};

// Host-visible fields are written with atomic stores (the host reads them concurrently);
// 64-bit fields are updated with atomic RMW so that readers never see torn values.

pub fn load32(p: *const u32) u32 {
    return @atomicLoad(u32, p, .acquire);
}

pub fn store32(p: *u32, v: u32) void {
    @atomicStore(u32, p, v, .release);
}

pub fn add64(p: *u64, v: u64) void {
    _ = Atomic64.rmw(p, .Add, v);
}

pub fn sub64(p: *u64, v: u64) void {
    _ = Atomic64.rmw(p, .Sub, v);
}

pub fn load64(p: *const u64) u64 {
    return Atomic64.load(p);
}

/// 64-bit atomics. Zig 0.17 refuses 64-bit atomic builtins on wasm32 although wasm has them,
/// so the threaded wasm build spells them in assembly; the single-threaded build needs none.
pub const Atomic64 = struct {
    const wasm_mt = platform.is_wasm and platform.threaded;
    const Op = enum { Add, Sub };

    pub fn load(p: *const u64) u64 {
        if (!platform.is_wasm) return @atomicLoad(u64, p, .acquire);
        if (!wasm_mt) return p.*;
        return asm volatile (
            \\local.get %[p]
            \\i64.atomic.load 0
            \\local.set %[ret]
            : [ret] "=r" (-> u64),
            : [p] "r" (p),
        );
    }

    pub fn store(p: *u64, v: u64) void {
        if (!platform.is_wasm) return @atomicStore(u64, p, v, .release);
        if (!wasm_mt) {
            p.* = v;
            return;
        }
        asm volatile (
            \\local.get %[p]
            \\local.get %[v]
            \\i64.atomic.store 0
            :
            : [p] "r" (p),
              [v] "r" (v),
            : .{ .memory = true });
    }

    /// Returns the old value.
    pub fn rmw(p: *u64, comptime op: Op, v: u64) u64 {
        if (!platform.is_wasm) return @atomicRmw(u64, p, if (op == .Add) .Add else .Sub, v, .monotonic);
        if (!wasm_mt) {
            const old = p.*;
            p.* = if (op == .Add) old +% v else old -% v;
            return old;
        }
        return switch (op) {
            .Add => asm volatile (
                \\local.get %[p]
                \\local.get %[v]
                \\i64.atomic.rmw.add 0
                \\local.set %[ret]
                : [ret] "=r" (-> u64),
                : [p] "r" (p),
                  [v] "r" (v),
                : .{ .memory = true }),
            .Sub => asm volatile (
                \\local.get %[p]
                \\local.get %[v]
                \\i64.atomic.rmw.sub 0
                \\local.set %[ret]
                : [ret] "=r" (-> u64),
                : [p] "r" (p),
                  [v] "r" (v),
                : .{ .memory = true }),
        };
    }
};

pub fn setState(index: usize, s: State) void {
    store32(&block.per_thread[index].state, @intFromEnum(s));
}

// Only thread `index` writes its record, so a load and a store suffice (no locked RMW).

pub fn countTask(index: usize) u64 {
    const p = &block.per_thread[index].tasks;
    const v = Atomic64.load(p) + 1;
    Atomic64.store(p, v);
    return v;
}

pub fn countSteal(index: usize) void {
    const p = &block.per_thread[index].steals;
    Atomic64.store(p, Atomic64.load(p) + 1);
}

pub fn cancelRequested() bool {
    return @atomicLoad(u32, &block.cancel, .monotonic) != 0;
}

pub fn requestCancel() void {
    @atomicStore(u32, &block.cancel, 1, .release);
}
