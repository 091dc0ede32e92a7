// jr_sort and jr_argsort: stable, NaN last like numpy. Presorted, reversed and constant input
// take O(n) paths; other input from 512-2560 elements (by dtype) sorts by parallel LSD radix
// (see "radix sort"), shorter input (or when memory is short) by parallel merge sort: fixed
// 4096-element blocks are sorted in parallel (insertion-sorted runs merged in cache), then each
// level merges pairs of runs with the whole level split evenly over tasks (merge-path
// co-ranks), so the last levels, with one or two big merges, still use every thread.
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
    if (level.src.ptr != buf.ptr) copyBack(E, level.src, buf);
    return !rt.cancelled();
}

/// dst = src, even when cancelled (before or during the copy, whose tasks a cancel skips): a
/// sort's scratch goes back into its buffer, which then keeps every element.
fn copyBack(comptime E: type, src: []align(1) const E, dst: []align(1) E) void {
    var back: Copy(E) = .{ .src = src, .dst = dst };
    if (!rt.cancelled()) rt.parallelFor(dst.len, merge_chunk, &back);
    if (rt.cancelled()) back.run(0, dst.len);
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
        /// When not empty, x is copied here on the way (the radix or merge sort then sorts it
        /// in place), reversed when `reverse`.
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

/// Sorts ascending or descending input in O(n); false when x needs a full sort (radix or
/// merge; out then holds a copy of x).
fn sortPresorted(comptime T: type, x: []align(1) const T, out: []align(1) T) bool {
    const in_place = x.ptr == out.ptr;
    // Out of place, the pass copies x to out as it classifies, reversed when the ends say the
    // input descends (only descending input can have its first key above its last): sorted
    // and reversed input are then done in one pass.
    const guess_down = x.len > 1 and keyLess(T, x[x.len - 1], x[0]);
    const order = presorted(T, x, if (in_place) &.{} else out, guess_down);
    switch (order) {
        .no => {
            if (!in_place and rt.cancelled()) {
                // Cancelled in the middle of the copy: out holds part of x, maybe reversed.
                // Give it all of x, so that out holds a permutation of x as the sorts leave it.
                @memcpy(out, x);
            } else if (guess_down and !in_place) {
                // The sort needs x's own order in out (stability): undo the reversed copy.
                reverseInto(T, out, out);
            }
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

// ---- radix sort ------------------------------------------------------------------------------
// Random input of radixMin elements or more sorts by LSD radix: the merge is bound by
// mispredicted branches (about one a comparison on random keys) where a radix pass has none.
// Each pass counts the digits of every fixed chunk, turns the counts into the first output
// position of each (digit, chunk), digit-major then chunk (so equal digits keep their order:
// stable), then scatters every chunk; a pass whose digit is the same everywhere is skipped.
// The elements themselves move (a key only orders them), so NaN payloads and the sign of zero
// come out as they went in.

/// Digit widths: 11 bits (fewer passes, 2048 buckets) from radix_wide_min elements while the
/// input is at most radix_wide_max bytes, else 8 bits. Above that size the 2048 write fronts (one
/// a bucket) on as many pages miss the TLB; below that length the 2048-bucket counts and sums
/// cost more than the passes they save. One thread, wasmtime, 11 bits against 8: float32
/// 500000 3.1 ms against 4.4, int32 700000 2.7 against 3.4, float64 500000 6.4 against 7.4,
/// 4000 0.072 against 0.080; but float64 3000 0.073 against 0.068, int32 2e6 33 ms against 14,
/// float64 2e6 52 against 35.
const radix_bits_narrow = 8;
const radix_bits_wide = 11;
const radix_wide_min: usize = 4096;
/// Tests lower it to 0 to run the 8-bit digits on every input.
pub var radix_wide_max: usize = 4 << 20;
/// Elements per count or scatter task: fixed, so the answer and the tasks do not depend on the
/// thread count (and a task is short enough for the cancel checks between tasks).
const radix_chunk: usize = 1 << 16;

/// Tests set this to sort every length by radix (0) or none (maxInt).
pub var radix_min_override: ?usize = null;

/// Lengths from which the radix sort of E (T, or Keyed(T) for argsort) is faster than the merge
/// sort, measured in wasmtime on one thread (ms, radix against merge): int32 250: 0.011 /
/// 0.011, 500: 0.012 / 0.015; int64 500: 0.016 / 0.015, 750: 0.019 / 0.020; float32 1000:
/// 0.018 / 0.017, 1500: 0.022 / 0.023; float64 2000: 0.052 / 0.042, 3000: 0.068 / 0.082;
/// argsort int32 500: 0.013 / 0.014, 1000: 0.016 / 0.021, float64 500: 0.020 / 0.020, 1000:
/// 0.027 / 0.035.
fn radixMin(comptime E: type, comptime T: type) usize {
    if (radix_min_override) |m| return m;
    if (E != T) return 768;
    if (@typeInfo(T) == .int) return if (@sizeOf(T) == 4) 512 else 768;
    return if (@sizeOf(T) == 4) 1536 else 2560;
}

fn RadixKey(comptime T: type) type {
    return @Int(.unsigned, @bitSizeOf(T));
}

/// An unsigned key that orders like numpy: ints flip the sign bit; floats flip every bit of a
/// negative and the sign bit of a positive, -0.0 takes +0.0's key (numpy compares them equal,
/// so the stable sort keeps their input order) and every NaN takes the largest key (NaN last,
/// all NaN equal).
pub inline fn radixKey(comptime T: type, v: T) RadixKey(T) {
    const U = RadixKey(T);
    const top: U = @as(U, 1) << (@bitSizeOf(T) - 1);
    const b: U = @bitCast(v);
    if (@typeInfo(T) == .int) return if (@typeInfo(T).int.signedness == .signed) b ^ top else b;
    const k = plainKey(T, v);
    return if (v != v) std.math.maxInt(U) else if (b == top) top else k;
}

/// radixKey without the NaN and -0.0 cases: the same key when x holds neither (the first count
/// finds out), and fewer instructions in every pass (float64 normal 2e6: 48 -> 33 ms).
inline fn plainKey(comptime T: type, v: T) RadixKey(T) {
    const U = RadixKey(T);
    const bits = @bitSizeOf(T);
    const top: U = @as(U, 1) << (bits - 1);
    const b: U = @bitCast(v);
    if (@typeInfo(T) == .int) return radixKey(T, v);
    const S = @Int(.signed, bits);
    const negative: U = @bitCast(@as(S, @bitCast(b)) >> (bits - 1));
    return b ^ (negative | top);
}

/// Whether v is a NaN or -0.0, the floats whose plainKey is not their radixKey.
inline fn keySpecial(comptime T: type, v: T) bool {
    const U = RadixKey(T);
    const top: U = @as(U, 1) << (@bitSizeOf(T) - 1);
    const b: U = @bitCast(v);
    const inf: U = @bitCast(std.math.inf(T));
    return b == top or b & ~top > inf;
}

/// detect: numpy keys, noting whether a NaN or -0.0 is there (the first count of floats).
const KeyKind = enum { detect, numpy, plain };

inline fn sortKey(comptime T: type, e: anytype) T {
    return if (@TypeOf(e) == T) e else e.key;
}

/// One radix pass over fixed chunks, src -> dst: `scatter` false counts each chunk's digits
/// into counts, true moves each chunk's elements to the positions counts then holds.
fn RadixPass(comptime E: type, comptime T: type, comptime bits: comptime_int) type {
    return struct {
        const Self = @This();
        const buckets: usize = 1 << bits;
        const U = RadixKey(T);
        const Shift = std.math.Log2Int(U);
        src: []align(1) E,
        dst: []align(1) E,
        /// counts[chunk * buckets + digit]
        counts: []u32,
        shift: Shift = 0,
        scatter: bool = false,
        keys: KeyKind = if (@typeInfo(T) == .float) .detect else .plain,
        /// Set by a `detect` count that met a NaN or -0.0.
        specials: u32 = 0,

        inline fn digit(comptime keys: KeyKind, e: E, shift: Shift) usize {
            const v = sortKey(T, e);
            const k = if (keys == .plain) plainKey(T, v) else radixKey(T, v);
            return @intCast((k >> shift) & (buckets - 1));
        }

        pub fn run(self: *Self, lo: usize, hi: usize) void {
            for (lo..hi) |ch| switch (self.keys) {
                inline else => |keys| if (self.scatter) self.scatterChunk(keys, ch) else self.countChunk(keys, ch),
            };
        }

        fn countChunk(self: *Self, comptime keys: KeyKind, ch: usize) void {
            const s = ch * radix_chunk;
            const src = self.src[s..@min(self.src.len, s + radix_chunk)];
            const shift = self.shift;
            var cnt: [buckets]u32 = @splat(0);
            const detect = keys == .detect and @typeInfo(T) == .float;
            var specials = false;
            for (src) |e| {
                cnt[digit(keys, e, shift)] += 1;
                if (detect) specials = specials or keySpecial(T, sortKey(T, e));
            }
            self.counts[ch * buckets ..][0..buckets].* = cnt;
            if (specials) _ = @atomicRmw(u32, &self.specials, .Or, 1, .monotonic);
        }

        fn scatterChunk(self: *const Self, comptime keys: KeyKind, ch: usize) void {
            const s = ch * radix_chunk;
            const src = self.src[s..@min(self.src.len, s + radix_chunk)];
            // Locals: dst is memory like self, so a store through it would reload the slice.
            const dst = self.dst;
            const shift = self.shift;
            var pos: [buckets]u32 = self.counts[ch * buckets ..][0..buckets].*;
            for (src) |e| {
                const d = digit(keys, e, shift);
                dst[pos[d]] = e;
                pos[d] += 1;
            }
        }
    };
}

/// Turns counts into the first output position of each (chunk, digit), digit-major then chunk.
/// False when one digit holds all n elements (the pass would move nothing): counts are then
/// partly rewritten, and the next pass counts again.
fn startPositions(counts: []u32, buckets: usize, chunks: usize, n: usize) bool {
    var pos: usize = 0;
    for (0..buckets) |d| {
        const first = pos;
        var i = d;
        for (0..chunks) |_| {
            const k = counts[i];
            counts[i] = @intCast(pos);
            pos += k;
            i += buckets;
        }
        if (pos - first == n) return false;
    }
    return true;
}

/// Stable LSD radix sort of buf, with tmp (same length) as the other buffer; returns the one
/// that holds the answer. Null, buf untouched, when the counts cannot be allocated or n does not
/// fit the u32 positions. When cancelled, the one returned holds a permutation of buf's
/// elements (the last pass that finished: a scatter only reads its source).
fn radixPasses(comptime E: type, comptime T: type, buf: []align(1) E, tmp: []align(1) E) ?[]align(1) E {
    if (buf.len > std.math.maxInt(u32)) return null;
    const wide = buf.len >= radix_wide_min and buf.len * @sizeOf(E) <= radix_wide_max;
    if (wide) return radixPassesOf(E, T, radix_bits_wide, buf, tmp);
    return radixPassesOf(E, T, radix_bits_narrow, buf, tmp);
}

fn radixPassesOf(comptime E: type, comptime T: type, comptime bits: comptime_int, buf: []align(1) E, tmp: []align(1) E) ?[]align(1) E {
    const n = buf.len;
    const Pass = RadixPass(E, T, bits);
    const chunks = (n + radix_chunk - 1) / radix_chunk;
    const counts = c.scratch(u32, chunks * Pass.buckets) orelse return null;
    defer c.freeScratch(counts);
    var pass: Pass = .{ .src = buf, .dst = tmp, .counts = counts };
    var shift: usize = 0;
    while (shift < @bitSizeOf(T)) : (shift += bits) {
        // A pass on a big input takes long: ask the host between passes too.
        if (rt.pollCancelled()) break;
        pass.shift = @intCast(shift);
        pass.scatter = false;
        rt.parallelFor(chunks, 1, &pass);
        if (rt.cancelled()) break;
        if (pass.keys == .detect) pass.keys = if (pass.specials != 0) .numpy else .plain;
        if (!startPositions(counts, Pass.buckets, chunks, n)) continue;
        pass.scatter = true;
        rt.parallelFor(chunks, 1, &pass);
        if (rt.cancelled()) break;
        const t = pass.src;
        pass.src = pass.dst;
        pass.dst = t;
    }
    return pass.src;
}

/// radixPasses with the answer in buf: false when it did not run (buf untouched); when
/// cancelled, buf holds a permutation of its elements.
fn radixSort(comptime E: type, comptime T: type, buf: []align(1) E, tmp: []align(1) E) bool {
    const sorted = radixPasses(E, T, buf, tmp) orelse return false;
    if (sorted.ptr != buf.ptr) copyBack(E, sorted, buf);
    return true;
}

fn sortTyped(comptime T: type, x: []align(1) const T, out: []align(1) T) i32 {
    const n = x.len;
    if (n == 0) return c.OK;
    if (sortPresorted(T, x, out)) return c.OK;
    if (rt.cancelled()) return c.E_CANCELED;
    const tmp = c.scratch(T, n) orelse return c.E_NOMEM;
    defer c.freeScratch(tmp);
    // sortPresorted left a copy of x in out: sort it in place.
    if (n >= radixMin(T, T) and radixSort(T, T, out, tmp)) return c.OK;
    const order: ValueOrder(T) = .{};
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
        src: []align(1) const Keyed(T),
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
        if (n >= radixMin(Keyed(T), T)) {
            var fill: KeyedFill(T) = .{ .x = x, .dst = pairs[0..n] };
            rt.parallelFor(n, merge_chunk, &fill);
            if (rt.cancelled()) return c.OK;
            if (radixPasses(Keyed(T), T, pairs[0..n], pairs[n..])) |sorted| {
                var back: KeyedIndices(T) = .{ .src = sorted, .out = out };
                if (!rt.cancelled()) rt.parallelFor(n, merge_chunk, &back);
                return c.OK;
            }
        }
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
    // Every size by the default choice, then all by radix, then all by merge sort.
    defer radix_min_override = null;
    for ([_]?usize{ null, 0, std.math.maxInt(usize) }) |m| {
        radix_min_override = m;
        inline for (.{ false, true }) |few| {
            try checkSort(f64, 0, rng, few);
            try checkSort(f32, 1, rng, few);
            try checkSort(i32, 2, rng, few);
            try checkSort(i64, 3, rng, few);
            try checkSort(u32, 4, rng, few);
            try checkSort(u64, 5, rng, few);
        }
    }
}

test "radixKey orders like numpy: NaN last and equal, -0.0 equal to 0.0, ints by value" {
    const nan_neg: f64 = @bitCast(@as(u64, 0xfff8_0000_0000_0001));
    const nan_sig: f64 = @bitCast(@as(u64, 0x7ff0_0000_0000_0001));
    const f = [_]f64{ -std.math.inf(f64), -std.math.floatMax(f64), -1.0, -std.math.floatTrueMin(f64), 0.0, std.math.floatTrueMin(f64), 1.0, std.math.floatMax(f64), std.math.inf(f64), std.math.nan(f64) };
    for (f[0 .. f.len - 1], f[1..]) |a, b| try testing.expect(radixKey(f64, a) < radixKey(f64, b));
    try testing.expectEqual(radixKey(f64, 0.0), radixKey(f64, -0.0));
    try testing.expectEqual(radixKey(f64, std.math.nan(f64)), radixKey(f64, nan_neg));
    try testing.expectEqual(radixKey(f64, std.math.nan(f64)), radixKey(f64, nan_sig));
    try testing.expectEqual(radixKey(f32, 0.0), radixKey(f32, -0.0));
    try testing.expectEqual(radixKey(f32, std.math.nan(f32)), radixKey(f32, -std.math.nan(f32)));
    try testing.expect(radixKey(f32, std.math.inf(f32)) < radixKey(f32, -std.math.nan(f32)));
    const i = [_]i64{ std.math.minInt(i64), -1, 0, 1, std.math.maxInt(i64) };
    for (i[0 .. i.len - 1], i[1..]) |a, b| try testing.expect(radixKey(i64, a) < radixKey(i64, b));
    try testing.expect(radixKey(i32, -1) < radixKey(i32, 0));
    try testing.expect(radixKey(u32, 1 << 31) > radixKey(u32, 1));
}

/// Input of one shape for the radix tests, as the bits of T (U: the unsigned type of that width).
fn radixInput(comptime T: type, x: []T, rng: std.Random, shape: usize) void {
    const U = RadixKey(T);
    const bits = @bitSizeOf(T);
    const float = @typeInfo(T) == .float;
    const specials: []const T = if (float) &[_]T{
        std.math.nan(T),
        -std.math.nan(T),
        @bitCast(@as(U, std.math.maxInt(U))), // negative NaN, every payload bit set
        @bitCast(@as(U, std.math.maxInt(U) >> 1)), // positive NaN, every payload bit set
        @bitCast((@as(U, std.math.maxInt(U)) >> 1) ^ (@as(U, 1) << (std.math.floatMantissaBits(T) - 1)) | 1), // signalling NaN
        0.0,
        -0.0,
        std.math.inf(T),
        -std.math.inf(T),
        std.math.floatMax(T),
        -std.math.floatMax(T),
        std.math.floatTrueMin(T),
        -std.math.floatTrueMin(T),
        std.math.floatMin(T),
        -1.0,
    } else &[_]T{ std.math.minInt(T), std.math.maxInt(T), 0, 1, std.math.maxInt(T) - 1, if (@typeInfo(T).int.signedness == .signed) -1 else 1 << (bits - 1) };
    // Negative: a float's key then flips every bit, an int's only the top one.
    const bottom_base: U = @bitCast(if (float) -std.math.floatMax(T) else @as(T, std.math.minInt(T)));
    for (x) |*v| {
        const r = rng.int(U);
        v.* = switch (shape) {
            0 => @bitCast(r), // any bits: NaN of every payload and sign among the floats
            1 => specials[rng.uintLessThan(usize, specials.len)], // mostly specials ...
            2 => @bitCast(r & (@as(U, 0xff) << (bits - 8))), // only the top digit differs
            3 => @bitCast((bottom_base & ~@as(U, 0xff)) | (r & 0xff)), // only the bottom digit
            4 => if (float) (if (r & 1 == 0) 0.0 else -0.0) else @bitCast(r & 3), // signed zeros
            5 => @bitCast(r & (@as(U, 3) << (bits / 2))), // few keys, one middle digit
            else => if (float) @floatCast(rng.float(f64) * 200.0 - 100.0) else @bitCast(r),
        };
        // ... among random values
        if (shape == 1 and r >> (bits - 1) == 0) v.* = @bitCast(rng.int(U));
    }
    // Finite floats but for one NaN or one -0.0 between +0.0s, in some chunk: the first count
    // must see it (the keys without those cases would put it elsewhere).
    if (float and shape >= 7 and x.len >= 3) {
        const at = rng.uintLessThan(usize, x.len - 2);
        if (shape == 7) {
            x[at] = 0.0;
            x[at + 1] = -0.0;
            x[x.len - 1] = 0.0;
        } else {
            x[at] = @bitCast(@as(U, std.math.maxInt(U)) ^ 2); // a negative NaN
        }
    }
}

fn checkRadix(comptime T: type, dtype: u32, rng: std.Random) !void {
    const lens = [_]usize{ radixMin(T, T) - 1, radixMin(T, T), radixMin(Keyed(T), T) - 1, radixMin(Keyed(T), T), radix_wide_min - 1, radix_wide_min, radix_chunk - 1, radix_chunk + 1, 3 * radix_chunk + 11 };
    for (lens) |n| {
        for (0..9) |shape| {
            const x = try alloc.alloc(T, n);
            defer alloc.free(x);
            radixInput(T, x, rng, shape);
            const ref = try alloc.alloc(i64, n);
            defer alloc.free(ref);
            refArgsortFast(T, x, ref);
            const sorted = try alloc.alloc(T, n);
            defer alloc.free(sorted);
            const copy = try alloc.alloc(T, n);
            defer alloc.free(copy);
            const idx = try alloc.alloc(i64, n);
            defer alloc.free(idx);
            for ([_]usize{ 1, 2, 4 }) |t| {
                setThreads(t);
                try testing.expectEqual(c.OK, c.call(argsort, .{ dtype, addr(x), addr(idx), n }));
                try testing.expectEqualSlices(i64, ref, idx);
                try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(x), addr(sorted), n }));
                for (ref, sorted) |r, s| try testing.expectEqual(@as(RadixKey(T), @bitCast(x[@intCast(r)])), @as(RadixKey(T), @bitCast(s)));
                @memcpy(copy, x);
                try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(copy), addr(copy), n }));
                try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(sorted), std.mem.sliceAsBytes(copy)));
            }
        }
    }
    setThreads(1);
}

