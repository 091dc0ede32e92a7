//! The registry of jitted modules (kernels/ABI.md, "Jitted modules") and the check every pool
//! thread makes before it runs jitted code: wasm tables are per instance, and a helper parked
//! in memory.atomic.wait32 reads no messages, so each thread loads the modules it lacks itself
//! (env.host_load_modules) when its table is shorter than the registry's table_end.
const std = @import("std");
const platform = @import("platform.zig");
const counters = @import("counters.zig");
const registry = @import("registry.zig");
const abi = @import("abi.zig");

pub const max_modules = abi.JIT_MAX_MODULES;

/// One registered module. usize is u32 on wasm32, the layout hosts read.
pub const Entry = extern struct {
    ptr: usize,
    len: usize,
    table_base: usize,
    nfuncs: usize,
};

/// All zeros at start, so the 64 KiB of entries cost nothing in the data segment.
pub const Registry = extern struct {
    count: u32 = 0,
    table_end: u32 = 0,
    table_start: u32 = 0,
    lock: u32 = 0,
    entries: [max_modules]Entry = @splat(.{ .ptr = 0, .len = 0, .table_base = 0, .nfuncs = 0 }),
};

comptime {
    if (platform.is_wasm) {
        std.debug.assert(@offsetOf(Registry, "entries") == 16);
        std.debug.assert(@sizeOf(Entry) == 16);
    }
}

pub var reg: Registry align(16) = .{};

// ---- the instance's table ----------------------------------------------------------------

/// Native stand-in for this thread's table size (each native thread plays one instance).
threadlocal var native_table: u32 = 1;
/// Native stand-in for env.host_load_modules (tests set it); null: load by growing the table.
pub var native_load: ?*const fn () i32 = null;

/// Slots in this instance's __indirect_function_table now.
pub fn tableSize() u32 {
    if (platform.is_wasm) {
        return asm volatile (
            \\ table.size __indirect_function_table
            \\ local.set %[ret]
            : [ret] "=r" (-> u32),
        );
    }
    return native_table;
}

extern "env" fn host_load_modules() i32;

fn hostLoad() i32 {
    if (platform.is_wasm) return host_load_modules();
    if (native_load) |f| return f();
    native_table = @atomicLoad(u32, &reg.table_end, .acquire);
    return @intCast(@atomicLoad(u32, &reg.count, .acquire));
}

/// Native tests: pretend this thread's instance was just created (a fresh table).
pub fn nativeResetTable() void {
    native_table = if (reg.table_start == 0) 1 else reg.table_start;
}

/// Native stand-in hosts: record that this thread's instance now has `slots` table slots.
pub fn nativeSetTable(slots: u32) void {
    native_table = slots;
}

/// True when this thread's instance has every registered module, loading what it lacks
/// first; false when the host could not load one.
pub fn ensureLoaded() bool {
    const want = @atomicLoad(u32, &reg.table_end, .acquire);
    if (tableSize() >= want) return true;
    const have = hostLoad();
    if (have < 0) return false;
    if (registry.currentWorker()) |w| {
        counters.store32(&counters.block.per_thread[w.index].jit_modules, @intCast(have));
    }
    return tableSize() >= want;
}

// ---- registering -------------------------------------------------------------------------

fn lock() void {
    if (!platform.threaded) return;
    while (@cmpxchgWeak(u32, &reg.lock, 0, 1, .acquire, .monotonic) != null) platform.spinHint();
}

fn unlock() void {
    if (!platform.threaded) return;
    @atomicStore(u32, &reg.lock, 0, .release);
}

pub const AddError = error{ Invalid, Full };

/// Register module bytes at [ptr, ptr + len) with `nfuncs` slots; returns its table_base.
pub fn add(ptr: usize, len: usize, nfuncs: u32) AddError!u32 {
    if (nfuncs == 0 or len == 0) return error.Invalid;
    lock();
    defer unlock();
    const i = reg.count;
    if (i >= max_modules) return error.Full;
    if (i == 0) {
        // Every instance starts with the pool's own slots; nothing has grown a table before
        // the first module is registered.
        reg.table_start = tableSize();
        reg.table_end = reg.table_start;
    }
    const base = reg.table_end;
    const end = std.math.add(u32, base, nfuncs) catch return error.Invalid;
    reg.entries[i] = .{ .ptr = ptr, .len = len, .table_base = base, .nfuncs = nfuncs };
    // Entry first, then the count and the end that make it visible.
    @atomicStore(u32, &reg.count, i + 1, .release);
    @atomicStore(u32, &reg.table_end, end, .release);
    return base;
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;

/// Tests start from an empty registry and a fresh table on the calling thread.
pub fn resetForTest() void {
    reg.count = 0;
    reg.table_end = 0;
    reg.table_start = 0;
    native_table = 1;
    native_load = null;
}

test "modules: bases follow each other from the fresh table's size; the registry is bounded" {
    resetForTest();
    defer resetForTest();
    try testing.expectEqual(@as(u32, 1), try add(4096, 100, 3));
    try testing.expectEqual(@as(u32, 4), try add(8192, 10, 1));
    try testing.expectEqual(@as(u32, 2), reg.count);
    try testing.expectEqual(@as(u32, 5), reg.table_end);
    try testing.expectEqual(@as(usize, 4), reg.entries[1].table_base);
    try testing.expectError(error.Invalid, add(1, 1, 0));
    try testing.expectError(error.Invalid, add(1, 0, 1));
    reg.count = max_modules;
    try testing.expectError(error.Full, add(1, 1, 1));
}

var loads: u32 = 0;

fn countingLoad() i32 {
    _ = @atomicRmw(u32, &loads, .Add, 1, .monotonic);
    native_table = @atomicLoad(u32, &reg.table_end, .acquire);
    return @intCast(@atomicLoad(u32, &reg.count, .acquire));
}

fn failingLoad() i32 {
    return -1;
}

test "modules: a thread loads once per new module, and not at all when it is up to date" {
    resetForTest();
    defer resetForTest();
    loads = 0;
    native_load = countingLoad;
    try testing.expect(ensureLoaded()); // nothing registered: nothing to load
    try testing.expectEqual(@as(u32, 0), loads);
    _ = try add(16, 16, 2);
    try testing.expect(ensureLoaded());
    try testing.expect(ensureLoaded());
    try testing.expectEqual(@as(u32, 1), loads);
    _ = try add(32, 16, 5);
    try testing.expect(ensureLoaded());
    try testing.expectEqual(@as(u32, 2), loads);
    nativeResetTable(); // a new instance (a new thread, or one that replaced a trapped one)
    try testing.expect(ensureLoaded());
    try testing.expectEqual(@as(u32, 3), loads);
    nativeResetTable();
    native_load = failingLoad;
    try testing.expect(!ensureLoaded());
}
