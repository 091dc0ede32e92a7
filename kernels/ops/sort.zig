// jr_sort and jr_argsort: parallel stable merge sort. Fixed 4096-element blocks are sorted in
// parallel (insertion-sorted runs merged in cache), then each level merges pairs of runs with
// the whole level split evenly over tasks (merge-path co-ranks), so the last levels, with one
// or two big merges, still use every thread. Floats sort NaN last, like numpy.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const block_len: usize = 4096;
const run_len: usize = 32;
/// Output elements per merge task at least.
const merge_chunk: usize = 16384;

/// numpy's order: NaN after everything, NaN equal to NaN (so stability keeps their order).
pub inline fn keyLess(comptime T: type, a: T, b: T) bool {
    if (@typeInfo(T) == .float) return a < b or (b != b and a == a);
    return a < b;
}

fn ValueOrder(comptime T: type) type {
    return struct {
        pub inline fn less(_: @This(), a: T, b: T) bool {
            return keyLess(T, a, b);
        }
    };
}

/// Orders indices by their keys; equal keys keep index order because the sort is stable.
fn IndexOrder(comptime T: type) type {
    return struct {
        keys: []align(1) const T,
        pub inline fn less(self: @This(), a: i64, b: i64) bool {
            return keyLess(T, self.keys[@intCast(a)], self.keys[@intCast(b)]);
        }
    };
}

fn Sorter(comptime E: type, comptime Order: type) type {
    return struct {
        const Self = @This();
        const Slice = []align(1) E;
        /// Keyed(T) pairs (the argsort fast path) merge from both ends; see merge.
        const both_ends = @typeInfo(E) == .@"struct";
        order: Order,

        fn insertion(self: Self, s: Slice) void {
            for (1..s.len) |i| {
                const v = s[i];
                var j = i;
                while (j > 0 and self.order.less(v, s[j - 1])) : (j -= 1) s[j] = s[j - 1];
                s[j] = v;
            }
        }

        /// Stable merge: on ties the element of `a` (the earlier run) goes first. (key, index)
        /// pairs merge from both ends at once without branches while each run has two
        /// elements left (two independent chains of load, compare, select), then from the
        /// front with branches. Measured on random 2e6 f64 in wasmtime: argsort 262 -> 230 ms,
        /// but sorting the values themselves this way 252 -> 343 ms, so values keep branches.
        fn merge(self: Self, a: []align(1) const E, b: []align(1) const E, dst: Slice) void {
            var i: usize = 0;
            var j: usize = 0;
            var o: usize = 0;
            var ia: usize = a.len; // a[i..ia], b[j..jb] are not placed yet
            var jb: usize = b.len;
            var hi: usize = dst.len;
            while (both_ends and ia - i >= 2 and jb - j >= 2) {
                const x = a[i];
                const y = b[j];
                const front_b = self.order.less(y, x);
                dst[o] = if (front_b) y else x;
                o += 1;
                j += @intFromBool(front_b);
                i += @intFromBool(!front_b);
                const u = a[ia - 1];
                const v = b[jb - 1];
                const back_a = self.order.less(v, u);
                hi -= 1;
                dst[hi] = if (back_a) u else v;
                ia -= @intFromBool(back_a);
                jb -= @intFromBool(!back_a);
            }
            while (i < ia and j < jb) : (o += 1) {
                if (self.order.less(b[j], a[i])) {
                    dst[o] = b[j];
                    j += 1;
                } else {
                    dst[o] = a[i];
                    i += 1;
                }
            }
            @memcpy(dst[o..][0 .. ia - i], a[i..ia]);
            o += ia - i;
            @memcpy(dst[o..][0 .. jb - j], b[j..jb]);
        }

        /// How many elements of `a` are among the first k outputs of merge(a, b).
        fn coRank(self: Self, k: usize, a: []align(1) const E, b: []align(1) const E) usize {
            var lo = k -| b.len;
            var hi = @min(k, a.len);
            while (lo < hi) {
                const i = lo + (hi - lo) / 2;
                // a[i] goes before b[k-i-1] (ties too): then more than i come from a.
                if (!self.order.less(b[k - i - 1], a[i])) lo = i + 1 else hi = i;
            }
            return lo;
        }

        /// Sort s in place using tmp (same length) as the other buffer.
        fn sortBlock(self: Self, s: Slice, tmp: Slice) void {
            var i: usize = 0;
            while (i < s.len) : (i += run_len) self.insertion(s[i..@min(s.len, i + run_len)]);
            var src = s;
            var dst = tmp;
            var w = run_len;
            while (w < s.len) : (w *= 2) {
                var p: usize = 0;
                while (p < s.len) : (p += 2 * w) {
                    const mid = @min(s.len, p + w);
                    const end = @min(s.len, p + 2 * w);
                    self.merge(src[p..mid], src[mid..end], dst[p..end]);
                }
                const t = src;
                src = dst;
                dst = t;
            }
            if (src.ptr != s.ptr) @memcpy(s, src);
        }

        /// Merge the output range [lo, hi) of one level (runs of width w, src -> dst).
        fn mergeRange(self: Self, src: Slice, dst: Slice, w: usize, lo: usize, hi: usize) void {
            const n = src.len;
            var pos = lo;
            while (pos < hi) {
                const start = pos / (2 * w) * (2 * w);
                const mid = @min(n, start + w);
                const end = @min(n, start + 2 * w);
                const seg_end = @min(hi, end);
                const a = src[start..mid];
                const b = src[mid..end];
                const k0 = pos - start;
                const k1 = seg_end - start;
                const a_from = self.coRank(k0, a, b);
                const a_to = self.coRank(k1, a, b);
                self.merge(a[a_from..a_to], b[k0 - a_from .. k1 - a_to], dst[pos..seg_end]);
                pos = seg_end;
            }
        }
    };
}

