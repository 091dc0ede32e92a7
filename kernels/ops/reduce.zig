// Reductions (sum, min, max, mean) and dot, deterministic for any thread count.
// Float sum and mean follow numpy's summation order exactly (its pairwise sum, in the array's
// dtype), so they are bit-identical to numpy's; the top of that tree runs as parallel tasks.
// Integer sums are exact in any order, min/max are exact; dot, int sums and min/max reduce
// fixed 4096-element blocks (SIMD lanes, a fixed lane tree) combined by c.pairwiseCombine.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

pub const Op = enum(u32) { sum = 0, min = 1, max = 2, mean = 3 };

/// Width of the block accumulators; 8 f64 lanes are four simd128 registers.
const lanes = 8;

/// Per-block partial result of dot, min and max (and int sums): f64 for float inputs, u64 for
/// unsigned ints (numpy sums uint32 and uint64 as uint64), i64 for signed ints; ints wrap.
fn Acc(comptime T: type) type {
    return if (@typeInfo(T) == .float) f64 else c.Wide(T);
}

fn addAcc(comptime A: type) fn (A, A) A {
    return struct {
        fn f(a: A, b: A) A {
            return if (A == f64) a + b else a +% b;
        }
    }.f;
}

/// Fixed lane tree: (l0+l4)+(l2+l6) + (l1+l5)+(l3+l7).
fn laneSum(v: @Vector(lanes, f64)) f64 {
    const a: [lanes]f64 = v;
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/// Wrapping integer sum of one block (integer sums are exact in any order).
fn blockIntSum(comptime T: type, x: []align(1) const T) c.Wide(T) {
    var s: c.Wide(T) = 0;
    for (x) |v| s +%= @as(c.Wide(T), v);
    return s;
}

fn blockDot(comptime T: type, x: []align(1) const T, y: []align(1) const T) Acc(T) {
    if (Acc(T) == f64) {
        const V = @Vector(lanes, f64);
        var acc: V = @splat(0.0);
        var i: usize = 0;
        while (i + lanes <= x.len) : (i += lanes) {
            acc += toF64Vec(T, x[i..][0..lanes].*) * toF64Vec(T, y[i..][0..lanes].*);
        }
        var s = laneSum(acc);
        while (i < x.len) : (i += 1) s += toF64(T, x[i]) * toF64(T, y[i]);
        return s;
    } else {
        const A = Acc(T);
        var s: A = 0;
        for (x, y) |a, b| s +%= @as(A, a) *% @as(A, b);
        return s;
    }
}

fn toF64(comptime T: type, v: T) f64 {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

fn toF64Vec(comptime T: type, v: [lanes]T) @Vector(lanes, f64) {
    const tv: @Vector(lanes, T) = v;
    return if (@typeInfo(T) == .float) @floatCast(tv) else @floatFromInt(tv);
}

/// IEEE 754-2019 minimum / maximum of two non-NaN floats: -0.0 < +0.0, so the result does not
/// depend on the order equal zeros come in (numpy's does). Equal values have equal bits except
/// for zeros, where OR of the bits gives -0.0 (min) and AND gives +0.0 (max).
inline fn pick(comptime T: type, comptime is_min: bool, a: T, b: T) T {
    if (a != b) return if ((a < b) == is_min) a else b;
    const U = @Int(.unsigned, @bitSizeOf(T));
    const ua: U = @bitCast(a);
    const ub: U = @bitCast(b);
    return @bitCast(if (is_min) ua | ub else ua & ub);
}

/// min or max of one non-empty block; floats propagate NaN like numpy, zeros as `pick`.
fn blockExtreme(comptime T: type, comptime is_min: bool, x: []align(1) const T) Acc(T) {
    if (@typeInfo(T) == .float) {
        const V = @Vector(lanes, T);
        const U = @Vector(lanes, @Int(.unsigned, @bitSizeOf(T)));
        var best: V = @splat(x[0]);
        var nan: @Vector(lanes, bool) = @splat(false);
        var i: usize = 0;
        while (i + lanes <= x.len) : (i += lanes) {
            const v: V = x[i..][0..lanes].*;
            nan = nan | (v != v);
            const vb: U = @bitCast(v);
            const bb: U = @bitCast(best);
            const equal: V = @bitCast(if (is_min) vb | bb else vb & bb);
            best = @select(T, if (is_min) v < best else v > best, v, @select(T, v == best, equal, best));
        }
        if (@reduce(.Or, nan)) return std.math.nan(f64);
        const lanes_of: [lanes]T = best;
        var r: T = lanes_of[0];
        for (lanes_of[1..]) |l| r = pick(T, is_min, r, l);
        while (i < x.len) : (i += 1) {
            const v = x[i];
            if (v != v) return std.math.nan(f64);
            r = pick(T, is_min, r, v);
        }
        return r;
    } else {
        var r: T = x[0];
        for (x) |v| r = if (is_min) @min(r, v) else @max(r, v);
        return r;
    }
}

fn extremeCombine(comptime A: type, comptime is_min: bool) fn (A, A) A {
    return struct {
        fn f(a: A, b: A) A {
            if (A == f64) {
                if (a != a or b != b) return std.math.nan(f64);
                return pick(f64, is_min, a, b);
            }
            return if (is_min) @min(a, b) else @max(a, b);
        }
    }.f;
}

/// Reduce `nb` blocks with `ctx.block(b) -> A` in parallel and combine the partials with the
/// fixed pairwise tree. Returns null when scratch memory is exhausted.
fn reduceBlocks(comptime A: type, nb: usize, ctx: anytype, comptime combine: fn (A, A) A) ?A {
    if (nb == 1) return ctx.block(0);
    const parts = c.scratch(A, nb) orelse return null;
    defer c.freeScratch(parts);
    const Body = struct {
        ctx: @TypeOf(ctx),
        parts: []A,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |b| self.parts[b] = self.ctx.block(b);
        }
    };
    var body: Body = .{ .ctx = ctx, .parts = parts };
    // 4 blocks (16K elements) a chunk at least: a few microseconds of work per task.
    rt.parallelFor(nb, 4, &body);
    if (rt.cancelled()) return @as(A, 0);
    return c.pairwiseCombine(A, parts, combine);
}

fn blockSlice(comptime T: type, x: []align(1) const T, b: usize) []align(1) const T {
    const lo = b * c.block_len;
    return x[lo..@min(x.len, lo + c.block_len)];
}

// ---- numpy's pairwise sum ------------------------------------------------------------------
// numpy sums a float array (contiguous, or one strided run) as T(0) + pw(x) in the array's
// dtype T (float32 in float32), where pw is @TYPE@_pairwise_sum of
// numpy/_core/src/umath/loops_utils.h.src:
//   n < 8:    r = 0; r += x[i] in order
//   n <= 128: r[0..8] = x[0..8]; r[j] += x[i + j] for i = 8, 16, .. < n - n % 8;
//             res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)); res += x[i] for the tail
//   else:     n2 = n / 2 - (n / 2) % 8; pw(x[0..n2]) + pw(x[n2..n])
// Casting reductions (numpy's mean of an int array sums as float64) go through numpy's
// 8192-element buffer: acc = 0; acc += pw(cast(chunk)) chunk by chunk.

/// numpy's PW_BLOCKSIZE: subtrees up to this long are one leaf with 8 accumulators.
const pw_block: usize = 128;
/// numpy's default buffer size (np.getbufsize()): the chunk of a casting reduction.
pub const numpy_buffer: usize = 8192;
/// Subtrees of the pairwise tree up to this long run as one parallel task (tens of
/// microseconds of work). The tree's shape depends only on n, never on the thread count.
const pw_task: usize = 1 << 15;

/// Where pw splits n (> pw_block) elements: half, rounded down to a multiple of 8.
inline fn pwSplit(n: usize) usize {
    const half = n / 2;
    return half - half % 8;
}

inline fn cast(comptime T: type, comptime A: type, v: T) A {
    if (T == A) return v;
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

/// Eight elements from x[i..], converted to A: the lanes r0..r7 (four f64x2 or two f32x4
/// registers on wasm simd128).
inline fn load8(comptime T: type, comptime A: type, x: []align(1) const T, i: usize) @Vector(8, A) {
    const v: @Vector(8, T) = x[i..][0..8].*;
    if (T == A) return v;
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

/// pw of at most pw_block elements. A vector add adds each lane on its own, so r0..r7 get
/// exactly numpy's sequence of additions.
fn pwLeaf(comptime T: type, comptime A: type, x: []align(1) const T) A {
    const n = x.len;
    if (n < 8) {
        var r: A = 0;
        for (x) |v| r += cast(T, A, v);
        return r;
    }
    var r = load8(T, A, x, 0);
    var i: usize = 8;
    const full = n - n % 8;
    while (i < full) : (i += 8) r += load8(T, A, x, i);
    // numpy's combine of the 8 accumulators r0..r7
    const l: [8]A = r;
    var res = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    while (i < n) : (i += 1) res += cast(T, A, x[i]);
    return res;
}

/// numpy's pw over x, sequentially.
fn pairwise(comptime T: type, comptime A: type, x: []align(1) const T) A {
    if (x.len <= pw_block) return pwLeaf(T, A, x);
    const n2 = pwSplit(x.len);
    return pairwise(T, A, x[0..n2]) + pairwise(T, A, x[n2..]);
}

/// The subtrees of pw's tree that are parallel tasks: the maximal ones of at most pw_task
/// elements, left to right, as offsets (lengths follow from the next offset).
fn pwTaskCount(n: usize) usize {
    if (n <= pw_task) return 1;
    const n2 = pwSplit(n);
    return pwTaskCount(n2) + pwTaskCount(n - n2);
}

fn pwTaskOffsets(lo: usize, n: usize, offsets: []usize, next: *usize) void {
    if (n <= pw_task) {
        offsets[next.*] = lo;
        next.* += 1;
        return;
    }
    const n2 = pwSplit(n);
    pwTaskOffsets(lo, n2, offsets, next);
    pwTaskOffsets(lo + n2, n - n2, offsets, next);
}

/// Adds the task partials up the tree above them, as pw adds its two halves.
fn pwCombine(comptime A: type, n: usize, parts: []const A, next: *usize) A {
    if (n <= pw_task) {
        next.* += 1;
        return parts[next.* - 1];
    }
    const n2 = pwSplit(n);
    const left = pwCombine(A, n2, parts, next);
    return left + pwCombine(A, n - n2, parts, next);
}

/// numpy's pw over x in A, the subtrees computed in parallel. Null: no scratch memory.
fn parallelPairwise(comptime T: type, comptime A: type, x: []align(1) const T) ?A {
    if (x.len <= pw_task) return pairwise(T, A, x);
    const tasks = pwTaskCount(x.len);
    const offsets = c.scratch(usize, tasks + 1) orelse return null;
    defer c.freeScratch(offsets);
    const parts = c.scratch(A, tasks) orelse return null;
    defer c.freeScratch(parts);
    var filled: usize = 0;
    pwTaskOffsets(0, x.len, offsets, &filled);
    offsets[tasks] = x.len;
    const Body = struct {
        x: []align(1) const T,
        offsets: []const usize,
        parts: []A,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |t| {
                self.parts[t] = pairwise(T, A, self.x[self.offsets[t]..self.offsets[t + 1]]);
            }
        }
    };
    var body: Body = .{ .x = x, .offsets = offsets, .parts = parts };
    rt.parallelFor(tasks, 1, &body);
    if (rt.cancelled()) return 0;
    var used: usize = 0;
    return pwCombine(A, x.len, parts, &used);
}

/// numpy's casting sum into f64: acc = 0; acc += pw(chunk) over numpy_buffer-long chunks in
/// order (the chunks' pw in parallel). Null: no scratch memory.
fn bufferedSumF64(comptime T: type, x: []align(1) const T) ?f64 {
    const chunks = x.len / numpy_buffer + @intFromBool(x.len % numpy_buffer != 0);
    if (chunks <= 1) return 0.0 + pairwise(T, f64, x);
    const parts = c.scratch(f64, chunks) orelse return null;
    defer c.freeScratch(parts);
    const Body = struct {
        x: []align(1) const T,
        parts: []f64,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |k| {
                const s = k * numpy_buffer;
                self.parts[k] = pairwise(T, f64, self.x[s..@min(self.x.len, s + numpy_buffer)]);
            }
        }
    };
    var body: Body = .{ .x = x, .parts = parts };
    rt.parallelFor(chunks, 4, &body);
    if (rt.cancelled()) return 0;
    var acc: f64 = 0.0;
    for (parts) |p| acc += p;
    return acc;
}

/// numpy's sum of a float array: T(0) + pw(x) in T (an empty sum is +0.0, and so is a sum of
/// -0.0s), widened to f64 for the ABI's 8-byte result (exact for float32).
fn floatSum(comptime T: type, x: []align(1) const T) ?f64 {
    const pw = parallelPairwise(T, T, x) orelse return null;
    return @as(T, 0) + pw;
}

/// numpy's mean: the sum (in T for floats, numpy's buffered float64 sum for ints) divided by
/// n in float64 (numpy divides by an intp count, which promotes float32 to float64), then
/// rounded to T for floats. NaN for no elements.
fn meanOf(comptime T: type, x: []align(1) const T) ?f64 {
    const total: f64 = if (@typeInfo(T) == .float)
        floatSum(T, x) orelse return null
    else
        bufferedSumF64(T, x) orelse return null;
    const q = total / @as(f64, @floatFromInt(x.len));
    return if (@typeInfo(T) == .float) @as(T, @floatCast(q)) else q;
}

fn reduceTyped(comptime T: type, comptime op: Op, x: []align(1) const T, out: usize) i32 {
    const nb = c.blockCount(x.len);
    const A = Acc(T);
    switch (op) {
        .sum => {
            if (@typeInfo(T) == .float) {
                c.slice(f64, out, 1)[0] = floatSum(T, x) orelse return c.E_NOMEM;
                return c.OK;
            }
            const Ctx = struct {
                x: []align(1) const T,
                fn block(self: @This(), b: usize) A {
                    return blockIntSum(T, blockSlice(T, self.x, b));
                }
            };
            const total: A = if (nb == 0) 0 else reduceBlocks(A, nb, Ctx{ .x = x }, addAcc(A)) orelse
                return c.E_NOMEM;
            c.slice(A, out, 1)[0] = total;
        },
        .mean => c.slice(f64, out, 1)[0] = meanOf(T, x) orelse return c.E_NOMEM,
        .min, .max => {
            if (x.len == 0) return c.E_EMPTY;
            const result = extremeOf(T, op == .min, x, nb);
            c.slice(A, out, 1)[0] = result orelse return c.E_NOMEM;
        },
    }
    return c.OK;
}

fn extremeOf(comptime T: type, comptime is_min: bool, x: []align(1) const T, nb: usize) ?Acc(T) {
    const Ctx = struct {
        x: []align(1) const T,
        fn block(self: @This(), b: usize) Acc(T) {
            return blockExtreme(T, is_min, blockSlice(T, self.x, b));
        }
    };
    return reduceBlocks(Acc(T), nb, Ctx{ .x = x }, extremeCombine(Acc(T), is_min));
}

/// jr_reduce(op, dtype, x, n, out): see kernels/ABI.md.
pub fn reduce(op_code: u32, dtype_code: u32, x: usize, n: usize, out: usize) i32 {
    const op = std.enums.fromInt(Op, op_code) orelse return c.E_INVAL;
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, 1, 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| switch (op) {
            inline else => |o| reduceTyped(d.Type(), o, c.slice(d.Type(), x, n), out),
        },
    };
}

