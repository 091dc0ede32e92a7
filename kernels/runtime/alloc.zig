//! Thread-safe allocator over memory.grow (wasm) or a reserved region (native).
//!
//! Small requests (block <= 32 KiB including the header) come from power-of-two size classes
//! carved out of 64 KiB slabs; freed blocks go back to their class's free list. Larger
//! requests take whole 64 KiB pages from an address-ordered free list of runs that splits on
//! allocation and coalesces with both neighbours on free, and that grows memory only when no
//! run fits. Repeated alloc/free cycles therefore keep the memory size flat.
//!
//! Every block has a 16-byte header just before the returned pointer, so `free` needs only the
//! pointer (jr_free has no size argument). `bytes_in_use` counts block sizes exactly and is
//! back to its starting value once everything is freed.
const std = @import("std");
const platform = @import("platform.zig");
const counters = @import("counters.zig");

const page = platform.page_size;
const header_size: usize = 16;
const min_block_shift = 5; // 32-byte blocks: a 16-byte header + 16 usable bytes
const class_count = 11; // 32 B .. 32 KiB
const max_small_block: usize = @as(usize, 1) << (min_block_shift + class_count - 1);
const large_bit: u32 = 0x8000_0000;
const live_magic: u32 = 0x4A52_4131;
const dead_magic: u32 = 0x4A52_4130;

const Header = extern struct {
    block_start: usize,
    info: u32, // size class index, or large_bit | page count
    magic: u32,
};
comptime {
    std.debug.assert(@sizeOf(Header) <= header_size);
}

const FreeBlock = struct { next: ?*FreeBlock };

const Run = struct {
    pages: usize,
    next: ?*Run,
};

var lock_word: u32 = 0;
var small_free: [class_count]?*FreeBlock = @splat(null);
var free_runs: ?*Run = null; // address-ordered free page runs
var seeded = false;

fn lock() void {
    if (!platform.threaded) return;
    while (@cmpxchgWeak(u32, &lock_word, 0, 1, .acquire, .monotonic) != null) {
        while (@atomicLoad(u32, &lock_word, .monotonic) != 0) platform.spinHint();
    }
}

fn unlock() void {
    if (!platform.threaded) return;
    @atomicStore(u32, &lock_word, 0, .release);
}

fn seedFreeRuns() void {
    seeded = true;
    const region = platform.initialFreeRegion();
    if (region.len >= page) freeRunLocked(region.start, region.len / page);
}

/// Take `pages` contiguous pages; grows memory when no free run fits.
fn takePagesLocked(pages: usize) ?usize {
    if (!seeded) seedFreeRuns();
    var prev: ?*Run = null;
    var cur = free_runs;
    var last: ?*Run = null;
    var last_prev: ?*Run = null;
    while (cur) |r| : ({
        prev = r;
        cur = r.next;
    }) {
        if (r.pages >= pages) return carveLocked(prev, r, pages);
        last_prev = prev;
        last = r;
    }
    // No run is large enough. If the highest run ends where memory ends, grow only the
    // difference and extend that run; otherwise grow by the full amount.
    if (last) |r| {
        const end = @intFromPtr(r) + r.pages * page;
        if (end == platform.memoryTop()) {
            const need = pages - r.pages;
            _ = platform.growPages(need) orelse return null;
            r.pages += need;
            return carveLocked(last_prev, r, pages);
        }
    }
    return platform.growPages(pages);
}

/// Split `pages` off the end of run `r` (so the run's node stays in place), or unlink it when
/// it is used whole.
fn carveLocked(prev: ?*Run, r: *Run, pages: usize) usize {
    const start = @intFromPtr(r);
    if (r.pages == pages) {
        if (prev) |p| p.next = r.next else free_runs = r.next;
        return start;
    }
    r.pages -= pages;
    return start + r.pages * page;
}

/// Return a run of pages, merging with the neighbouring free runs.
fn freeRunLocked(addr: usize, pages: usize) void {
    var prev: ?*Run = null;
    var cur = free_runs;
    while (cur) |r| {
        if (@intFromPtr(r) > addr) break;
        prev = r;
        cur = r.next;
    }
    var node: *Run = @ptrFromInt(addr);
    node.* = .{ .pages = pages, .next = cur };
    if (prev) |p| {
        if (@intFromPtr(p) + p.pages * page == addr) {
            p.pages += pages;
            node = p;
        } else {
            p.next = node;
        }
    } else {
        free_runs = node;
    }
    if (cur) |n| {
        if (@intFromPtr(node) + node.pages * page == @intFromPtr(n)) {
            node.pages += n.pages;
            node.next = n.next;
        }
    }
}