/// Sorts `buf` (n elements) with `tmp` (n elements). `fill(lo, hi)` is called by each block
/// task first (copy the input in, or write indices). Returns false when cancelled; `buf`
/// then still holds a permutation of its elements (the last complete level).
fn parallelMergeSort(comptime E: type, order: anytype, buf: []align(1) E, tmp: []align(1) E, fill: anytype) bool {
    const S = Sorter(E, @TypeOf(order));
    const sorter: S = .{ .order = order };
    const n = buf.len;
    const Blocks = struct {
        s: S,
        buf: []align(1) E,
        tmp: []align(1) E,
        fill: @TypeOf(fill),
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |b| {
                const s = b * block_len;
                const e = @min(self.buf.len, s + block_len);
                self.fill.run(s, e);
                self.s.sortBlock(self.buf[s..e], self.tmp[s..e]);
            }
        }
    };
    var blocks: Blocks = .{ .s = sorter, .buf = buf, .tmp = tmp, .fill = fill };
    rt.parallelFor((n + block_len - 1) / block_len, 1, &blocks);
    if (rt.cancelled()) return false;

    const Level = struct {
        s: S,
        src: []align(1) E,
        dst: []align(1) E,
        w: usize,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            self.s.mergeRange(self.src, self.dst, self.w, lo, hi);
        }
    };
    var level: Level = .{ .s = sorter, .src = buf, .dst = tmp, .w = block_len };
    while (level.w < n) : (level.w *= 2) {
        rt.parallelFor(n, merge_chunk, &level);
        if (rt.cancelled()) break;
        const t = level.src;
        level.src = level.dst;
        level.dst = t;
    }
    if (level.src.ptr != buf.ptr) {
        var back: Copy(E) = .{ .src = level.src, .dst = buf };
        // Copy back even when cancelled, so that buf keeps every element.
        if (rt.cancelled()) back.run(0, n) else rt.parallelFor(n, merge_chunk, &back);
    }
    return !rt.cancelled();
}

fn Copy(comptime E: type) type {
    return struct {
        src: []align(1) const E,
        dst: []align(1) E,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            @memcpy(self.dst[lo..hi], self.src[lo..hi]);
        }
    };
}

fn Iota() type {
    return struct {
        dst: []align(1) i64,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |i| self.dst[i] = @intCast(i);
        }
    };
}

fn NoFill() type {
    return struct {
        pub fn run(_: *@This(), _: usize, _: usize) void {}
    };
}

// ---- already ordered input -------------------------------------------------------------
// Presorted, reversed and constant input is common (sorting sorted data, a reversed range,
// a column of one value). One parallel pass classifies the input; ascending input is copied,
// descending input reversed, both in O(n) instead of a merge sort's O(n log n). The pass stops
// as soon as it has seen the order break both ways, so other input pays a few comparisons.

/// Pairs compared between looks at whether another task already saw both orders broken.
const classify_step: usize = 4096;
/// Elements per classify or copy task at least.
const linear_chunk: usize = 65536;

const Presorted = enum { ascending, descending, descending_with_ties, no };