/// jr_dot(dtype, x, y, n, out): sum of x[i]*y[i], blocks and tree as for sum.
pub fn dot(dtype_code: u32, x: usize, y: usize, n: usize, out: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const yr = c.byteRange(y, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, 1, 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr) or yr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline else => |d| dotTyped(d.Type(), c.slice(d.Type(), x, n), c.slice(d.Type(), y, n), out),
    };
}

fn dotTyped(comptime T: type, x: []align(1) const T, y: []align(1) const T, out: usize) i32 {
    const A = Acc(T);
    const Ctx = struct {
        x: []align(1) const T,
        y: []align(1) const T,
        fn block(self: @This(), b: usize) A {
            return blockDot(T, blockSlice(T, self.x, b), blockSlice(T, self.y, b));
        }
    };
    const nb = c.blockCount(x.len);
    // numpy's dot of one pair is that product (-0.0 stays -0.0); longer sums start from +0.0
    // as numpy's do. A float32 product is exact in f64.
    if (A == f64 and x.len == 1) {
        c.slice(A, out, 1)[0] = toF64(T, x[0]) * toF64(T, y[0]);
        return c.OK;
    }
    const total: A = if (nb == 0) 0 else reduceBlocks(A, nb, Ctx{ .x = x, .y = y }, addAcc(A)) orelse
        return c.E_NOMEM;
    c.slice(A, out, 1)[0] = total;
    return c.OK;
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
/// What the reductions of T write: f64 for floats, u64 for unsigned ints, i64 for signed ints.
const Ref = Acc;

/// numpy's pairwise sum written plainly (loops_utils.h.src, @TYPE@_pairwise_sum): scalar
/// accumulators r0..r7 in A, recursion on halves rounded down to a multiple of 8.
fn refPw(comptime T: type, comptime A: type, x: []const T) A {
    const n = x.len;
    if (n < 8) {
        var r: A = 0;
        for (x) |v| r += refTo(T, A, v);
        return r;
    }
    if (n <= 128) {
        var r: [8]A = undefined;
        for (0..8) |j| r[j] = refTo(T, A, x[j]);
        var i: usize = 8;
        while (i < n - n % 8) : (i += 8) {
            for (0..8) |j| r[j] += refTo(T, A, x[i + j]);
        }
        var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while (i < n) : (i += 1) res += refTo(T, A, x[i]);
        return res;
    }
    var n2 = n / 2;
    n2 -= n2 % 8;
    return refPw(T, A, x[0..n2]) + refPw(T, A, x[n2..]);
}

fn refTo(comptime T: type, comptime A: type, v: T) A {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

/// numpy's np.sum: T(0) + pw(x) in T for floats; exact wrapping sums for ints.
fn referenceSum(comptime T: type, x: []const T) Ref(T) {
    if (@typeInfo(T) == .float) return @as(T, 0) + refPw(T, T, x);
    var s: Ref(T) = 0;
    for (x) |v| s +%= @as(Ref(T), v);
    return s;
}

/// numpy's np.mean: floats sum in T, ints in f64 through 8192-element buffers (acc += pw of
/// each), divided by n in f64 and rounded to T for floats.
fn referenceMean(comptime T: type, x: []const T) f64 {
    const total: f64 = if (@typeInfo(T) == .float) referenceSum(T, x) else blk: {
        var acc: f64 = 0;
        var lo: usize = 0;
        while (lo < x.len) : (lo += 8192) acc += refPw(T, f64, x[lo..@min(x.len, lo + 8192)]);
        break :blk acc;
    };
    const q = total / @as(f64, @floatFromInt(x.len));
    return if (@typeInfo(T) == .float) @as(T, @floatCast(q)) else q;
}

/// Equal values, or both NaN.
fn expectSame(want: f64, got: f64) !void {
    if (std.math.isNan(want) and std.math.isNan(got)) return;
    try testing.expectEqual(want, got);
}

fn refToF64(comptime T: type, v: T) f64 {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

fn checkReduce(comptime T: type, dtype: u32, rng: std.Random) !void {
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        var first_sum: ?Ref(T) = null;
        for (thread_counts) |t| {
            setThreads(t);
            var out: [1]Ref(T) = undefined;
            try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
            // bit-identical to numpy's order (floats) or the exact sum (ints), every thread count
            try testing.expectEqual(referenceSum(T, x), out[0]);
            if (first_sum) |f| try testing.expectEqual(f, out[0]) else first_sum = out[0];
        }
        // against a plain sequential sum
        var naive: Ref(T) = 0;
        var lo: Ref(T) = if (n > 0) x[0] else 0;
        var hi: Ref(T) = lo;
        var abs_sum: f64 = 0;
        for (x) |v| {
            if (Ref(T) == f64) naive += v else naive +%= v;
            lo = @min(lo, v);
            hi = @max(hi, v);
            abs_sum += @abs(@as(f64, if (@typeInfo(T) == .float) v else @floatFromInt(v)));
        }
        var out: [1]Ref(T) = undefined;
        try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
        if (Ref(T) == f64) {
            // pairwise in the dtype: within a few eps * log2(n) * sum |x|
            const eps: f64 = if (T == f32) 1e-5 else 1e-12;
            try testing.expectApproxEqAbs(naive, out[0], eps * abs_sum + 1e-300);
        } else {
            try testing.expectEqual(naive, out[0]);
        }
        var mean: [1]f64 = undefined;
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 3, dtype, addr(x), n, addr(&mean) }));
            if (n == 0) try testing.expect(std.math.isNan(mean[0])) else try testing.expectEqual(referenceMean(T, x), mean[0]);
        }
        if (n == 0) {
            try testing.expectEqual(c.E_EMPTY, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
            try testing.expectEqual(c.E_EMPTY, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
        } else {
            try testing.expectEqual(c.OK, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
            try testing.expectEqual(lo, out[0]);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
            try testing.expectEqual(hi, out[0]);
        }
    }
}

test "reduce sum/mean/min/max match references for all dtypes, sizes and thread counts" {
    var prng = std.Random.DefaultPrng.init(1);
    const rng = prng.random();
    try checkReduce(f64, 0, rng);
    try checkReduce(f32, 1, rng);
    try checkReduce(i32, 2, rng);
    try checkReduce(i64, 3, rng);
    try checkReduce(u32, 4, rng);
    try checkReduce(u64, 5, rng);
    setThreads(1);
}

test "reduce: NaN propagates through min/max/sum; inf is ordinary" {
    for ([_]usize{ 1, 5, 8, 9, 4096, 4097, 20011 }) |n| {
        for ([_]usize{ 0, n / 2, n - 1 }) |pos| {
            const x = try alloc.alloc(f64, n);
            defer alloc.free(x);
            for (x, 0..) |*v, i| v.* = @floatFromInt(i);
            x[pos] = std.math.nan(f64);
            var out: [1]f64 = undefined;
            for ([_]u32{ 0, 1, 2, 3 }) |op| {
                try testing.expectEqual(c.OK, c.call(reduce, .{ op, 0, addr(x), n, addr(&out) }));
                try testing.expect(std.math.isNan(out[0]));
            }
            x[pos] = -std.math.inf(f64);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 0, addr(x), n, addr(&out) }));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
            try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 0, addr(x), n, addr(&out) }));
            try testing.expectEqual(-std.math.inf(f64), out[0]);
        }
    }
    // float32 NaN too, written as f64 NaN
    var y = [_]f32{ 1, 2, std.math.nan(f32), 4, 5, 6, 7, 8, 9 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 1, addr(&y), y.len, addr(&out) }));
    try testing.expect(std.math.isNan(out[0]));
}

