//! parallelFor: split [0, n) adaptively like rayon's bridge_producer_consumer + LengthSplitter.
//! A range splits in half while it is at least 2*min_len long and the splitter allows it: the
//! splitter starts with `threads` splits and halves them on each split, so an unstolen
//! computation makes about `threads` leaves; when a half was stolen (it runs on another
//! thread: there is demand) the count is reset to max(threads, splits/2) so it splits again.
//! Leaves run in chunks of about n/4096 elements (but at least min_len) so that the cancel
//! flag and the host poll are checked between chunks even when a leaf is large; ranges never
//! split below one chunk, so a call runs at most 4096 chunks. A range too short to split (n <
//! 2 * min_len) runs inline on the caller.
const std = @import("std");
const registry = @import("registry.zig");
const join = @import("join.zig");

/// Chunks per call below which leaves are not cut further (bounds the cancel latency).
const max_chunks = 4096;

const Splitter = struct {
    splits: usize,

    fn trySplit(self: *Splitter, len: usize, min_len: usize, migrated: bool, threads: usize) bool {
        if (len / 2 < min_len) return false;
        if (migrated) {
            self.splits = @max(threads, self.splits / 2);
            return true;
        }
        if (self.splits > 0) {
            self.splits /= 2;
            return true;
        }
        return false;
    }
};

/// body: pointer to a struct with `pub fn run(self, lo: usize, hi: usize) void`, called
/// concurrently on disjoint ranges that cover [0, n), each at least min_len long (unless n is
/// smaller). Once cancelled, the chunks not yet started are skipped.
pub fn parallelFor(n: usize, min_len: usize, body: anytype) void {
    if (n == 0) return;
    const min = @max(min_len, 1);
    // A range that cannot be split runs here, on the caller, as one task: no job is pushed,
    // no helper is woken, nothing is stolen (small inputs cost a plain function call).
    if (n / 2 < min) {
        if (registry.cancelled()) return;
        body.run(0, n);
        registry.countTaskCurrent();
        return;
    }
    const threads = @max(registry.numThreads(), 1);
    const ctx: Ctx(@TypeOf(body.*)) = .{
        .body = body,
        .min = min,
        .chunk = @max(min, std.math.divCeil(usize, n, max_chunks) catch unreachable),
        .threads = threads,
    };
    ctx.range(0, n, .{ .splits = threads }, false);
}