fn Classify(comptime T: type) type {
    return struct {
        x: []align(1) const T,
        /// When not empty, x is copied here on the way (the merge sort then sorts it in place),
        /// reversed when `reverse`.
        copy: []align(1) T = &.{},
        reverse: bool = false,
        /// bit 0: a pair descends; bit 1: a pair ascends; bit 2: a pair is equal (numpy order)
        seen: u32 = 0,

        // One simd128 register: wider bool vectors cost wasm shuffles to pack the masks.
        const lanes = 16 / @sizeOf(T);
        const V = @Vector(lanes, T);
        const B = @Vector(lanes, bool);

        /// Over the pairs (i, i + 1), i in [lo, hi) (and the elements [lo, hi), plus the last
        /// one, copied). Each step guesses its direction from its two ends and checks only
        /// that one (one or two compares a register where three orders and a NaN test took
        /// four: this loop, not memory, bounded sorting ordered input); a step that breaks the
        /// guess, or meets a NaN, is classified again pair by pair (numpy order).
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            if (self.copy.len != 0) {
                const n = self.x.len;
                const end = if (hi == n - 1) hi + 1 else hi;
                if (self.reverse) {
                    var r: Reverse(T) = .{ .src = self.x, .dst = self.copy };
                    r.run(n - end, n - lo);
                } else {
                    @memcpy(self.copy[lo..end], self.x[lo..end]);
                }
            }
            var seen: u32 = 0;
            var i = lo;
            while (i < hi) {
                if (@atomicLoad(u32, &self.seen, .monotonic) & 3 == 3) return;
                const stop = @min(hi, i + classify_step);
                seen |= step(self.x, i, stop) orelse pairByPair(self.x, i, stop);
                i = stop;
                if (seen & 3 == 3) break;
            }
            _ = @atomicRmw(u32, &self.seen, .Or, seen, .monotonic);
        }

        /// The seen bits of the pairs starting in [start, stop) when they all go the way the
        /// ends x[start], x[stop] point (no NaN among them); null otherwise.
        fn step(x: []align(1) const T, start: usize, stop: usize) ?u32 {
            const first = x[start];
            const last = x[stop];
            if (first <= last) {
                // Non-decreasing, NaN-free: no pair descends, and some pair ascends exactly
                // when the ends differ (else all are equal).
                if (!allPairs(x, start, stop)) return null;
                return if (first < last) 2 else 4;
            }
            if (last < first) {
                const ties = allPairsDown(x, start, stop) orelse return null;
                return 1 | (if (ties) @as(u32, 4) else 0);
            }
            return null; // an end is NaN
        }

        /// Whether x[i] <= x[i + 1] for every i in [start, stop) (false at a NaN).
        fn allPairs(x: []align(1) const T, start: usize, stop: usize) bool {
            var ok: B = @splat(true);
            var i = start;
            // Four registers a round: the engine does not unroll, and the loop's own
            // instructions cost as much as its compares.
            while (i + 4 * lanes <= stop) : (i += 4 * lanes) {
                inline for (0..4) |r| {
                    const a: V = x[i + r * lanes ..][0..lanes].*;
                    const b: V = x[i + r * lanes + 1 ..][0..lanes].*;
                    ok = ok & (a <= b);
                }
            }
            while (i + lanes <= stop) : (i += lanes) {
                const a: V = x[i..][0..lanes].*;
                const b: V = x[i + 1 ..][0..lanes].*;
                ok = ok & (a <= b);
            }
            var good = @reduce(.And, ok);
            while (i < stop) : (i += 1) good = good and x[i] <= x[i + 1];
            return good;
        }

        /// Whether x[i + 1] <= x[i] for every i in [start, stop) (false at a NaN), and if so
        /// whether a pair is equal; null when not.
        fn allPairsDown(x: []align(1) const T, start: usize, stop: usize) ?bool {
            var ok: B = @splat(true);
            var equal: B = @splat(false);
            var i = start;
            while (i + 4 * lanes <= stop) : (i += 4 * lanes) {
                inline for (0..4) |r| {
                    const a: V = x[i + r * lanes ..][0..lanes].*;
                    const b: V = x[i + r * lanes + 1 ..][0..lanes].*;
                    ok = ok & (b <= a);
                    equal = equal | (a == b);
                }
            }
            while (i + lanes <= stop) : (i += lanes) {
                const a: V = x[i..][0..lanes].*;
                const b: V = x[i + 1 ..][0..lanes].*;
                ok = ok & (b <= a);
                equal = equal | (a == b);
            }
            var good = @reduce(.And, ok);
            var ties = @reduce(.Or, equal);
            while (i < stop) : (i += 1) {
                good = good and x[i + 1] <= x[i];
                ties = ties or x[i] == x[i + 1];
            }
            return if (good) ties else null;
        }

        /// The seen bits of the pairs starting in [start, stop), one pair at a time in numpy's
        /// order; stops early once both orders are broken.
        fn pairByPair(x: []align(1) const T, start: usize, stop: usize) u32 {
            var seen: u32 = 0;
            for (start..stop) |i| {
                const a = x[i];
                const b = x[i + 1];
                seen |= if (keyLess(T, b, a)) @as(u32, 1) else if (keyLess(T, a, b)) @as(u32, 2) else @as(u32, 4);
                if (seen & 3 == 3) break;
            }
            return seen;
        }
    };
}

/// How x is ordered; with `copy` not empty, x is also copied there (reversed when `reverse`,
/// whatever the order turns out to be).
fn presorted(comptime T: type, x: []align(1) const T, copy: []align(1) T, reverse: bool) Presorted {
    if (x.len < 2) {
        if (copy.len != 0) @memcpy(copy, x);
        return .ascending;
    }
    var cl: Classify(T) = .{ .x = x, .copy = copy, .reverse = reverse };
    rt.parallelFor(x.len - 1, linear_chunk, &cl);
    if (rt.cancelled()) return .no;
    if (cl.seen & 1 == 0) return .ascending; // constant input too
    if (cl.seen & 2 == 0) return if (cl.seen & 4 == 0) .descending else .descending_with_ties;
    return .no;
}