test "reduce: int sums wrap like numpy int64" {
    var x = [_]i64{ std.math.maxInt(i64), 1, 5 };
    var out: [1]i64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 3, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(std.math.minInt(i64) + 5, out[0]);
}

test "reduce: unsigned ints are numpy's uint64: sums wrap modulo 2^64, extremes compare unsigned" {
    const big: u64 = std.math.maxInt(u64);
    var x = [_]u64{ big, 2, 1 << 63, 5 };
    var out: [1]u64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(@as(u64, (1 << 63) + 6), out[0]); // big + 2 wraps to 1; + 2^63 + 5
    try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(@as(u64, 2), out[0]);
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 5, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(big, out[0]); // above 2^63: the largest, not negative
    var mean: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 3, 5, addr(&x), x.len, addr(&mean) }));
    try testing.expectEqual((18446744073709551615.0 + 2.0 + 9223372036854775808.0 + 5.0) / 4.0, mean[0]);
    // uint32 sums are uint64 (numpy's dtype): no wrap at 32 bits
    const u = try alloc.alloc(u32, 10_000);
    defer alloc.free(u);
    @memset(u, std.math.maxInt(u32));
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 4, addr(u), u.len, addr(&out) }));
        try testing.expectEqual(@as(u64, 10_000) * std.math.maxInt(u32), out[0]);
        try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 4, addr(u), u.len, addr(&out) }));
        try testing.expectEqual(@as(u64, std.math.maxInt(u32)), out[0]);
    }
    setThreads(1);
    // dot of uint64 wraps modulo 2^64
    var y = [_]u64{ 2, 3, 2, 1 };
    try testing.expectEqual(c.OK, c.call(dot, .{ 5, addr(&x), addr(&y), x.len, addr(&out) }));
    // big*2 = 2^64 - 2, + 2*3, + 2^63*2 = 2^64, + 5*1: 9 modulo 2^64
    try testing.expectEqual(@as(u64, 9), out[0]);
}

