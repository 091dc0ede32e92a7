//! Thread-safe allocator over memory.grow (wasm) or a reserved region (native): two-level
//! segregated fit (TLSF) with boundary tags, under one lock.
//!
//! Every block starts with a 16-byte header, just before the returned pointer, holding its own
//! size and the size of the block physically before it. So `free` needs only the pointer
//! (jr_free has no size argument), and a freed block merges at once with free neighbours on
//! both sides: no two free blocks are ever adjacent, and memory freed as many small blocks
//! serves any later request, however large. Free blocks sit in segregated lists (a first level
//! per power of two, 16 subdivisions each, with bitmaps), so allocation and free are O(1) and
//! the block found is the smallest class that surely fits ("good fit"). Memory grows only when
//! no free block fits, and then only by what is missing when the heap's last block is free, so
//! repeated alloc/free cycles keep the memory size flat.
//!
//! Waste per block (the bound kernels/ABI.md states): a request of n bytes takes
//! max(32, round_up(n + 16, 16)) bytes, plus at most 16 more when the free rest of the block it
//! was cut from would be smaller than the 32-byte minimum: at most n + 47 bytes, for any n.
//! `bytes_in_use` counts block sizes exactly and is back to its starting value once everything
//! is freed.
//!
//! Memory is one or more segments (normally one: wasm memory grows at its end). A segment starts
//! with a 32-byte prologue block (in use forever; it links the segments for the checks) and ends
//! with a 16-byte sentinel header of size 0, so every block has a neighbour on both sides.
const std = @import("std");
const platform = @import("platform.zig");
const counters = @import("counters.zig");

const page = platform.page_size;
const granule: usize = 16;
const header_size: usize = 16;
/// Header plus room for the two free-list links.
const min_block: usize = 32;
/// The largest block: half of what a u32 count of granules can say (32 GiB), and half of the
/// address space (wasm32), so sizes and the sums below never overflow.
const max_block: usize = @intCast(@min(std.math.maxInt(usize) / 2, @as(u64, std.math.maxInt(u32)) * granule / 2));

const live_magic: u32 = 0x4A52_4131; // allocated by allocBytes: jr_free accepts it
const free_magic: u32 = 0x4A52_4130;
const runtime_magic: u32 = 0x4A52_4152; // thread stacks: never freed
const edge_magic: u32 = 0x4A52_4145; // segment prologue and sentinel

const Header = extern struct {
    /// Size of the block physically before this one, in granules.
    prev_size: u32,
    /// Size of this block, header included, in granules; 0 for a segment's sentinel.
    size: u32,
    magic: u32,
    reserved: u32 = 0,

    fn addr(h: *Header) usize {
        return @intFromPtr(h);
    }
    fn bytes(h: *const Header) usize {
        return @as(usize, h.size) * granule;
    }
    fn next(h: *Header) *Header {
        return @ptrFromInt(h.addr() + h.bytes());
    }
    fn prev(h: *Header) *Header {
        return @ptrFromInt(h.addr() - @as(usize, h.prev_size) * granule);
    }
    fn links(h: *Header) *Links {
        return @ptrFromInt(h.addr() + header_size);
    }
};
comptime {
    std.debug.assert(@sizeOf(Header) == header_size);
    std.debug.assert(header_size + @sizeOf(Links) <= min_block);
    // kernels/ABI.md: hosts read a live block's size at ptr - 12, in granules.
    std.debug.assert(header_size - @offsetOf(Header, "size") == 12 and granule == 16);
}

const Links = struct { next: ?*Header, prev: ?*Header };

// ---- segregated free lists -------------------------------------------------------------------

const sl_log2 = 4;
const sl_count = 1 << sl_log2;
/// Sizes below this (256 bytes) map linearly onto first-level class 0, one granule apart.
const small_limit: usize = @as(usize, 1) << (sl_log2 + 4);
const fl_shift = sl_log2 + 4 - 1;
const fl_count = 30; // covers blocks up to 2^37 bytes

var fl_bitmap: u32 = 0;
var sl_bitmap: [fl_count]u16 = @splat(0);
var heads: [fl_count][sl_count]?*Header = @splat(@splat(null));

const Class = struct { fl: usize, sl: usize };

