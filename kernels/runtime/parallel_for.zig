//! parallelFor: split [0, n) adaptively like rayon's bridge_producer_consumer + LengthSplitter.
//! A range splits in half while it is at least 2*min_len long and the splitter allows it: the
//! splitter starts with `threads` splits and halves them on each split, so an unstolen
//! computation makes about `threads` leaves; when a half was stolen (it runs on another
//! thread: there is demand) the count is reset to max(threads, splits/2) so it splits again.
//! Leaves run in chunks of at most n/4096 elements (but at least min_len) so that the cancel
//! flag and the host poll are checked between chunks even when a leaf is large.
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
            if (sp.trySplit(hi - lo, self.min, migrated, self.threads)) {
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
            while (hi - lo >= 2 * self.chunk) {
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