test "sort and argsort by radix: numpy's stable order bit for bit (NaN payloads, signed zeros, extremes, one digit)" {
    var prng = std.Random.DefaultPrng.init(19);
    const rng = prng.random();
    // The default digits (wide from radix_wide_min: these inputs are small), then narrow ones.
    defer radix_wide_max = 4 << 20;
    for ([_]usize{ 4 << 20, 0 }) |wide_max| {
        radix_wide_max = wide_max;
        try checkRadix(f64, 0, rng);
        try checkRadix(f32, 1, rng);
        try checkRadix(i32, 2, rng);
        try checkRadix(i64, 3, rng);
        try checkRadix(u32, 4, rng);
        try checkRadix(u64, 5, rng);
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

test "cancel in the middle of an in-place merge sort keeps every element" {
    if (!@hasDecl(rt.platform, "native_host_poll")) return error.SkipZigTest;
    // The merge sort still runs short input and input whose radix counts find no memory.
    radix_min_override = std.math.maxInt(usize);
    defer radix_min_override = null;
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
    for ([_]usize{ 0, 1, 2, 3, 5, 8, 13, 21 }) |after| {
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

var polls_made: usize = 0;
fn pollCounts() i32 {
    polls_made += 1;
    return 0;
}

/// Cancel the sort of x at its first poll, its second, ... past the last: each call leaves out
/// holding a permutation of x, or the answer when it ended first.
fn checkCancelSweep(comptime T: type, dtype: u32, x: []T, in_place: bool) !void {
    const U = RadixKey(T);
    const n = x.len;
    const want = try alloc.alloc(U, n);
    defer alloc.free(want);
    for (x, want) |v, *w| w.* = @bitCast(v);
    std.mem.sort(U, want, {}, std.sort.asc(U));
    const ref = try alloc.alloc(i64, n);
    defer alloc.free(ref);
    refArgsortFast(T, x, ref);
    const out = try alloc.alloc(T, n);
    defer alloc.free(out);
    const got = try alloc.alloc(U, n);
    defer alloc.free(got);
    defer rt.platform.native_host_poll = null;
    const src = if (in_place) out else x;
    // How often an uncancelled sort polls the host (with two threads it varies with who ran
    // which task: the sweep goes a little past it).
    polls_made = 0;
    @memcpy(out, x);
    rt.platform.native_host_poll = &pollCounts;
    try testing.expectEqual(c.OK, c.call(sort, .{ dtype, addr(src), addr(out), n }));
    const total = polls_made;
    try testing.expect(total >= 3); // at least once a pass
    var cancelled: usize = 0;
    for (0..total + 2) |after| {
        @memcpy(out, x);
        polls_left = after;
        rt.platform.native_host_poll = &pollCancelsLater;
        const st = c.call(sort, .{ dtype, addr(src), addr(out), n });
        rt.platform.native_host_poll = null;
        setCancel(0);
        for (out, got) |v, *g| g.* = @bitCast(v);
        if (st == c.OK) {
            for (ref, got) |r, g| try testing.expectEqual(@as(U, @bitCast(x[@intCast(r)])), g);
        } else {
            try testing.expectEqual(c.E_CANCELED, st);
            cancelled += 1;
            std.mem.sort(U, got, {}, std.sort.asc(U));
            try testing.expectEqualSlices(U, want, got);
        }
    }
    try testing.expect(cancelled + 2 >= total);
}

test "cancel at any poll of a radix sort leaves a permutation, in place or not" {
    if (!@hasDecl(rt.platform, "native_host_poll")) return error.SkipZigTest;
    const n = 5 * radix_chunk + 123;
    var prng = std.Random.DefaultPrng.init(23);
    const xf = try alloc.alloc(f64, n);
    defer alloc.free(xf);
    radixInput(f64, xf, prng.random(), 0); // no pass skipped
    const xi = try alloc.alloc(i32, n);
    defer alloc.free(xi);
    radixInput(i32, xi, prng.random(), 0);
    defer radix_wide_max = 4 << 20;
    // 11-bit digits on one thread, 8-bit ones on two. int32 in 11-bit digits takes three
    // passes: the answer is copied back from the scratch, and polls land in that copy too.
    for ([_]usize{ 4 << 20, 0 }, [_]usize{ 1, 2 }) |wide_max, t| {
        radix_wide_max = wide_max;
        setThreads(t);
        for ([_]bool{ false, true }) |in_place| {
            try checkCancelSweep(f64, 0, xf, in_place);
            try checkCancelSweep(i32, 2, xi, in_place);
        }
    }
    setThreads(1);
}

test "cancel while the presorted check copies x: out still holds a permutation of x" {
    if (!@hasDecl(rt.platform, "native_host_poll")) return error.SkipZigTest;
    // 17 classify tasks on one thread: one of them is the caller's 16th, where it polls.
    const n = 17 * linear_chunk + 5;
    const x = try alloc.alloc(i32, n);
    defer alloc.free(x);
    var prng = std.Random.DefaultPrng.init(29);
    for (x) |*v| v.* = prng.random().int(i32);
    const want = try alloc.dupe(i32, x);
    defer alloc.free(want);
    std.mem.sort(i32, want, {}, std.sort.asc(i32));
    const out = try alloc.alloc(i32, n);
    defer alloc.free(out);
    setThreads(1);
    defer rt.platform.native_host_poll = null;
    // The first key above the last: the copy goes reversed; then below it: in order.
    for ([_]i32{ std.math.maxInt(i32), std.math.minInt(i32) }) |first| {
        x[0] = first;
        @memset(out, 7);
        polls_left = 0;
        rt.platform.native_host_poll = &pollCancelsLater;
        const st = c.call(sort, .{ 2, addr(x), addr(out), n });
        rt.platform.native_host_poll = null;
        setCancel(0);
        try testing.expectEqual(c.E_CANCELED, st);
        std.mem.sort(i32, out, {}, std.sort.asc(i32));
        const got = try alloc.dupe(i32, x);
        defer alloc.free(got);
        std.mem.sort(i32, got, {}, std.sort.asc(i32));
        try testing.expectEqualSlices(i32, got, out);
    }
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
