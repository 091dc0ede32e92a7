//! Chase-Lev work-stealing deque (Le, Pop, Cohen, Zappa Nardelli 2013), fixed capacity.
//! The owner pushes and pops at the bottom (LIFO, good locality for fork-join); thieves take
//! from the top (FIFO, the oldest and usually largest pieces of work). When the deque is full,
//! `push` fails and the caller runs the job inline, which is always correct for fork-join.
//!
//! All index operations are sequentially consistent: the owner's pop must order its store to
//! `bottom` before its load of `top` (a store-load fence that Zig exposes only this way), and
//! wasm atomics are sequentially consistent anyway.
const std = @import("std");

pub fn Deque(comptime T: type, comptime capacity: usize) type {
    std.debug.assert(std.math.isPowerOfTwo(capacity));
    return struct {
        const Self = @This();
        const mask = capacity - 1;

        // Indices only grow (wrapping): slots are `index & mask`, and every comparison goes
        // through `diff`, a signed wrapping difference, so wrap-around after 2^32 operations
        // on wasm32 is harmless (the true difference is always within the capacity).
        top: usize align(64) = 0,
        bottom: usize align(64) = 0,
        slots: [capacity]?*T = @splat(null),

        pub const Steal = union(enum) { empty, retry, success: *T };

        fn diff(a: usize, b: usize) isize {
            return @bitCast(a -% b);
        }

        /// Owner only. False when full (run the item inline instead).
        pub fn push(self: *Self, item: *T) bool {
            const b = @atomicLoad(usize, &self.bottom, .monotonic);
            const t = @atomicLoad(usize, &self.top, .acquire);
            if (diff(b, t) >= capacity) return false;
            @atomicStore(?*T, &self.slots[b & mask], item, .monotonic);
            @atomicStore(usize, &self.bottom, b +% 1, .seq_cst);
            return true;
        }

        /// Owner only: the most recently pushed item, or null.
        pub fn pop(self: *Self) ?*T {
            const b = @atomicLoad(usize, &self.bottom, .monotonic) -% 1;
            @atomicStore(usize, &self.bottom, b, .seq_cst);
            const t = @atomicLoad(usize, &self.top, .seq_cst);
            const size = diff(b, t); // items left after taking this one
            if (size < 0) {
                @atomicStore(usize, &self.bottom, b +% 1, .monotonic);
                return null;
            }
            var item = @atomicLoad(?*T, &self.slots[b & mask], .monotonic);
            if (size == 0) {
                // Last item: race the thieves for it.
                if (@cmpxchgStrong(usize, &self.top, t, t +% 1, .seq_cst, .monotonic) != null) {
                    item = null;
                }
                @atomicStore(usize, &self.bottom, b +% 1, .monotonic);
            }
            return item;
        }

        /// Any thread: the oldest item. `retry` means another thread won a race; try again.
        pub fn steal(self: *Self) Steal {
            const t = @atomicLoad(usize, &self.top, .seq_cst);
            const b = @atomicLoad(usize, &self.bottom, .seq_cst);
            if (diff(b, t) <= 0) return .empty;
            const item = @atomicLoad(?*T, &self.slots[t & mask], .monotonic);
            if (@cmpxchgStrong(usize, &self.top, t, t +% 1, .seq_cst, .monotonic) != null) {
                return .retry;
            }
            return .{ .success = item.? };
        }

        /// Racy hint for sleepers deciding whether to stay awake.
        pub fn looksEmpty(self: *const Self) bool {
            return diff(@atomicLoad(usize, &self.bottom, .seq_cst), @atomicLoad(usize, &self.top, .seq_cst)) <= 0;
        }

        pub fn len(self: *const Self) usize {
            const d = diff(@atomicLoad(usize, &self.bottom, .monotonic), @atomicLoad(usize, &self.top, .monotonic));
            return if (d > 0) @intCast(d) else 0;
        }
    };
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;

test "deque: owner push/pop is LIFO, steal is FIFO, full push fails" {
    const Item = struct { v: usize };
    var items: [8]Item = undefined;
    var d: Deque(Item, 4) = .{};
    try testing.expect(d.pop() == null);
    try testing.expect(d.steal() == .empty);
    for (0..4) |i| {
        items[i] = .{ .v = i };
        try testing.expect(d.push(&items[i]));
    }
    items[4] = .{ .v = 4 };
    try testing.expect(!d.push(&items[4]));
    try testing.expectEqual(@as(usize, 3), d.pop().?.v);
    try testing.expectEqual(@as(usize, 0), d.steal().success.v);
    try testing.expectEqual(@as(usize, 1), d.steal().success.v);
    try testing.expectEqual(@as(usize, 2), d.pop().?.v);
    try testing.expect(d.pop() == null);
    try testing.expect(d.steal() == .empty);
    // Indices keep growing past the capacity: wrap-around must work.
    for (0..20) |round| {
        items[5] = .{ .v = round };
        try testing.expect(d.push(&items[5]));
        try testing.expectEqual(round, d.pop().?.v);
    }
}

test "deque: indices wrap around the integer range" {
    const Item = struct { v: usize };
    var items: [4]Item = .{ .{ .v = 0 }, .{ .v = 1 }, .{ .v = 2 }, .{ .v = 3 } };
    var d: Deque(Item, 4) = .{};
    d.top = std.math.maxInt(usize) - 2;
    d.bottom = d.top;
    for (0..3) |round| {
        for (&items) |*it| try testing.expect(d.push(it));
        try testing.expect(!d.push(&items[0]));
        try testing.expectEqual(@as(usize, 4), d.len());
        try testing.expectEqual(@as(usize, 0), d.steal().success.v);
        try testing.expectEqual(@as(usize, 3), d.pop().?.v);
        try testing.expectEqual(@as(usize, 1), d.steal().success.v);
        try testing.expectEqual(@as(usize, 2), d.pop().?.v);
        try testing.expect(d.pop() == null);
        try testing.expect(d.steal() == .empty);
        try testing.expect(d.looksEmpty());
        _ = round;
    }
}

test "deque stress: owner push/pop against several stealers, every item taken once" {
    const n_items = 200_000;
    const n_thieves = 5;
    const Item = struct { id: u32 };
    const D = Deque(Item, 256);
    const Shared = struct {
        d: D = .{},
        taken: []u8,
        done: u32 = 0,
        started: u32 = 0,
        stolen: [n_thieves]usize = @splat(0),

        fn take(s: *@This(), it: *Item) void {
            // Counting with an atomic add catches an item taken twice.
            _ = @atomicRmw(u8, &s.taken[it.id], .Add, 1, .monotonic);
        }

        fn thief(s: *@This(), k: usize) void {
            _ = @atomicRmw(u32, &s.started, .Add, 1, .seq_cst);
            while (true) {
                switch (s.d.steal()) {
                    .success => |it| {
                        s.take(it);
                        s.stolen[k] += 1;
                    },
                    .retry => {},
                    .empty => if (@atomicLoad(u32, &s.done, .acquire) != 0 and s.d.looksEmpty()) return,
                }
            }
        }
    };
    const items = try testing.allocator.alloc(Item, n_items);
    defer testing.allocator.free(items);
    const taken = try testing.allocator.alloc(u8, n_items);
    defer testing.allocator.free(taken);
    @memset(taken, 0);
    var s: Shared = .{ .taken = taken };
    var threads: [n_thieves]std.Thread = undefined;
    for (0..n_thieves) |k| threads[k] = try std.Thread.spawn(.{}, Shared.thief, .{ &s, k });
    // Start racing only once every thief runs (on a busy machine they may start late).
    while (@atomicLoad(u32, &s.started, .seq_cst) < n_thieves) std.Thread.yield() catch {};
    var next: u32 = 0;
    var owner_popped: usize = 0;
    var rng = std.Random.DefaultPrng.init(42);
    while (next < n_items) {
        // Bursts of pushes, then a few pops: exercises both the empty and the full cases.
        const burst = rng.random().uintLessThan(u32, 300);
        var k: u32 = 0;
        while (k < burst and next < n_items) : (k += 1) {
            items[next] = .{ .id = next };
            if (s.d.push(&items[next])) {
                next += 1;
            } else break;
        }
        // Give the thieves a moment on a full-ish deque before popping.
        for (0..200) |_| std.atomic.spinLoopHint();
        const pops = rng.random().uintLessThan(u32, 100);
        for (0..pops) |_| {
            if (s.d.pop()) |it| {
                s.take(it);
                owner_popped += 1;
            }
        }
    }
    while (s.d.pop()) |it| {
        s.take(it);
        owner_popped += 1;
    }
    @atomicStore(u32, &s.done, 1, .release);
    for (threads) |t| t.join();
    var stolen: usize = 0;
    for (s.stolen) |c| stolen += c;
    try testing.expectEqual(@as(usize, n_items), owner_popped + stolen);
    for (taken) |c| try testing.expectEqual(@as(u8, 1), c);
    try testing.expect(stolen > 0);
}