/// The class a free block of `bytes` is filed under.
fn classOf(bytes: usize) Class {
    if (bytes < small_limit) return .{ .fl = 0, .sl = bytes / granule };
    const f = std.math.log2_int(usize, bytes);
    return .{ .fl = f - fl_shift, .sl = (bytes >> @intCast(f - sl_log2)) & (sl_count - 1) };
}

/// The first class whose every block holds `bytes` (null: larger than any class).
fn searchClass(bytes: usize) ?Class {
    var b = bytes;
    if (b >= small_limit) b += (@as(usize, 1) << @intCast(std.math.log2_int(usize, b) - sl_log2)) - 1;
    const cl = classOf(b);
    return if (cl.fl < fl_count) cl else null;
}

fn insertFree(h: *Header) void {
    h.magic = free_magic;
    const cl = classOf(h.bytes());
    const head = heads[cl.fl][cl.sl];
    h.links().* = .{ .next = head, .prev = null };
    if (head) |n| n.links().prev = h;
    heads[cl.fl][cl.sl] = h;
    fl_bitmap |= @as(u32, 1) << @intCast(cl.fl);
    sl_bitmap[cl.fl] |= @as(u16, 1) << @intCast(cl.sl);
}

fn removeFree(h: *Header) void {
    const cl = classOf(h.bytes());
    const l = h.links();
    if (l.prev) |p| p.links().next = l.next else heads[cl.fl][cl.sl] = l.next;
    if (l.next) |n| n.links().prev = l.prev;
    if (heads[cl.fl][cl.sl] == null) {
        sl_bitmap[cl.fl] &= ~(@as(u16, 1) << @intCast(cl.sl));
        if (sl_bitmap[cl.fl] == 0) fl_bitmap &= ~(@as(u32, 1) << @intCast(cl.fl));
    }
}

/// A free block of at least `bytes`, still in its list; null when none fits. Good fit: the
/// first non-empty class whose every block holds `bytes`; failing that, the first block of
/// `bytes`'s own class that is large enough (so free memory is never passed over for growth).
fn findFree(bytes: usize) ?*Header {
    if (searchClass(bytes)) |cl| {
        var fl = cl.fl;
        var sl_map: u32 = sl_bitmap[fl] & (~@as(u32, 0) << @intCast(cl.sl));
        if (sl_map == 0 and fl + 1 < fl_count) {
            fl = @ctz(fl_bitmap & (~@as(u32, 0) << @intCast(fl + 1)));
            if (fl < fl_count) sl_map = sl_bitmap[fl];
        }
        if (sl_map != 0) return heads[fl][@ctz(sl_map)];
    }
    const own = classOf(bytes);
    if (own.fl >= fl_count) return null;
    var cur = heads[own.fl][own.sl];
    while (cur) |h| : (cur = h.links().next) {
        if (h.bytes() >= bytes) return h;
    }
    return null;
}

// ---- blocks and segments ---------------------------------------------------------------------

var lock_word: u32 = 0;
var seeded = false;
/// Prologue of the first segment; each prologue's payload holds the next segment's address.
var first_segment: ?*Header = null;
/// Sentinel of the most recent segment: the one that can grow in place.
var top_sentinel: ?*Header = null;

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

fn granules(bytes: usize) u32 {
    return @intCast(bytes / granule);
}

/// Make [start, start + len) a segment: prologue, one free block (returned), sentinel.
fn addSegmentLocked(start: usize, len: usize) ?*Header {
    if (len < min_block + min_block + header_size) return null;
    const pro: *Header = @ptrFromInt(start);
    pro.* = .{ .prev_size = 0, .size = granules(min_block), .magic = edge_magic };
    @as(*?*Header, @ptrCast(@alignCast(pro.links()))).* = null;
    const end = start + len - header_size;
    const blk = pro.next();
    blk.* = .{ .prev_size = pro.size, .size = granules(end - blk.addr()), .magic = free_magic };
    const sentinel: *Header = @ptrFromInt(end);
    sentinel.* = .{ .prev_size = blk.size, .size = 0, .magic = edge_magic };
    insertFree(blk);
    // Link the segment in (address order does not matter to the checks).
    @as(*?*Header, @ptrCast(@alignCast(pro.links()))).* = first_segment;
    first_segment = pro;
    top_sentinel = sentinel;
    return blk;
}

fn seedLocked() void {
    seeded = true;
    const region = platform.initialFreeRegion();
    if (region.len > 0) _ = addSegmentLocked(region.start, region.len);
}