test "reduce: float32 sums and means accumulate in float32, as numpy's" {
    // 2^24 + 1 is not a float32: each + 1 rounds back to 2^24 (np.sum gives 16777216.0)
    var x = [_]f32{ 16777216.0, 1.0, 1.0, 1.0 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 1, addr(&x), x.len, addr(&out) }));
    try testing.expectEqual(@as(f64, 16777216.0), out[0]);
    // partial sums beyond float32's range are inf, as numpy's (float64 would stay finite)
    var big = [_]f32{ 3e38, 3e38, -3e38, -3e38 };
    try testing.expectEqual(c.OK, c.call(reduce, .{ 0, 1, addr(&big), big.len, addr(&out) }));
    // in order: 3e38 + 3e38 overflows to inf and stays inf (np.sum: inf; float64 would give 0)
    try testing.expectEqual(std.math.inf(f64), out[0]);
    var mean: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 3, 1, addr(&big), big.len, addr(&mean) }));
    try testing.expectEqual(std.math.inf(f64), mean[0]);
}

fn checkDot(comptime T: type, dtype: u32, rng: std.Random) !void {
    for (sizes) |n| {
        const x = try randomArray(T, rng, n);
        defer alloc.free(x);
        const y = try randomArray(T, rng, n);
        defer alloc.free(y);
        var naive: Ref(T) = 0;
        var mag: f64 = 0;
        for (x, y) |a, b| {
            if (Ref(T) == f64) {
                naive += @as(f64, a) * @as(f64, b);
                mag += @abs(@as(f64, a) * @as(f64, b));
            } else {
                naive +%= @as(Ref(T), a) *% @as(Ref(T), b);
            }
        }
        var first: ?Ref(T) = null;
        for (thread_counts) |t| {
            setThreads(t);
            var out: [1]Ref(T) = undefined;
            try testing.expectEqual(c.OK, c.call(dot, .{ dtype, addr(x), addr(y), n, addr(&out) }));
            if (Ref(T) == f64) {
                try testing.expectApproxEqAbs(naive, out[0], 1e-12 * mag + 1e-300);
            } else {
                try testing.expectEqual(naive, out[0]);
            }
            if (first) |f| try testing.expectEqual(f, out[0]) else first = out[0];
        }
    }
    setThreads(1);
}