/// dst[i] = src[n - 1 - i]; in place (dst == src) it swaps the two halves' pairs.
fn Reverse(comptime E: type) type {
    return struct {
        src: []align(1) const E,
        dst: []align(1) E,
        // One simd128 register, four a round, reversed as bytes: LLVM turned a reversal of
        // f64 (or i64) lanes, 8 lanes or 2, into a scalar load and store per element, where
        // a byte shuffle stays one pshufd (measured in wasmtime's code).
        const lanes = 16 / @sizeOf(E);
        const round = 4 * lanes;
        const V = @Vector(lanes, E);
        const Bytes = @Vector(16, u8);
        const backwards: [16]i32 = blk: {
            var m: [16]i32 = undefined;
            for (&m, 0..) |*v, k| v.* = @intCast((lanes - 1 - k / @sizeOf(E)) * @sizeOf(E) + k % @sizeOf(E));
            break :blk m;
        };

        inline fn flip(v: V) V {
            return @bitCast(@shuffle(u8, @as(Bytes, @bitCast(v)), undefined, backwards));
        }

        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            // Locals: `self` lives in the same memory as dst, so each store through dst would
            // otherwise reload the slices.
            const src = self.src;
            const dst = self.dst;
            const n = dst.len;
            var i = lo;
            if (src.ptr == dst.ptr) {
                while (i + round <= hi) : (i += round) {
                    const j = n - i - round; // dst[i..i+round] <-> dst[j..j+round], reversed
                    var a: [4]V = undefined;
                    var b: [4]V = undefined;
                    inline for (0..4) |r| {
                        a[r] = dst[i + r * lanes ..][0..lanes].*;
                        b[r] = dst[j + r * lanes ..][0..lanes].*;
                    }
                    inline for (0..4) |r| {
                        dst[i + r * lanes ..][0..lanes].* = flip(b[3 - r]);
                        dst[j + r * lanes ..][0..lanes].* = flip(a[3 - r]);
                    }
                }
                while (i < hi) : (i += 1) {
                    const t = dst[i];
                    dst[i] = dst[n - 1 - i];
                    dst[n - 1 - i] = t;
                }
            } else {
                while (i + round <= hi) : (i += round) {
                    const j = n - i - round;
                    inline for (0..4) |r| {
                        const v: V = src[j + (3 - r) * lanes ..][0..lanes].*;
                        dst[i + r * lanes ..][0..lanes].* = flip(v);
                    }
                }
                while (i < hi) : (i += 1) dst[i] = src[n - 1 - i];
            }
        }
    };
}

/// out[i] = i, or n - 1 - i when `backwards`.
fn Indices(comptime backwards: bool) type {
    return struct {
        dst: []align(1) i64,
        const lanes = 8;
        const V = @Vector(lanes, i64);
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            const n: i64 = @intCast(self.dst.len);
            const step: V = if (backwards) .{ 0, -1, -2, -3, -4, -5, -6, -7 } else .{ 0, 1, 2, 3, 4, 5, 6, 7 };
            var i = lo;
            while (i + lanes <= hi) : (i += lanes) {
                const first: i64 = if (backwards) n - 1 - @as(i64, @intCast(i)) else @intCast(i);
                self.dst[i..][0..lanes].* = @as(V, @splat(first)) + step;
            }
            while (i < hi) : (i += 1) self.dst[i] = if (backwards) n - 1 - @as(i64, @intCast(i)) else @intCast(i);
        }
    };
}

fn reverseInto(comptime E: type, src: []align(1) const E, dst: []align(1) E) void {
    var body: Reverse(E) = .{ .src = src, .dst = dst };
    rt.parallelFor(if (src.ptr == dst.ptr) dst.len / 2 else dst.len, linear_chunk, &body);
}

/// After reversing descending input, equal elements stand in reverse order: reverse each run of
/// equal keys back (stability). `key(i)` is the key at output position i.
fn unreverseTies(comptime E: type, out: []align(1) E, ctx: anytype) void {
    var s: usize = 0;
    while (s < out.len) {
        var e = s + 1;
        while (e < out.len and !ctx.less(ctx.key(out, s), ctx.key(out, e))) e += 1;
        var a = s;
        var b = e - 1;
        while (a < b) : ({
            a += 1;
            b -= 1;
        }) {
            const t = out[a];
            out[a] = out[b];
            out[b] = t;
        }
        s = e;
    }
}

fn ValueKeys(comptime T: type) type {
    return struct {
        fn key(_: @This(), out: []align(1) T, i: usize) T {
            return out[i];
        }
        fn less(_: @This(), a: T, b: T) bool {
            return keyLess(T, a, b);
        }
    };
}