/// Grow memory so that a free block of at least `bytes` exists, and return it (in its list):
/// the top segment grows in place when memory ends right after it, merging with its last block
/// when that is free, so only what is missing is added.
fn growLocked(bytes: usize) ?*Header {
    if (top_sentinel) |s| {
        if (s.addr() + header_size == platform.memoryTop()) {
            const last = s.prev();
            const have: usize = if (last.magic == free_magic) last.bytes() else 0;
            const pages = @max(1, std.math.divCeil(usize, bytes - @min(bytes, have), page) catch unreachable);
            const got = platform.growPages(pages) orelse return null;
            if (got == s.addr() + header_size) {
                // The old sentinel becomes the header of the new free block.
                const blk = s;
                blk.* = .{ .prev_size = s.prev_size, .size = granules(pages * page), .magic = free_magic };
                const sentinel = blk.next();
                sentinel.* = .{ .prev_size = blk.size, .size = 0, .magic = edge_magic };
                top_sentinel = sentinel;
                const merged = releaseLocked(blk);
                if (merged.bytes() >= bytes) return merged;
            } else {
                // Someone else grew memory in between: what we got is a segment of its own.
                if (addSegmentLocked(got, pages * page)) |b| {
                    if (b.bytes() >= bytes) return b;
                }
            }
        }
    }
    const want = std.math.add(usize, bytes, min_block + header_size) catch return null;
    const pages = std.math.divCeil(usize, want, page) catch unreachable;
    const got = platform.growPages(pages) orelse return null;
    return addSegmentLocked(got, pages * page);
}

/// Put free block `h` (not in a list, neighbours' prev_size already right) into the lists,
/// merged with whichever neighbours are free; returns the merged block.
fn releaseLocked(h0: *Header) *Header {
    var h = h0;
    const n = h.next();
    if (n.magic == free_magic) {
        removeFree(n);
        h.size += n.size;
    }
    if (h.prev_size != 0) {
        const p = h.prev();
        if (p.magic == free_magic) {
            removeFree(p);
            p.size += h.size;
            h = p;
        }
    }
    h.next().prev_size = h.size;
    insertFree(h);
    return h;
}

/// Cut the first `bytes` off free block `h` (not in a list); the rest, when it is a block of
/// its own, goes back to the lists. Its right neighbour is in use (no two free blocks touch),
/// so the rest needs no merging.
fn splitLocked(h: *Header, bytes: usize) void {
    const rest = h.bytes() - bytes;
    if (rest < min_block) return;
    h.size = granules(bytes);
    const r = h.next();
    r.* = .{ .prev_size = h.size, .size = granules(rest), .magic = free_magic };
    r.next().prev_size = r.size;
    insertFree(r);
}

/// A block of `bytes` (a multiple of 16, >= 32) whose payload (header + 16) is aligned to
/// `alignment`; the block is out of the lists, its magic not yet set.
fn takeLocked(bytes: usize, alignment: usize) ?*Header {
    if (!seeded) seedLocked();
    // Room for any front gap: none when 16-aligned; else up to alignment + 16 bytes, since a gap
    // must be 0 or a block of its own (>= 32).
    const search = if (alignment <= granule) bytes else std.math.add(usize, bytes, alignment + granule) catch return null;
    var h = findFree(search) orelse growLocked(search) orelse return null;
    removeFree(h);
    if (alignment > granule) {
        var user = std.mem.alignForward(usize, h.addr() + header_size, alignment);
        if (user - header_size - h.addr() == granule) user += alignment;
        const gap = user - header_size - h.addr();
        if (gap != 0) {
            // The gap stays a free block; its left neighbour is in use, so it merges with nothing.
            const body: *Header = @ptrFromInt(user - header_size);
            body.* = .{ .prev_size = granules(gap), .size = h.size - granules(gap), .magic = free_magic };
            body.next().prev_size = body.size;
            h.size = granules(gap);
            insertFree(h);
            h = body;
        }
    }
    splitLocked(h, bytes);
    return h;
}

/// Block size for `n` bytes: the header plus n, in whole granules, at least min_block.
fn blockFor(n: usize) ?usize {
    const with_header = std.math.add(usize, n, header_size + granule - 1) catch return null;
    const b = @max(min_block, with_header / granule * granule);
    return if (b <= max_block) b else null;
}