test "dot matches a sequential reference and is thread-count independent" {
    var prng = std.Random.DefaultPrng.init(2);
    const rng = prng.random();
    try checkDot(f64, 0, rng);
    try checkDot(f32, 1, rng);
    try checkDot(i32, 2, rng);
    try checkDot(i64, 3, rng);
    try checkDot(u32, 4, rng);
    try checkDot(u64, 5, rng);
}

fn isNegZero(v: f64) bool {
    return v == 0 and std.math.signbit(v);
}

fn checkSignedZeros(comptime T: type, dtype: u32) !void {
    var prng = std.Random.DefaultPrng.init(99);
    const rng = prng.random();
    for ([_]usize{ 1, 2, 7, 8, 9, 17, 4097, 100003 }) |n| {
        const x = try alloc.alloc(T, n);
        defer alloc.free(x);
        const ones = try alloc.alloc(T, n);
        defer alloc.free(ones);
        @memset(ones, 1);
        // 0: all -0.0; 1: all +0.0; 2: random signs with at least one of each (n > 1)
        for (0..3) |kind| {
            for (x) |*v| v.* = switch (kind) {
                0 => -0.0,
                1 => 0.0,
                else => if (rng.boolean()) -0.0 else 0.0,
            };
            if (kind == 2) {
                const at = rng.uintLessThan(usize, n);
                x[at] = -0.0;
                if (n > 1) x[(at + 1) % n] = 0.0;
            }
            const has_neg = for (x) |v| {
                if (std.math.signbit(v)) break true;
            } else false;
            const has_pos = for (x) |v| {
                if (!std.math.signbit(v)) break true;
            } else false;
            for (thread_counts) |t| {
                setThreads(t);
                var out: [1]f64 = undefined;
                try testing.expectEqual(c.OK, c.call(reduce, .{ 1, dtype, addr(x), n, addr(&out) }));
                try testing.expectEqual(has_neg, isNegZero(out[0])); // min: -0.0 < +0.0
                try testing.expectEqual(@as(f64, 0), out[0]);
                try testing.expectEqual(c.OK, c.call(reduce, .{ 2, dtype, addr(x), n, addr(&out) }));
                try testing.expectEqual(!has_pos, isNegZero(out[0])); // max: +0.0 > -0.0
                try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
                try testing.expect(!isNegZero(out[0])); // numpy: sum([-0.0]) is 0.0
                try testing.expectEqual(c.OK, c.call(dot, .{ dtype, addr(x), addr(ones), n, addr(&out) }));
                // numpy: dot([-0.0], [1.0]) is -0.0; a longer sum starts from +0.0
                try testing.expectEqual(n == 1 and has_neg, isNegZero(out[0]));
            }
        }
    }
    setThreads(1);
}