fn IndexKeys(comptime T: type) type {
    return struct {
        x: []align(1) const T,
        fn key(self: @This(), out: []align(1) i64, i: usize) T {
            return self.x[@intCast(out[i])];
        }
        fn less(_: @This(), a: T, b: T) bool {
            return keyLess(T, a, b);
        }
    };
}

/// Sorts ascending or descending input in O(n); false when x needs the merge sort (out then
/// holds a copy of x).
fn sortPresorted(comptime T: type, x: []align(1) const T, out: []align(1) T) bool {
    const in_place = x.ptr == out.ptr;
    // Out of place, the pass copies x to out as it classifies, reversed when the ends say the
    // input descends (only descending input can have its first key above its last): sorted
    // and reversed input are then done in one pass.
    const guess_down = x.len > 1 and keyLess(T, x[x.len - 1], x[0]);
    const order = presorted(T, x, if (in_place) &.{} else out, guess_down);
    switch (order) {
        .no => {
            // The merge sort needs x's own order in out (stability): undo a reversed copy.
            if (guess_down and !in_place and !rt.cancelled()) reverseInto(T, out, out);
            return false;
        },
        .ascending => {},
        .descending, .descending_with_ties => {
            if (in_place) reverseInto(T, out, out);
            // Equal ints are identical; equal floats may differ (-0.0 and 0.0, NaN payloads).
            if (order == .descending_with_ties and @typeInfo(T) == .float and !rt.cancelled()) {
                unreverseTies(T, out, ValueKeys(T){});
            }
        },
    }
    return true;
}

fn argsortPresorted(comptime T: type, x: []align(1) const T, out: []align(1) i64) bool {
    switch (presorted(T, x, &.{}, false)) {
        .no => return false,
        .ascending => {
            var fill: Indices(false) = .{ .dst = out };
            rt.parallelFor(out.len, linear_chunk, &fill);
        },
        .descending, .descending_with_ties => |order| {
            var fill: Indices(true) = .{ .dst = out };
            rt.parallelFor(out.len, linear_chunk, &fill);
            if (order == .descending_with_ties and !rt.cancelled()) unreverseTies(i64, out, IndexKeys(T){ .x = x });
        },
    }
    return true;
}

fn sortTyped(comptime T: type, x: []align(1) const T, out: []align(1) T) i32 {
    const n = x.len;
    if (n == 0) return c.OK;
    if (sortPresorted(T, x, out)) return c.OK;
    if (rt.cancelled()) return c.E_CANCELED;
    const tmp = c.scratch(T, n) orelse return c.E_NOMEM;
    defer c.freeScratch(tmp);
    const order: ValueOrder(T) = .{};
    // sortPresorted left a copy of x in out: sort it in place.
    var fill: NoFill() = .{};
    _ = parallelMergeSort(T, order, out, tmp, &fill);
    return c.OK;
}

/// A key with its index: sorting these touches memory in order, where sorting indices by
/// x[index] jumps around x at every comparison.
fn Keyed(comptime T: type) type {
    return struct { key: T, idx: usize };
}

fn KeyedOrder(comptime T: type) type {
    return struct {
        pub inline fn less(_: @This(), a: Keyed(T), b: Keyed(T)) bool {
            return keyLess(T, a.key, b.key);
        }
    };
}

fn KeyedFill(comptime T: type) type {
    return struct {
        x: []align(1) const T,
        dst: []Keyed(T),
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |i| self.dst[i] = .{ .key = self.x[i], .idx = i };
        }
    };
}

fn KeyedIndices(comptime T: type) type {
    return struct {
        src: []const Keyed(T),
        out: []align(1) i64,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |i| self.out[i] = @intCast(self.src[i].idx);
        }
    };
}

/// Tests turn this off to run the low-memory argsort path without exhausting memory.
pub var use_pairs = true;

fn argsortTyped(comptime T: type, x: []align(1) const T, out: []align(1) i64) i32 {
    const n = x.len;
    if (n == 0) return c.OK;
    if (argsortPresorted(T, x, out)) return c.OK;
    if (rt.cancelled()) return c.E_CANCELED;
    // Fast path: (key, index) pairs, about 4x the scratch of the indirect sort below.
    if (if (use_pairs) c.scratch(Keyed(T), 2 * n) else null) |pairs| {
        defer c.freeScratch(pairs);
        const order: KeyedOrder(T) = .{};
        var fill: KeyedFill(T) = .{ .x = x, .dst = pairs[0..n] };
        if (parallelMergeSort(Keyed(T), order, pairs[0..n], pairs[n..], &fill)) {
            var back: KeyedIndices(T) = .{ .src = pairs[0..n], .out = out };
            rt.parallelFor(n, merge_chunk, &back);
        }
        return c.OK;
    }
    // Memory is short: sort the indices themselves, comparing x[index].
    const tmp = c.scratch(i64, n) orelse return c.E_NOMEM;
    defer c.freeScratch(tmp);
    const order: IndexOrder(T) = .{ .keys = x };
    var fill: Iota() = .{ .dst = out };
    _ = parallelMergeSort(i64, order, out, tmp, &fill);
    return c.OK;
}