fn classFor(block: usize) usize {
    const shift = std.math.log2_int_ceil(usize, @max(block, @as(usize, 1) << min_block_shift));
    return shift - min_block_shift;
}

fn takeSmallLocked(class: usize) ?usize {
    if (small_free[class] == null) {
        // Carve a fresh slab into blocks of this class. Slabs are page aligned, so every block
        // is aligned to its own size.
        const slab = takePagesLocked(1) orelse return null;
        const size = @as(usize, 1) << @intCast(class + min_block_shift);
        var off: usize = page;
        while (off >= size) {
            off -= size;
            const b: *FreeBlock = @ptrFromInt(slab + off);
            b.next = small_free[class];
            small_free[class] = b;
        }
    }
    const b = small_free[class].?;
    small_free[class] = b.next;
    return @intFromPtr(b);
}

/// Allocate `n` bytes aligned to `alignment` (a power of two, at most a page). Returns null
/// when memory cannot grow. Counted in bytes_in_use.
pub fn allocBytes(n: usize, alignment: usize, zero: bool) ?[*]u8 {
    std.debug.assert(std.math.isPowerOfTwo(alignment) and alignment <= page);
    const slack = if (alignment > header_size) alignment - header_size else 0;
    const need = std.math.add(usize, n, header_size + slack) catch return null;
    var block_start: usize = undefined;
    var block_bytes: usize = undefined;
    var info: u32 = undefined;
    lock();
    if (need <= max_small_block) {
        const class = classFor(need);
        block_start = takeSmallLocked(class) orelse {
            unlock();
            return null;
        };
        block_bytes = @as(usize, 1) << @intCast(class + min_block_shift);
        info = @intCast(class);
    } else {
        const pages = std.math.divCeil(usize, need, page) catch unreachable;
        if (pages >= large_bit) {
            unlock();
            return null;
        }
        block_start = takePagesLocked(pages) orelse {
            unlock();
            return null;
        };
        block_bytes = pages * page;
        info = large_bit | @as(u32, @intCast(pages));
    }
    counters.add64(&counters.block.bytes_in_use, block_bytes);
    unlock();
    const user = std.mem.alignForward(usize, block_start + header_size, @max(alignment, 16));
    const h: *Header = @ptrFromInt(user - header_size);
    h.* = .{ .block_start = block_start, .info = info, .magic = live_magic };
    const p: [*]u8 = @ptrFromInt(user);
    if (zero) @memset(p[0..n], 0);
    return p;
}

fn blockBytes(info: u32) usize {
    if (info & large_bit != 0) return @as(usize, info & ~large_bit) * page;
    return @as(usize, 1) << @intCast(info + min_block_shift);
}

/// Usable bytes from `p` to the end of its block (for in-place resize).
fn capacity(p: [*]u8) usize {
    const h: *Header = @ptrFromInt(@intFromPtr(p) - header_size);
    return h.block_start + blockBytes(h.info) - @intFromPtr(p);
}

/// Free a block from allocBytes. Pointers that do not carry a live header (double free, a
/// pointer that never came from here) are ignored rather than corrupting the free lists.
pub fn freeBytes(p: [*]u8) void {
    const addr = @intFromPtr(p);
    if (addr % 16 != 0 or addr < platform.memoryBase() + header_size or addr >= platform.memoryTop()) return;
    const h: *Header = @ptrFromInt(addr - header_size);
    if (h.magic != live_magic) return;
    const info = h.info;
    const start = h.block_start;
    const large = info & large_bit != 0;
    if (start > addr or (!large and info >= class_count)) return;
    h.magic = dead_magic;
    const bytes = blockBytes(info);
    lock();
    if (large) {
        freeRunLocked(start, info & ~large_bit);
    } else {
        const b: *FreeBlock = @ptrFromInt(start);
        b.next = small_free[info];
        small_free[info] = b;
    }
    counters.sub64(&counters.block.bytes_in_use, bytes);
    unlock();
}

/// Pages for the runtime itself (thread stacks): never freed, counted in runtime_bytes.
pub fn allocRuntimePages(pages: usize) ?usize {
    lock();
    defer unlock();
    const addr = takePagesLocked(pages) orelse return null;
    counters.add64(&counters.block.runtime_bytes, pages * page);
    return addr;
}