test "signed zeros: min/max are IEEE minimum/maximum, sum +0.0, dot of one pair its product" {
    try checkSignedZeros(f64, 0);
    try checkSignedZeros(f32, 1);
    // a zero against negative and positive values: the ordinary answer
    var x = [_]f64{ 0.0, -1.5, -0.0, 2.0 };
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 1, 0, addr(&x), 4, addr(&out) }));
    try testing.expectEqual(@as(f64, -1.5), out[0]);
    try testing.expectEqual(c.OK, c.call(reduce, .{ 2, 0, addr(&x), 4, addr(&out) }));
    try testing.expectEqual(@as(f64, 2.0), out[0]);
}

/// 0, 1, the leaf and task edges of numpy's tree, primes, 10^6.
const numpy_sizes = [_]usize{ 0, 1, 7, 8, 9, 127, 128, 129, 131, 255, 256, 257, 4095, 4097, 8191, 8192, 8193, 32767, 32768, 32769, 65521, 65537, 131071, 1_000_000 };
const numpy_threads = [_]usize{ 1, 2, 3, 4, 8 };

/// Values whose sum's rounding shows any change of order: magnitudes over 2^-20..2^20, both
/// signs; `kind` 1 adds NaN, 2 +-inf, 3 all -0.0, 4 float32-huge values whose partial sums
/// overflow float32 (but not float64).
fn numpyInput(comptime T: type, rng: std.Random, n: usize, kind: u32) ![]T {
    const x = try alloc.alloc(T, n);
    for (x) |*v| {
        const mag = std.math.ldexp(@as(f64, 1.0) + rng.float(f64), rng.intRangeAtMost(i32, -20, 20));
        v.* = @floatCast(if (rng.boolean()) mag else -mag);
    }
    if (n == 0) return x;
    switch (kind) {
        1 => x[rng.uintLessThan(usize, n)] = std.math.nan(T),
        2 => {
            x[rng.uintLessThan(usize, n)] = std.math.inf(T);
            if (rng.boolean()) x[rng.uintLessThan(usize, n)] = -std.math.inf(T);
        },
        3 => @memset(x, -0.0),
        4 => for (x) |*v| {
            v.* = @floatCast(@as(f64, if (rng.uintLessThan(u32, 4) == 0) -3e38 else 3e38) * (0.5 + rng.float(f64) / 2));
        },
        else => {},
    }
    return x;
}

