//! The counters block of kernels/ABI.md: a fixed layout in memory that hosts read at any time
//! without calling into the module. Per-thread records sit on their own 64-byte lines so
//! counting does not make threads contend. The constants and every field offset come from the
//! generated abi.zig; the comptime checks below fail the build when the structs drift from it.
const std = @import("std");
const platform = @import("platform.zig");
const abi = @import("abi.zig");

pub const magic: u32 = abi.COUNTERS_MAGIC;
pub const abi_version: u32 = abi.ABI_VERSION;
pub const max_threads: u32 = if (platform.threaded) abi.MAX_THREADS else 1;

pub const State = enum(u32) {
    absent = abi.STATE_ABSENT,
    sleeping = abi.STATE_SLEEPING,
    working = abi.STATE_WORKING,
};

pub const ThreadRecord = extern struct {
    state: u32 = @backingInt(State.absent),
    /// Jitted modules this thread's instance has loaded (runtime/modules.zig).
    jit_modules: u32 = 0,
    tasks: u64 = 0,
    steals: u64 = 0,
    /// Not part of the contract: fills the record to its own 64-byte line.
    pad: [40]u8 = @splat(0),
};

pub const Block = extern struct {
    magic: u32 = magic,
    abi_version: u32 = abi_version,
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
        r[0].state = @backingInt(State.sleeping);
        break :records r;
    },
};

/// Comptime only. Null when every field of `S` (except the names in `extra`) sits at the offset `Offsets`
/// (abi.zig's header_offset / record_offset) gives it and every offset names a field; else
/// the first mismatch, for the compile error.
pub fn layoutMismatch(comptime S: type, comptime Offsets: type, comptime extra: []const []const u8) ?[]const u8 {
    for (std.meta.declarations(Offsets)) |name| {
        if (!@hasField(S, name)) return "abi.zig names a field the struct lacks: " ++ name;
        if (@offsetOf(S, name) != @field(Offsets, name)) return "field at the wrong offset: " ++ name;
    }
    fields: for (@typeInfo(S).@"struct".field_names) |name| {
        for (extra) |e| if (std.mem.eql(u8, e, name)) continue :fields;
        if (!@hasDecl(Offsets, name)) return "field not in kernels/ABI.md: " ++ name;
    }
    return null;
}

comptime {
    if (layoutMismatch(Block, abi.header_offset, &.{"per_thread"})) |m| @compileError("counters.Block: " ++ m);
    if (layoutMismatch(ThreadRecord, abi.record_offset, &.{"pad"})) |m| @compileError("counters.ThreadRecord: " ++ m);
    std.debug.assert(@offsetOf(Block, "per_thread") == abi.THREAD_RECORDS_OFFSET);
    std.debug.assert(@sizeOf(ThreadRecord) == abi.THREAD_RECORD_BYTES);
    std.debug.assert(@sizeOf(Block) == abi.THREAD_RECORDS_OFFSET + max_threads * abi.THREAD_RECORD_BYTES);
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
    store32(&block.per_thread[index].state, @backingInt(s));
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

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;

fn u32At(addr: usize) u32 {
    return @as(*const u32, @ptrFromInt(addr)).*;
}

test "counters: layout and constants of kernels/ABI.md" {
    const base = @intFromPtr(&block);
    try testing.expectEqual(@as(u32, 0x4A52504C), u32At(base));
    try testing.expectEqual(@as(u32, abi.ABI_VERSION), u32At(base + 4));
    try testing.expectEqual(@as(u32, 64), u32At(base + 20));
    try testing.expectEqual(@as(u32, 1), u32At(base + 24));
    try testing.expectEqual(@as(usize, 64 + 64 * 64), @sizeOf(Block));
    try testing.expectEqual(@as(usize, 0), base % 64);
}

test "counters: the block read at abi.zig's offsets holds what the runtime wrote" {
    const base = @intFromPtr(&block);
    const h = abi.header_offset;
    try testing.expectEqual(abi.COUNTERS_MAGIC, u32At(base + h.magic));
    try testing.expectEqual(abi.ABI_VERSION, u32At(base + h.abi_version));
    try testing.expectEqual(abi.MAX_THREADS, u32At(base + h.max_threads));
    try testing.expectEqual(@as(u32, @intFromBool(platform.threaded)), u32At(base + h.threaded));
    // Every 64-bit field and record field, written through the struct, read at its offset.
    const before = load64(&block.reserved);
    Atomic64.store(&block.reserved, 0x0102_0304_0506_0708);
    try testing.expectEqual(@as(u64, 0x0102_0304_0506_0708), @as(*const u64, @ptrFromInt(base + h.reserved)).*);
    Atomic64.store(&block.reserved, before);
    const last = max_threads - 1;
    const rec = base + abi.THREAD_RECORDS_OFFSET + last * abi.THREAD_RECORD_BYTES;
    const saved = block.per_thread[last];
    defer block.per_thread[last] = saved;
    block.per_thread[last] = .{ .state = abi.STATE_WORKING, .jit_modules = 7, .tasks = 11, .steals = 13 };
    try testing.expectEqual(abi.STATE_WORKING, u32At(rec + abi.record_offset.state));
    try testing.expectEqual(@as(u32, 7), u32At(rec + abi.record_offset.jit_modules));
    try testing.expectEqual(@as(u64, 11), @as(*const u64, @ptrFromInt(rec + abi.record_offset.tasks)).*);
    try testing.expectEqual(@as(u64, 13), @as(*const u64, @ptrFromInt(rec + abi.record_offset.steals)).*);
}

test "counters: the drift check catches a moved, missing or extra field" {
    try testing.expect(comptime layoutMismatch(Block, abi.header_offset, &.{"per_thread"}) == null);
    try testing.expect(comptime layoutMismatch(ThreadRecord, abi.record_offset, &.{"pad"}) == null);
    const Swapped = extern struct { state: u32, jit_modules: u32, steals: u64, tasks: u64 };
    try testing.expectEqualStrings("field at the wrong offset: tasks", comptime layoutMismatch(Swapped, abi.record_offset, &.{}).?);
    const Missing = extern struct { state: u32, jit_modules: u32, tasks: u64 };
    try testing.expectEqualStrings("abi.zig names a field the struct lacks: steals", comptime layoutMismatch(Missing, abi.record_offset, &.{}).?);
    const Extra = extern struct { state: u32, jit_modules: u32, tasks: u64, steals: u64, spare: u64 };
    try testing.expectEqualStrings("field not in kernels/ABI.md: spare", comptime layoutMismatch(Extra, abi.record_offset, &.{}).?);
}