fn Ctx(comptime Body: type) type {
    return struct {
        const Self = @This();
        body: *Body,
        min: usize,
        chunk: usize,
        threads: usize,

        fn range(self: *const Self, lo: usize, hi: usize, splitter: Splitter, migrated: bool) void {
            if (registry.cancelled()) return;
            var sp = splitter;
            // Never split below one chunk: a leaf is at least `chunk` long, so a call runs at
            // most max_chunks chunks however often its halves are stolen.
            if (sp.trySplit(hi - lo, self.chunk, migrated, self.threads)) {
                const mid = lo + (hi - lo) / 2;
                var left: Half = .{ .ctx = self, .lo = lo, .hi = mid, .sp = sp };
                var right: Half = .{ .ctx = self, .lo = mid, .hi = hi, .sp = sp };
                join.joinContext(&left, &right);
            } else {
                self.leaf(lo, hi);
            }
        }

        /// Chunks of `chunk` elements; the last one takes the remainder (< 2 * chunk), so
        /// every chunk keeps at least min_len elements.
        fn leaf(self: *const Self, lo_in: usize, hi: usize) void {
            var lo = lo_in;
            while ((hi - lo) / 2 >= self.chunk) { // hi - lo >= 2 * chunk, without overflow
                if (registry.cancelled()) return;
                self.body.run(lo, lo + self.chunk);
                registry.countTaskCurrent();
                lo += self.chunk;
            }
            if (registry.cancelled()) return;
            self.body.run(lo, hi);
            registry.countTaskCurrent();
        }

        const Half = struct {
            ctx: *const Self,
            lo: usize,
            hi: usize,
            sp: Splitter,
            pub fn run(h: *Half, migrated: bool) void {
                h.ctx.range(h.lo, h.hi, h.sp, migrated);
            }
        };
    };
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;
const support = @import("test_support.zig");
const counters = @import("counters.zig");
const status = @import("status.zig");
const platform = @import("platform.zig");

/// Marks every index it is given and checks each chunk's length against min_len.
const Cover = struct {
    seen: []u8,
    min_len: usize,
    short_chunks: usize = 0,
    bad_ranges: usize = 0,
    chunks: usize = 0,

    pub fn run(self: *Cover, lo: usize, hi: usize) void {
        if (lo >= hi or hi > self.seen.len) {
            _ = @atomicRmw(usize, &self.bad_ranges, .Add, 1, .monotonic);
            return;
        }
        if (hi - lo < @min(self.min_len, self.seen.len)) {
            _ = @atomicRmw(usize, &self.short_chunks, .Add, 1, .monotonic);
        }
        _ = @atomicRmw(usize, &self.chunks, .Add, 1, .monotonic);
        for (self.seen[lo..hi]) |*s| _ = @atomicRmw(u8, s, .Add, 1, .monotonic);
    }
};

const ForBody = struct {
    n: usize,
    cover: *Cover,
    pub fn run(self: *ForBody) void {
        parallelFor(self.n, self.cover.min_len, self.cover);
    }
};

test "parallelFor: every index exactly once, chunks >= min_len, many n, min_len, threads" {
    const sizes = [_]usize{ 0, 1, 2, 3, 7, 31, 32, 33, 100, 127, 1000, 4095, 4096, 4097, 65_537, 300_007 };
    const mins = [_]usize{ 0, 1, 2, 3, 7, 64, 1000, 5000, std.math.maxInt(usize) };
    const buf = try testing.allocator.alloc(u8, sizes[sizes.len - 1]);
    defer testing.allocator.free(buf);
    for (support.thread_counts) |t| {
        for (sizes) |n| {
            for (mins) |m| {
                const seen = buf[0..n];
                @memset(seen, 0);
                var cover: Cover = .{ .seen = seen, .min_len = m };
                var body: ForBody = .{ .n = n, .cover = &cover };
                try support.runVoid(t, &body);
                try testing.expectEqual(@as(usize, 0), cover.bad_ranges);
                try testing.expectEqual(@as(usize, 0), cover.short_chunks);
                for (seen) |s| try testing.expectEqual(@as(u8, 1), s);
                if (n == 0) try testing.expectEqual(@as(usize, 0), cover.chunks);
            }
        }
    }
}

test "parallelFor: outside a kernel call it covers the range on the calling thread" {
    var seen: [1001]u8 = @splat(0);
    var cover: Cover = .{ .seen = &seen, .min_len = 10 };
    parallelFor(seen.len, 10, &cover);
    for (seen) |s| try testing.expectEqual(@as(u8, 1), s);
}

/// Requests cancel from inside the first chunk it runs; counts the elements that ran.
const CancelBody = struct {
    done: usize = 0,
    pub fn run(self: *CancelBody, lo: usize, hi: usize) void {
        counters.requestCancel();
        _ = @atomicRmw(usize, &self.done, .Add, hi - lo, .monotonic);
    }
};

const CancelCall = struct {
    n: usize,
    body: *CancelBody,
    pub fn run(self: *CancelCall) i32 {
        parallelFor(self.n, 1, self.body);
        return status.OK;
    }
};

test "parallelFor: cancel stops it early, the call reports E_CANCELED, the pool keeps working" {
    const n = 1_000_000;
    for (support.thread_counts) |t| {
        var body: CancelBody = .{};
        var c: CancelCall = .{ .n = n, .body = &body };
        try testing.expectEqual(status.E_CANCELED, try support.runWith(t, &c));
        // At most the chunks already running when the flag was set finish: far less than n.
        try testing.expect(body.done < n / 2);

        // The next call (cancel cleared, as hosts do) covers everything again.
        const seen = try testing.allocator.alloc(u8, 10_000);
        defer testing.allocator.free(seen);
        @memset(seen, 0);
        var cover: Cover = .{ .seen = seen, .min_len = 1 };
        var fb: ForBody = .{ .n = seen.len, .cover = &cover };
        try support.runVoid(t, &fb);
        for (seen) |s| try testing.expectEqual(@as(u8, 1), s);
    }
}

var polls: u32 = 0;
fn pollCancels() i32 {
    polls += 1;
    return 1;
}

const CountBody = struct {
    done: usize = 0,
    pub fn run(self: *CountBody, lo: usize, hi: usize) void {
        _ = @atomicRmw(usize, &self.done, .Add, hi - lo, .monotonic);
    }
};

const CountCall = struct {
    n: usize,
    body: *CountBody,
    pub fn run(self: *CountCall) i32 {
        parallelFor(self.n, 1, self.body);
        return status.OK;
    }
};

test "parallelFor: a non-zero host_poll cancels the caller's call" {
    platform.native_host_poll = &pollCancels;
    defer platform.native_host_poll = null;
    polls = 0;
    // One thread: the caller runs every chunk, so it reaches its every-16-tasks poll at once.
    var body: CountBody = .{};
    var c: CountCall = .{ .n = 1_000_000, .body = &body };
    try testing.expectEqual(status.E_CANCELED, try support.runWith(1, &c));
    try testing.expect(polls >= 1);
    try testing.expect(body.done < 1_000_000);
}

/// Each chunk waits (bounded) until another chunk runs at the same time: only a pool that
/// really runs chunks on two threads at once gets everyone through without the time-out.
const Rendezvous = struct {
    inside: u32 = 0,
    met: u32 = 0,
    gave_up: u32 = 0,

    pub fn run(self: *Rendezvous, lo: usize, hi: usize) void {
        _ = lo;
        _ = hi;
        _ = @atomicRmw(u32, &self.inside, .Add, 1, .seq_cst);
        var waited: usize = 0;
        while (@atomicLoad(u32, &self.inside, .seq_cst) < 2 and @atomicLoad(u32, &self.met, .seq_cst) == 0) {
            const never: u32 = 0;
            _ = platform.futexWait(&never, 0, std.time.ns_per_ms);
            waited += 1;
            if (waited > 60_000) { // a minute: only a pool that never runs chunks in parallel
                _ = @atomicRmw(u32, &self.gave_up, .Add, 1, .seq_cst);
                return;
            }
        }
        @atomicStore(u32, &self.met, 1, .seq_cst);
    }
};

test "parallelFor: chunks really run on two threads at the same time" {
    for ([_]u32{ 2, 4 }) |t| {
        var r: Rendezvous = .{};
        const Call = struct {
            r: *Rendezvous,
            n: usize,
            pub fn run(self: *@This()) void {
                parallelFor(self.n, 1, self.r);
            }
        };
        var c: Call = .{ .r = &r, .n = t };
        try support.runVoid(t, &c);
        try testing.expectEqual(@as(u32, 0), r.gave_up);
        try testing.expectEqual(@as(u32, 1), r.met);
    }
}

/// A parallelFor over rows whose body runs a parallelFor over columns, the way 2-D kernels
/// nest them; every cell must be visited exactly once.
const Grid = struct {
    seen: []u8,
    cols: usize,

    pub fn run(self: *Grid, lo: usize, hi: usize) void {
        for (lo..hi) |row| {
            var r: Row = .{ .cells = self.seen[row * self.cols ..][0..self.cols] };
            parallelFor(self.cols, 3, &r);
        }
    }

    const Row = struct {
        cells: []u8,
        pub fn run(self: *Row, lo: usize, hi: usize) void {
            for (self.cells[lo..hi]) |*c| _ = @atomicRmw(u8, c, .Add, 1, .monotonic);
        }
    };
};

test "parallelFor: nested inside another parallelFor covers every cell once" {
    const rows = 97;
    const cols = 1031;
    const seen = try testing.allocator.alloc(u8, rows * cols);
    defer testing.allocator.free(seen);
    for (support.thread_counts) |t| {
        @memset(seen, 0);
        var g: Grid = .{ .seen = seen, .cols = cols };
        const Call = struct {
            g: *Grid,
            pub fn run(self: *@This()) void {
                parallelFor(rows, 1, self.g);
            }
        };
        var c: Call = .{ .g = &g };
        try support.runVoid(t, &c);
        for (seen) |s| try testing.expectEqual(@as(u8, 1), s);
    }
}

test "parallelFor: at most 4096 chunks however the halves are stolen, each at least n/4096" {
    const n = 1_000_003;
    const seen = try testing.allocator.alloc(u8, n);
    defer testing.allocator.free(seen);
    for (support.thread_counts) |t| {
        for (0..10) |_| {
            @memset(seen, 0);
            var cover: Cover = .{ .seen = seen, .min_len = n / max_chunks };
            var body: ForBody = .{ .n = n, .cover = &cover };
            // min_len 1 in the call; Cover checks each chunk against n / 4096
            const Call = struct {
                b: *ForBody,
                pub fn run(self: *@This()) void {
                    parallelFor(self.b.n, 1, self.b.cover);
                }
            };
            var call: Call = .{ .b = &body };
            try support.runVoid(t, &call);
            try testing.expect(cover.chunks <= max_chunks);
            try testing.expectEqual(@as(usize, 0), cover.short_chunks);
            for (seen) |s| try testing.expectEqual(@as(u8, 1), s);
        }
    }
}