fn checkNumpyOrder(comptime T: type, dtype: u32, rng: std.Random) !void {
    for (numpy_sizes) |n| {
        for (0..5) |kind| {
            const x = try numpyInput(T, rng, n, @intCast(kind));
            defer alloc.free(x);
            const want_sum: f64 = referenceSum(T, x);
            const want_mean: f64 = if (n == 0) std.math.nan(f64) else referenceMean(T, x);
            for (numpy_threads) |t| {
                setThreads(t);
                var out: [1]f64 = undefined;
                try testing.expectEqual(c.OK, c.call(reduce, .{ 0, dtype, addr(x), n, addr(&out) }));
                try expectSame(want_sum, out[0]);
                if (want_sum == 0) try testing.expect(!std.math.signbit(out[0])); // +0.0, as numpy's
                try testing.expectEqual(c.OK, c.call(reduce, .{ 3, dtype, addr(x), n, addr(&out) }));
                try expectSame(want_mean, out[0]);
            }
        }
    }
    setThreads(1);
}

test "float sum and mean are numpy's pairwise order bit for bit, for 1..8 threads" {
    var prng = std.Random.DefaultPrng.init(9);
    const rng = prng.random();
    try checkNumpyOrder(f64, 0, rng);
    try checkNumpyOrder(f32, 1, rng);
    // the reference itself, on np.sum(np.arange(1, 10, dtype=float32) / 3): numpy's eight
    // accumulators combined as a tree, then the tail
    var thirds: [9]f32 = undefined;
    for (&thirds, 1..) |*v, i| v.* = @as(f32, @floatFromInt(i)) / 3.0;
    var tree: [9]f32 = undefined;
    @memcpy(&tree, &thirds);
    const r = ((tree[0] + tree[1]) + (tree[2] + tree[3])) + ((tree[4] + tree[5]) + (tree[6] + tree[7]));
    try testing.expectEqual(@as(f32, 0) + (r + tree[8]), refPw(f32, f32, &thirds));
}