/// Allocate `n` bytes aligned to `alignment` (a power of two, at most a page). Returns null
/// when memory cannot grow. Counted in bytes_in_use.
pub fn allocBytes(n: usize, alignment: usize, zero: bool) ?[*]u8 {
    std.debug.assert(std.math.isPowerOfTwo(alignment) and alignment <= page);
    const bytes = blockFor(n) orelse return null;
    lock();
    const h = takeLocked(bytes, alignment) orelse {
        unlock();
        return null;
    };
    h.magic = live_magic;
    counters.add64(&counters.block.bytes_in_use, h.bytes());
    unlock();
    const p: [*]u8 = @ptrFromInt(h.addr() + header_size);
    if (zero) @memset(p[0..n], 0);
    return p;
}

/// The live block of `p` from allocBytes, or null for anything else: a double free, a
/// pointer that never came from here (checked: alignment, inside memory, magic, and the next
/// block agreeing on this block's size). Call with the lock held.
fn liveHeaderLocked(p: [*]u8) ?*Header {
    const addr = @intFromPtr(p);
    const top = platform.memoryTop();
    if (addr % granule != 0 or addr < platform.memoryBase() + header_size or addr >= top) return null;
    const h: *Header = @ptrFromInt(addr - header_size);
    if (h.magic != live_magic or h.size < granules(min_block)) return null;
    const end = std.math.add(usize, h.addr(), h.bytes()) catch return null;
    if (end > top - header_size) return null;
    if (h.next().prev_size != h.size) return null;
    return h;
}

/// Usable bytes from `p` to the end of its block (for in-place resize).
fn capacity(p: [*]u8) usize {
    const h: *Header = @ptrFromInt(@intFromPtr(p) - header_size);
    return h.bytes() - header_size;
}

/// Free a block from allocBytes. Pointers that do not carry a live header (double free, a
/// pointer that never came from here) are ignored rather than corrupting the free lists.
pub fn freeBytes(p: [*]u8) void {
    lock();
    defer unlock();
    const h = liveHeaderLocked(p) orelse return;
    counters.sub64(&counters.block.bytes_in_use, h.bytes());
    h.magic = free_magic;
    _ = releaseLocked(h);
}

/// Pages for the runtime itself (thread stacks + TLS), page aligned, never freed, counted in
/// runtime_bytes.
pub fn allocRuntimePages(pages: usize) ?usize {
    const bytes = blockFor(std.math.mul(usize, pages, page) catch return null) orelse return null;
    lock();
    defer unlock();
    const h = takeLocked(bytes, page) orelse return null;
    h.magic = runtime_magic;
    counters.add64(&counters.block.runtime_bytes, h.bytes());
    return h.addr() + header_size;
}

pub const Stats = struct {
    free_blocks: usize = 0,
    free_bytes: usize = 0,
    largest_free: usize = 0,
    live_blocks: usize = 0,
    segments: usize = 0,
};