/// jr_sort(dtype, x, out, n): stable ascending; out may be x (in place).
pub fn sort(dtype_code: u32, x: usize, out: usize, n: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, dt.size()) orelse return c.E_RANGE;
    if (!xr.sameOrDisjoint(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| sortTyped(d.Type(), c.slice(d.Type(), x, n), c.slice(d.Type(), out, n)),
    };
}

/// jr_argsort(dtype, x, out, n): int64 indices of numpy's argsort(kind="stable").
pub fn argsort(dtype_code: u32, x: usize, out: usize, n: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, n, 8) orelse return c.E_RANGE;
    // The keys are read until the end, so the indices cannot be written over them.
    if (xr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| argsortTyped(d.Type(), c.slice(d.Type(), x, n), c.slice(i64, out, n)),
    };
}

// ---- tests ---------------------------------------------------------------------------------
// Each kernel runs through c.call (validation, rt.call, the real parallel path), as its jr_*
// export does, and is compared with a plain sequential reference written here, over many sizes
// and thread counts.

const testing = std.testing;
const support = @import("test_support.zig");
const alloc = support.alloc;
const sizes = support.sizes;
const thread_counts = support.thread_counts;
const setThreads = support.setThreads;
const addr = support.addr;
const randomArray = support.randomArray;
const Ref = support.Ref;
const setCancel = support.setCancel;

test "coRank splits a stable merge" {
    const S = Sorter(i32, ValueOrder(i32));
    const s: S = .{ .order = .{} };
    const a = [_]i32{ 1, 3, 3, 5 };
    const b = [_]i32{ 2, 3, 4 };
    // merge: 1a 2b 3a 3a 3b 4b 5a
    const expect = [_]usize{ 0, 1, 1, 2, 3, 3, 3, 4 };
    for (expect, 0..) |e, k| try std.testing.expectEqual(e, s.coRank(k, &a, &b));
}

fn refArgsort(comptime T: type, x: []const T, idx: []i64) void {
    for (idx, 0..) |*v, i| v.* = @intCast(i);
    const Ctx = struct {
        keys: []const T,
        fn less(self: @This(), a: i64, b: i64) bool {
            const ka = self.keys[@intCast(a)];
            const kb = self.keys[@intCast(b)];
            if (@typeInfo(T) == .float) {
                if (std.math.isNan(ka)) return false;
                if (std.math.isNan(kb)) return true;
            }
            return ka < kb;
        }
    };
    std.sort.insertion(i64, idx, Ctx{ .keys = x }, Ctx.less);
}

fn checkSort(comptime T: type, dtype: u32, rng: std.Random, few_keys: bool) !void {
    for (sizes) |n| {
        if (n > 20000) continue; // the insertion-sort reference is quadratic
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        if (few_keys) for (x) |*v| {
            v.* = if (@typeInfo(T) == .float) @floatFromInt(rng.uintLessThan(u32, 5)) else @intCast(rng.uintLessThan(u32, 5));
        };
        if (@typeInfo(T) == .float and n > 10) {
            for (0..n / 10) |_| x[rng.uintLessThan(usize, n)] = std.math.nan(T);
            x[rng.uintLessThan(usize, n)] = -0.0;
            x[rng.uintLessThan(usize, n)] = 0.0;
            x[rng.uintLessThan(usize, n)] = -std.math.inf(T);
        }
        const ref = try alloc.alloc(i64, n);
        defer alloc.free(ref);
        refArgsort(T, x, ref);
        const idx = try alloc.alloc(i64, n);
        defer alloc.free(idx);
        const sorted = try alloc.alloc(T, n);
        defer alloc.free(sorted);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(argsort, .{ dtype, addr(x), addr(idx), n }));
            try testing.expectEqualSlices(i64, ref, idx);
            // the low-memory path (indices compared through x) gives the same result
            use_pairs = false;
            @memset(idx, -1);
            const st = c.call(argsort, .{ dtype, addr(x), addr(idx), n });
            use_pairs = true;
            try testing.expectEqual(c.OK, st);
            try testing.expectEqualSlices(i64, ref, idx);
            try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(x), addr(sorted), n }));
            for (ref, sorted) |r, s| try testing.expect(std.mem.eql(u8, std.mem.asBytes(&x[@intCast(r)]), std.mem.asBytes(&s)));
        }
        // in place
        const copy = try alloc.dupe(T, x);
        defer alloc.free(copy);
        try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(copy), addr(copy), n }));
        try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(sorted), std.mem.sliceAsBytes(copy)));
    }
    setThreads(1);
}