test "int means are numpy's float64 sums in 8192-element buffers" {
    var prng = std.Random.DefaultPrng.init(10);
    const rng = prng.random();
    inline for (.{ i32, i64, u32, u64 }, .{ 2, 3, 4, 5 }) |T, dtype| {
        for (numpy_sizes) |n| {
            // int64 values beyond 2^53 round when converted: the buffer order then matters
            const x = try randomArray(T, rng, n);
            defer alloc.free(x);
            const want: f64 = if (n == 0) std.math.nan(f64) else referenceMean(T, x);
            for (numpy_threads) |t| {
                setThreads(t);
                var out: [1]f64 = undefined;
                try testing.expectEqual(c.OK, c.call(reduce, .{ 3, dtype, addr(x), n, addr(&out) }));
                try expectSame(want, out[0]);
            }
        }
    }
    setThreads(1);
    // one buffer holds 8192 values: 8193 makes a second
    const x = try alloc.alloc(i64, 8193);
    defer alloc.free(x);
    for (x, 0..) |*v, i| v.* = (@as(i64, 1) << 60) + @as(i64, @intCast(i)) * 1_000_003;
    var out: [1]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(reduce, .{ 3, 3, addr(x), x.len, addr(&out) }));
    const whole = (0.0 + refPw(i64, f64, x)) / 8193.0;
    const buffered = (0.0 + refPw(i64, f64, x[0..8192]) + refPw(i64, f64, x[8192..])) / 8193.0;
    try testing.expectEqual(buffered, out[0]);
    try testing.expectEqual(referenceMean(i64, x), out[0]);
    try testing.expect(whole != buffered); // these values tell the two orders apart
}

test "sum: a cancel lands within 100 ms" {
    // natively about 10 GB/s on one thread: 2^27 float32 values take some 15 ms
    const n = 1 << 27;
    const x = try alloc.alloc(f32, n);
    defer alloc.free(x);
    @memset(x, 0.25);
    var out: [1]f64 = undefined;
    setThreads(1);
    try support.expectPromptCancel(reduce, .{ 0, 1, addr(x), n, addr(&out) }, 1);
}