/// Free runs and the pages they hold (for tests of coalescing).
pub fn freeRunStats() struct { runs: usize, pages: usize } {
    lock();
    defer unlock();
    var n: usize = 0;
    var p: usize = 0;
    var cur = free_runs;
    while (cur) |r| : (cur = r.next) {
        n += 1;
        p += r.pages;
    }
    return .{ .runs = n, .pages = p };
}

fn vAlloc(_: *anyopaque, len: usize, alignment: std.mem.Alignment, _: usize) ?[*]u8 {
    return allocBytes(len, alignment.toByteUnits(), false);
}

fn vResize(_: *anyopaque, memory: []u8, _: std.mem.Alignment, new_len: usize, _: usize) bool {
    return new_len <= capacity(memory.ptr);
}

fn vRemap(_: *anyopaque, memory: []u8, _: std.mem.Alignment, new_len: usize, _: usize) ?[*]u8 {
    return if (new_len <= capacity(memory.ptr)) memory.ptr else null;
}

fn vFree(_: *anyopaque, memory: []u8, _: std.mem.Alignment, _: usize) void {
    freeBytes(memory.ptr);
}

pub const allocator: std.mem.Allocator = .{ .ptr = undefined, .vtable = &.{
    .alloc = vAlloc,
    .resize = vResize,
    .remap = vRemap,
    .free = vFree,
} };

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;

fn inUse() u64 {
    return counters.load64(&counters.block.bytes_in_use);
}

/// Sizes around every boundary: the header, each size class, the small/large switch, pages.
const edge_sizes = [_]usize{
    0,     1,     15,    16,    17,    31,     32,     48,     100,     1000,       2032,
    2048,  4079,  4080,  4081,  16367, 32751,  32752,  32753,  65519,   65520,      65521,
    65536, 99991, 131071, 131072, 131073, 1 << 20, (1 << 20) + 3, 3 << 20,
};

test "alloc: sizes around every boundary, 16-byte aligned, disjoint, bytes_in_use exact" {
    const start = inUse();
    var ptrs: [edge_sizes.len][*]u8 = undefined;
    var expected: u64 = start;
    for (edge_sizes, 0..) |n, i| {
        ptrs[i] = allocBytes(n, 16, false).?;
        try testing.expectEqual(@as(usize, 0), @intFromPtr(ptrs[i]) % 16);
        @memset(ptrs[i][0..n], @truncate(i + 1));
        // The counted size is the block: at least n plus the header, rounded up.
        const h: *Header = @ptrFromInt(@intFromPtr(ptrs[i]) - header_size);
        const block = blockBytes(h.info);
        try testing.expect(block >= n + header_size);
        if (h.info & large_bit != 0) {
            try testing.expectEqual(std.math.divCeil(usize, n + header_size, page) catch unreachable, block / page);
        } else {
            try testing.expect(block < 2 * @max(n + header_size, 32));
        }
        expected += block;
        try testing.expectEqual(expected, inUse());
    }
    // Nobody overwrote anybody: each block still holds its own byte.
    for (edge_sizes, 0..) |n, i| {
        for (ptrs[i][0..n]) |b| try testing.expectEqual(@as(u8, @truncate(i + 1)), b);
    }
    // Free in an order that is neither LIFO nor FIFO.
    var i: usize = 0;
    while (i < edge_sizes.len) : (i += 2) freeBytes(ptrs[i]);
    i = 1;
    while (i < edge_sizes.len) : (i += 2) freeBytes(ptrs[i]);
    try testing.expectEqual(start, inUse());
}

test "alloc: zero-fill, alignment up to a page, double free and foreign pointers ignored" {
    const start = inUse();
    const a = allocBytes(5000, 16, false).?;
    @memset(a[0..5000], 0xAB);
    freeBytes(a);
    const b = allocBytes(5000, 16, true).?;
    for (b[0..5000]) |x| try testing.expectEqual(@as(u8, 0), x);
    freeBytes(b);
    freeBytes(b); // double free: ignored
    try testing.expectEqual(start, inUse());
    var local: [64]u8 align(16) = @splat(0);
    freeBytes(@ptrCast(&local[16])); // not ours: ignored
    freeBytes(@ptrFromInt(16)); // outside memory: ignored
    for ([_]usize{ 32, 64, 256, 4096, page }) |al| {
        for ([_]usize{ 1, 100, 40000 }) |n| {
            const p = allocBytes(n, al, true).?;
            try testing.expectEqual(@as(usize, 0), @intFromPtr(p) % al);
            @memset(p[0..n], 1);
            freeBytes(p);
        }
    }
    try testing.expectEqual(start, inUse());
    // std.mem.Allocator interface, including in-place growth within a block.
    var list: std.ArrayList(u32) = .empty;
    defer list.deinit(allocator);
    for (0..100_000) |k| try list.append(allocator, @intCast(k));
    for (list.items, 0..) |v, k| try testing.expectEqual(@as(u32, @intCast(k)), v);
    list.deinit(allocator);
    list = .empty;
    try testing.expectEqual(start, inUse());
}