test "sort/argsort: stable, NaN last, -0.0/0.0 kept in order, equal to a reference" {
    var prng = std.Random.DefaultPrng.init(7);
    const rng = prng.random();
    inline for (.{ false, true }) |few| {
        try checkSort(f64, 0, rng, few);
        try checkSort(f32, 1, rng, few);
        try checkSort(i32, 2, rng, few);
        try checkSort(i64, 3, rng, few);
        try checkSort(u32, 4, rng, few);
        try checkSort(u64, 5, rng, few);
    }
}

test "sort: large arrays with many equal keys across every merge level" {
    var prng = std.Random.DefaultPrng.init(8);
    const rng = prng.random();
    for ([_]usize{ 65536, 65537, 100003, 262147 }) |n| {
        const x = try alloc.alloc(i32, n);
        defer alloc.free(x);
        for (x) |*v| v.* = @intCast(rng.uintLessThan(u32, 50));
        const idx = try alloc.alloc(i64, n);
        defer alloc.free(idx);
        for ([_]usize{ 1, 2, 4 }, 0..) |t, round| {
            setThreads(t);
            use_pairs = round != 1;
            defer use_pairs = true;
            try testing.expectEqual(c.OK, c.call(argsort, .{ 2, addr(x), addr(idx), n }));
            // sorted by key, and within a key by index (stability); a permutation
            const seen = try alloc.alloc(bool, n);
            defer alloc.free(seen);
            @memset(seen, false);
            for (idx, 0..) |v, i| {
                const u: usize = @intCast(v);
                try testing.expect(!seen[u]);
                seen[u] = true;
                if (i > 0) {
                    const p: usize = @intCast(idx[i - 1]);
                    try testing.expect(x[p] < x[u] or (x[p] == x[u] and p < u));
                }
            }
        }
    }
    setThreads(1);
}

var polls_left: usize = 0;
fn pollCancelsLater() i32 {
    if (polls_left == 0) return 1;
    polls_left -= 1;
    return 0;
}

test "cancel in the middle of an in-place sort keeps every element" {
    if (!@hasDecl(rt.platform, "native_host_poll")) return error.SkipZigTest;
    const n = 1 << 21;
    const x = try alloc.alloc(i32, n);
    defer alloc.free(x);
    var prng = std.Random.DefaultPrng.init(11);
    for (x) |*v| v.* = prng.random().int(i32);
    const want = try alloc.dupe(i32, x);
    defer alloc.free(want);
    std.mem.sort(i32, want, {}, std.sort.asc(i32));
    setThreads(1);
    // the host poll says "cancel" after a few polls: somewhere in the merge levels
    var cancelled_runs: usize = 0;
    for ([_]usize{ 0, 1, 2, 3 }) |after| {
        polls_left = after;
        rt.platform.native_host_poll = &pollCancelsLater;
        const st = c.call(sort, .{ 2, addr(x), addr(x), n });
        rt.platform.native_host_poll = null;
        setCancel(0);
        try testing.expect(st == c.E_CANCELED or st == c.OK);
        cancelled_runs += @intFromBool(st == c.E_CANCELED);
        const got = try alloc.dupe(i32, x);
        defer alloc.free(got);
        std.mem.sort(i32, got, {}, std.sort.asc(i32));
        try testing.expectEqualSlices(i32, want, got);
    }
    try testing.expect(cancelled_runs > 0);
    try testing.expectEqual(c.OK, c.call(sort, .{ 2, addr(x), addr(x), n }));
    try testing.expectEqualSlices(i32, want, x);
}

test "sort: a cancel lands within 100 ms in a long sort and argsort" {
    const n = 1 << 24;
    const x = try alloc.alloc(i32, n);
    defer alloc.free(x);
    var prng = std.Random.DefaultPrng.init(13);
    for (x) |*v| v.* = prng.random().int(i32);
    const out = try alloc.alloc(i64, n);
    defer alloc.free(out);
    for ([_]usize{ 1, 4 }) |t| {
        setThreads(t);
        try support.expectPromptCancel(sort, .{ 2, addr(x), addr(out), n }, 20);
        try support.expectPromptCancel(argsort, .{ 2, addr(x), addr(out), n }, 20);
    }
    setThreads(1);
}

/// Stable reference argsort in O(n log n) (std.sort.block is stable), numpy's NaN-last order.
fn refArgsortFast(comptime T: type, x: []const T, idx: []i64) void {
    for (idx, 0..) |*v, i| v.* = @intCast(i);
    const Ctx = struct {
        keys: []const T,
        fn less(self: @This(), a: i64, b: i64) bool {
            return keyLess(T, self.keys[@intCast(a)], self.keys[@intCast(b)]);
        }
    };
    std.sort.block(i64, idx, Ctx{ .keys = x }, Ctx.less);
}