/// Walk every segment block by block and check the invariants: sizes chain (each block's
/// prev_size is its left neighbour's size), no two free blocks touch, the lists are doubly
/// linked, hold only free blocks of their own class, and as many as the heap has. Returns the totals; any broken
/// invariant is error.HeapCorrupt. For the tests.
pub fn check() error{HeapCorrupt}!Stats {
    lock();
    defer unlock();
    var st: Stats = .{};
    var seg = first_segment;
    while (seg) |pro| : (seg = @as(*?*Header, @ptrCast(@alignCast(pro.links()))).*) {
        st.segments += 1;
        if (pro.magic != edge_magic or pro.prev_size != 0) return error.HeapCorrupt;
        var prev = pro;
        var h = pro.next();
        while (h.size != 0) : (h = h.next()) {
            if (h.prev_size != prev.size) return error.HeapCorrupt;
            switch (h.magic) {
                free_magic => {
                    if (prev.magic == free_magic) return error.HeapCorrupt;
                    st.free_blocks += 1;
                    st.free_bytes += h.bytes();
                    st.largest_free = @max(st.largest_free, h.bytes());
                },
                live_magic, runtime_magic => st.live_blocks += 1,
                else => return error.HeapCorrupt,
            }
            prev = h;
        }
        if (h.magic != edge_magic or h.prev_size != prev.size) return error.HeapCorrupt;
    }
    var listed: usize = 0;
    for (heads, 0..) |row, fl| for (row, 0..) |head, sl| {
        const bit = sl_bitmap[fl] & (@as(u16, 1) << @intCast(sl)) != 0;
        if (bit != (head != null)) return error.HeapCorrupt;
        var cur = head;
        var before: ?*Header = null;
        while (cur) |c| : (cur = c.links().next) {
            const cl = classOf(c.bytes());
            if (c.magic != free_magic or cl.fl != fl or cl.sl != sl or c.links().prev != before) return error.HeapCorrupt;
            before = c;
            listed += 1;
        }
    };
    if (listed != st.free_blocks) return error.HeapCorrupt;
    return st;
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

fn blockOf(p: [*]u8) usize {
    const h: *Header = @ptrFromInt(@intFromPtr(p) - header_size);
    return h.bytes();
}

/// The stated bound: the block of an n-byte request, header included.
fn maxBlock(n: usize) usize {
    return @max(min_block, std.mem.alignForward(usize, n + header_size, granule)) + granule;
}

/// Sizes around every boundary: the header, the small classes, pages.
const edge_sizes = [_]usize{
    0,     1,     15,     16,     17,     31,      32,            48,      100,   1000,  2032,
    2048,  4079,  4080,   4081,   16367,  32751,   32752,         32753,   65519, 65520, 65521,
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
        // The counted size is the block: at least n plus the header, at most the stated bound.
        const block = blockOf(ptrs[i]);
        try testing.expect(block >= n + header_size);
        try testing.expect(block <= maxBlock(n));
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
    _ = try check();
}

test "alloc: waste per block is at most 47 bytes for every size from 1 B to 64 MiB" {
    const start = inUse();
    var prng = std.Random.DefaultPrng.init(42);
    const r = prng.random();
    var worst: usize = 0;
    for (0..27) |k| {
        const p2 = @as(usize, 1) << @intCast(k);
        const around = [_]usize{ p2 - 1, p2, p2 + 1, p2 + r.uintLessThan(usize, p2) };
        for (around) |n| {
            // Each size alone, and next to a live neighbour (then the block is cut from a larger
            // free one: the case where a too-small rest stays with it).
            const a = allocBytes(n, 16, false).?;
            const b = allocBytes(n, 16, false).?;
            for ([_][*]u8{ a, b }) |q| {
                const block = blockOf(q);
                try testing.expect(block >= n + header_size);
                try testing.expect(block <= maxBlock(n));
                try testing.expect(block - n <= 47);
                worst = @max(worst, block - n);
            }
            // Over-aligned requests obey the same bound (the front gap is a free block of its own).
            for ([_]usize{ 64, 4096, page }) |al| {
                const q = allocBytes(n, al, false).?;
                try testing.expectEqual(@as(usize, 0), @intFromPtr(q) % al);
                try testing.expect(blockOf(q) <= maxBlock(n));
                freeBytes(q);
            }
            freeBytes(a);
            freeBytes(b);
        }
    }
    try testing.expect(worst <= 47);
    try testing.expectEqual(start, inUse());
    _ = try check();
}

test "alloc: 16 KiB blocks fill 99% of a capped memory with data (not half)" {
    const start = inUse();
    const saved = platform.native_max_pages;
    defer platform.native_max_pages = saved;
    const cap_pages = 2048; // 128 MiB above the current top
    const before = try check();
    platform.native_max_pages = platform.memoryTopPages() + cap_pages;
    const n = 16 * 1024;
    var list: std.ArrayList([*]u8) = .empty;
    defer list.deinit(testing.allocator);
    while (allocBytes(n, 16, false)) |q| try list.append(testing.allocator, q);
    const room = cap_pages * page + before.free_bytes;
    const data = list.items.len * n;
    try testing.expect(data * 100 >= room * 99);
    for (list.items) |q| freeBytes(q);
    try testing.expectEqual(start, inUse());
    _ = try check();
}

test "alloc: 130,000 blocks of 8 KiB, all freed, leave room for one 1.2 GiB block (2 GiB cap)" {
    const start = inUse();
    const saved = platform.native_max_pages;
    defer platform.native_max_pages = saved;
    // As much memory as a wasm pool has at most: 2 GiB over what is in use now.
    platform.native_max_pages = platform.memoryTopPages() + 32768;
    const count = 130_000;
    const ptrs = try testing.allocator.alloc([*]u8, count);
    defer testing.allocator.free(ptrs);
    for (ptrs) |*q| {
        q.* = allocBytes(8192, 16, false).?;
        q.*[0] = 0xA5; // touched, like an array's data
    }
    // Free every other block, then the rest: every second free has to merge on both sides.
    var i: usize = 0;
    while (i < count) : (i += 2) freeBytes(ptrs[i]);
    i = 1;
    while (i < count) : (i += 2) freeBytes(ptrs[i]);
    try testing.expectEqual(start, inUse());
    const stats = try check();
    try testing.expect(stats.largest_free >= count * 8192);
    const big = allocBytes(1200 << 20, 16, false) orelse return error.LargeBlockFailed;
    big[(1200 << 20) - 1] = 1;
    freeBytes(big);
    try testing.expectEqual(start, inUse());
    _ = try check();
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
    // Inside a live block but not its start: ignored, the block stays intact.
    const c = allocBytes(4096, 16, true).?;
    freeBytes(c + 32);
    freeBytes(c + 2048);
    try testing.expectEqual(start + blockOf(c), inUse());
    freeBytes(c);
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
    _ = try check();
}

test "alloc: freed blocks coalesce, repeated cycles keep memory flat" {
    const start = inUse();
    // Warm up once so that memory holds what one cycle needs.
    const sizes = [_]usize{ 3 * page, 70_000, 10 * page + 1, 200_000, 5 * page, 100, 5000, 24 };
    var ptrs: [sizes.len][*]u8 = undefined;
    for (sizes, 0..) |n, i| ptrs[i] = allocBytes(n, 16, false).?;
    for (ptrs) |p| freeBytes(p);
    const top = platform.memoryTop();
    const after_warmup = try check();
    for (0..200) |cycle| {
        for (sizes, 0..) |n, i| ptrs[i] = allocBytes(n + cycle, 16, false).?;
        // Free middle blocks first so that coalescing has to join on both sides.
        const order = [_]usize{ 2, 0, 4, 6, 1, 7, 3, 5 };
        for (order) |k| freeBytes(ptrs[k]);
    }
    try testing.expectEqual(top, platform.memoryTop());
    try testing.expectEqual(start, inUse());
    // Every byte freed went back, merged: no more free blocks than after the warm-up.
    const stats = try check();
    try testing.expectEqual(after_warmup.free_bytes, stats.free_bytes);
    try testing.expect(stats.free_blocks <= after_warmup.free_blocks);
    // The largest free block is usable whole without growing.
    const whole = allocBytes(stats.largest_free - header_size, 16, false).?;
    try testing.expectEqual(top, platform.memoryTop());
    freeBytes(whole);
    try testing.expectEqual(stats.free_bytes, (try check()).free_bytes);
}

test "alloc: out of memory returns null and the allocator keeps working" {
    const start = inUse();
    try testing.expect(allocBytes(std.math.maxInt(usize) - 8, 16, false) == null);
    try testing.expect(allocBytes(std.math.maxInt(usize) / 2, 16, false) == null);
    const saved = platform.native_max_pages;
    platform.native_max_pages = platform.memoryTopPages() + 2;
    defer platform.native_max_pages = saved;
    // More than all free blocks hold together, so it must grow, and growth is capped.
    const too_big = (try check()).free_bytes + 3 * page;
    try testing.expect(allocBytes(too_big, 16, false) == null);
    try testing.expectEqual(start, inUse());
    const p = allocBytes(1000, 16, true).?;
    freeBytes(p);
    try testing.expectEqual(start, inUse());
    _ = try check();
}

test "alloc: concurrent alloc/free from many threads, contents intact, bytes_in_use exact, all merged" {
    const start = inUse();
    const before = try check();
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
                    // Mostly small, sometimes large, sometimes over-aligned.
                    const n = if (r.uintLessThan(u32, 16) == 0) r.uintLessThan(usize, 300_000) else r.uintLessThan(usize, 3000);
                    const al: usize = if (r.uintLessThan(u32, 32) == 0) 4096 else 16;
                    const p = allocBytes(n, al, false) orelse {
                        _ = @atomicRmw(u32, failures, .Add, 1, .monotonic);
                        continue;
                    };
                    if (@intFromPtr(p) % al != 0) _ = @atomicRmw(u32, failures, .Add, 1, .monotonic);
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
    // Everything freed merged back: no more free blocks than before (each gap between live
    // blocks is one block), and the lists agree with the heap.
    const after = try check();
    try testing.expectEqual(before.live_blocks, after.live_blocks);
    try testing.expect(after.free_blocks <= before.free_blocks + 1);
}