test "alloc: large blocks coalesce, repeated cycles keep memory flat" {
    const start = inUse();
    // Warm up once so that memory holds what one cycle needs.
    const sizes = [_]usize{ 3 * page, 70_000, 10 * page + 1, 200_000, 5 * page };
    var ptrs: [sizes.len][*]u8 = undefined;
    for (sizes, 0..) |n, i| ptrs[i] = allocBytes(n, 16, false).?;
    for (ptrs) |p| freeBytes(p);
    const top = platform.memoryTop();
    const runs_after_warmup = freeRunStats();
    for (0..200) |cycle| {
        for (sizes, 0..) |n, i| ptrs[i] = allocBytes(n + cycle, 16, false).?;
        // Free middle blocks first so that coalescing has to join on both sides.
        const order = [_]usize{ 2, 0, 4, 1, 3 };
        for (order) |k| freeBytes(ptrs[k]);
    }
    try testing.expectEqual(top, platform.memoryTop());
    try testing.expectEqual(start, inUse());
    // Every page freed went back into the same runs.
    const stats = freeRunStats();
    try testing.expectEqual(runs_after_warmup.pages, stats.pages);
    try testing.expect(stats.runs <= runs_after_warmup.runs);
    // One block as large as all free pages together fits without growing: they merged.
    const whole = allocBytes(stats.pages * page - header_size, 16, false).?;
    try testing.expectEqual(top, platform.memoryTop());
    freeBytes(whole);
}

test "alloc: out of memory returns null and the allocator keeps working" {
    const start = inUse();
    try testing.expect(allocBytes(std.math.maxInt(usize) - 8, 16, false) == null);
    try testing.expect(allocBytes(std.math.maxInt(usize) / 2, 16, false) == null);
    const saved = platform.native_max_pages;
    platform.native_max_pages = platform.memoryTopPages() + 2;
    defer platform.native_max_pages = saved;
    // More than all free runs hold together, so it must grow, and growth is capped.
    const too_big = (freeRunStats().pages + 3) * page;
    try testing.expect(allocBytes(too_big, 16, false) == null);
    try testing.expectEqual(start, inUse());
    const p = allocBytes(1000, 16, true).?;
    freeBytes(p);
    try testing.expectEqual(start, inUse());
}

test "alloc: concurrent alloc/free from many threads, contents intact, bytes_in_use exact" {
    const start = inUse();
    const Worker = struct {
        fn run(seed: u64, failures: *u32) void {
            var rng = std.Random.DefaultPrng.init(seed);
            const r = rng.random();
            var live: [64]?[]u8 = @splat(null);
            for (0..20_000) |_| {
                const k = r.uintLessThan(usize, live.len);
                if (live[k]) |blk| {
                    const tag: u8 = @truncate(@intFromPtr(blk.ptr) >> 4);
                    for (blk) |b| {
                        if (b != tag) _ = @atomicRmw(u32, failures, .Add, 1, .monotonic);
                    }
                    freeBytes(blk.ptr);
                    live[k] = null;
                } else {
                    // Mostly small, sometimes large.
                    const n = if (r.uintLessThan(u32, 16) == 0) r.uintLessThan(usize, 300_000) else r.uintLessThan(usize, 3000);
                    const p = allocBytes(n, 16, false) orelse {
                        _ = @atomicRmw(u32, failures, .Add, 1, .monotonic);
                        continue;
                    };
                    @memset(p[0..n], @truncate(@intFromPtr(p) >> 4));
                    live[k] = p[0..n];
                }
            }
            for (live) |l| if (l) |blk| freeBytes(blk.ptr);
        }
    };
    var failures: u32 = 0;
    var threads: [6]std.Thread = undefined;
    for (&threads, 0..) |*t, i| t.* = try std.Thread.spawn(.{}, Worker.run, .{ i + 1, &failures });
    for (threads) |t| t.join();
    try testing.expectEqual(@as(u32, 0), failures);
    try testing.expectEqual(start, inUse());
}