fn checkPresorted(comptime T: type, dtype: u32, x: []T) !void {
    const n = x.len;
    const ref = try alloc.alloc(i64, n);
    defer alloc.free(ref);
    refArgsortFast(T, x, ref);
    const idx = try alloc.alloc(i64, n);
    defer alloc.free(idx);
    const sorted = try alloc.alloc(T, n);
    defer alloc.free(sorted);
    const copy = try alloc.alloc(T, n);
    defer alloc.free(copy);
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(argsort, .{ dtype, addr(x), addr(idx), n }));
        try testing.expectEqualSlices(i64, ref, idx);
        try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(x), addr(sorted), n }));
        for (ref, sorted) |r, s| try testing.expect(std.mem.eql(u8, std.mem.asBytes(&x[@intCast(r)]), std.mem.asBytes(&s)));
        @memcpy(copy, x);
        try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(copy), addr(copy), n }));
        try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(sorted), std.mem.sliceAsBytes(copy)));
    }
}

test "sort/argsort: presorted, reversed, constant and reversed-with-ties input (the O(n) paths)" {
    var prng = std.Random.DefaultPrng.init(11);
    const rng = prng.random();
    for ([_]usize{ 2, 3, 7, 4096, 4097, 65537, 300007 }) |n| {
        const xf = try alloc.alloc(f64, n);
        defer alloc.free(xf);
        const xi = try alloc.alloc(i32, n);
        defer alloc.free(xi);
        const xu = try alloc.alloc(u64, n);
        defer alloc.free(xu);
        for (0..6) |kind| {
            for (xf, xi, 0..) |*f, *v, i| {
                const fi: f64 = @floatFromInt(i);
                const ri: f64 = @floatFromInt(n - i);
                f.* = switch (kind) {
                    0 => fi, // ascending
                    1 => ri, // strictly descending
                    2 => 3.5, // constant
                    3 => @floor(ri / 3), // descending with ties
                    4 => if (i < n / 4) std.math.nan(f64) else @floor(ri / 5) - @floor(@as(f64, @floatFromInt(n)) / 10), // NaN first, then descending ties through zero
                    else => if (i == n / 2) -1 else fi, // one out of place: the merge sort
                };
                v.* = @intFromFloat(if (f.* != f.*) 1e9 else f.*);
            }
            // signed zeros among the ties: stability decides their order
            if (kind == 4) for (xf) |*f| {
                if (f.* == 0) f.* = if (rng.boolean()) -0.0 else 0.0;
            };
            try checkPresorted(f64, 0, xf);
            try checkPresorted(i32, 2, xi);
            // the same order as uint64 keys on both sides of 2^63 (flipping the sign bit keeps
            // the order): a signed comparison would put the upper half first
            for (xi, xu) |v, *u| u.* = @as(u64, @bitCast(@as(i64, v))) ^ (1 << 63);
            try checkPresorted(u64, 5, xu);
        }
    }
    setThreads(1);
}

test "sort/argsort: input whose classify steps go different ways (constant, up, down, NaN runs)" {
    // Runs longer than a classify step, so that steps see only one kind and the whole answer
    // comes from combining them; each input is checked against the reference either way.
    const seg = classify_step + 905;
    const nan = std.math.nan(f64);
    const shapes = [_][4]u8{
        .{ 'c', 'd', 0, 0 }, // constant, then down: descending with ties
        .{ 'd', 'c', 'd', 0 }, // down, constant, down
        .{ 'u', 'c', 'n', 0 }, // up, constant, NaN tail: ascending in numpy order
        .{ 'n', 'c', 'd', 'z' }, // NaN head, constant, down, signed zeros: descending
        .{ 'c', 'u', 'n', 'u' }, // a NaN run inside: the merge sort
        .{ 'u', 'd', 0, 0 }, // up then down: the merge sort
        .{ 'c', 'c', 'c', 'c' }, // constant
    };
    var prng = std.Random.DefaultPrng.init(17);
    const rng = prng.random();
    for (shapes) |shape| {
        var len: usize = 0;
        for (shape) |k| len += if (k == 0) 0 else seg;
        const xf = try alloc.alloc(f64, len);
        defer alloc.free(xf);
        var level: f64 = 1e6; // each run starts where the last one ended
        var at: usize = 0;
        for (shape) |k| {
            if (k == 0) continue;
            for (xf[at..][0..seg]) |*f| {
                switch (k) {
                    'u' => level += 1,
                    'd' => level -= 1,
                    else => {},
                }
                f.* = switch (k) {
                    'n' => nan,
                    'z' => if (rng.boolean()) -0.0 else 0.0,
                    else => level,
                };
            }
            if (k == 'z') level = 0;
            at += seg;
        }
        try checkPresorted(f64, 0, xf);
        const xi = try alloc.alloc(i32, len);
        defer alloc.free(xi);
        for (xf, xi) |f, *v| v.* = @intFromFloat(if (f != f) 2e6 else f);
        try checkPresorted(i32, 2, xi);
        const xs = try alloc.alloc(f32, len);
        defer alloc.free(xs);
        for (xf, xs) |f, *s| s.* = @floatCast(f);
        try checkPresorted(f32, 1, xs);
    }
    setThreads(1);
}
