// jr_histogram: numpy.histogram(x, bins, range=(lo, hi)) counts, reproducing numpy 2's
// uniform-bin path step by step: edges from np.linspace, the bin index from
// (x - lo) / (hi - lo) * bins, then its one-step corrections against those very edges. The
// edges are computed once, here, and written out for the host to return, so the counts always
// agree with the edges a caller sees. numpy's arithmetic depends on where the range came from:
// float32 data with a given range works in float32 (edges rounded from float64, x - lo) and
// divides in float64; float32 data with its own min/max as the range (flag F32_RANGE) works in
// float32 throughout; integer data with its own range divides by the exact integer hi - lo
// (`denom`). Each stripe of the input counts into its own partial histogram; counts are
// integers, so results are identical for any thread count.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;
const abi = @import("../runtime/abi.zig");

/// flags bit: lo and hi are float32 values taken from the data (numpy's automatic range of
/// float32 input), so edges and indices are computed in float32 arithmetic.
pub const F32_RANGE: u32 = abi.HISTOGRAM_F32_RANGE;
/// flags value: the kernel takes the range from the data as numpy does (lo, hi and denom are
/// passed as 0): min and max in one pass, then the bins, in one call.
pub const AUTO_RANGE: u32 = abi.HISTOGRAM_AUTO_RANGE;

/// Partial histograms take at most this many bytes of scratch (beyond one).
const partials_budget: usize = 8 << 20;
/// Elements between cancel checks inside a stripe (well under a millisecond).
const cancel_check_every: usize = 1 << 16;
/// Edges (and counts to clear) per task at least.
const edges_chunk: usize = 16384;

/// Element type numpy computes bin edges and indices in: float32 for float32, else float64.
fn EdgeType(comptime T: type) type {
    return if (T == f32) f32 else f64;
}

/// np.linspace(lo, hi, bins + 1)[i] in the arithmetic of F (numpy's, including its
/// step == 0 branch): i * step + lo, the last edge exactly hi.
pub fn linspaceIn(comptime F: type, lo: F, hi: F, bins: usize, i: usize) F {
    if (i == bins) return hi;
    const delta = hi - lo;
    const div: F = @floatFromInt(bins);
    const fi: F = @floatFromInt(i);
    const step = delta / div;
    if (step == 0) return (fi / div) * delta + lo;
    return fi * step + lo;
}

/// np.linspace(lo, hi, bins + 1) evaluated in f64.
pub fn linspaceEdge(lo: f64, hi: f64, bins: usize, i: usize) f64 {
    return linspaceIn(f64, lo, hi, bins, i);
}

/// linspaceIn with the step worked out once (the same operations, so the same values).
fn Linspace(comptime F: type) type {
    return struct {
        lo: F,
        hi: F,
        delta: F,
        div: F,
        step: F,
        bins: usize,

        fn init(lo: F, hi: F, bins: usize) @This() {
            const delta = hi - lo;
            const div: F = @floatFromInt(bins);
            return .{ .lo = lo, .hi = hi, .delta = delta, .div = div, .step = delta / div, .bins = bins };
        }

        inline fn at(self: *const @This(), i: usize) F {
            if (i == self.bins) return self.hi;
            const fi: F = @floatFromInt(i);
            if (self.step == 0) return (fi / self.div) * self.delta + self.lo;
            return fi * self.step + self.lo;
        }
    };
}

fn Binner(comptime T: type, comptime f32_range: bool) type {
    return struct {
        const E = EdgeType(T);
        /// The type numpy divides and multiplies in: float32 only for an F32_RANGE.
        const D = if (f32_range) f32 else f64;
        edges: []align(1) const E,
        lo: E,
        denom: D,
        bins: usize,

        /// numpy's bin for v, or null when v is outside [edges[0], edges[bins]] or NaN.
        inline fn bin(self: *const @This(), v: T) ?usize {
            const x: E = if (@typeInfo(T) == .float) v else @floatFromInt(v);
            const last = self.bins - 1;
            if (!(x >= self.edges[0] and x <= self.edges[self.bins])) return null;
            const d: D = x - self.lo;
            const f = (d / self.denom) * @as(D, @floatFromInt(self.bins));
            // f >= 0 here; numpy moves an index of exactly `bins` into the last bin. Larger
            // values cannot occur (numpy would fail); clamping keeps memory safe regardless.
            var idx: usize = if (f >= @as(D, @floatFromInt(self.bins))) last else @intFromFloat(f);
            if (x < self.edges[idx]) {
                idx -|= 1;
            } else if (idx != last and x >= self.edges[idx + 1]) {
                idx += 1;
            }
            return idx;
        }
    };
}

fn Stripes(comptime T: type, comptime f32_range: bool) type {
    return struct {
        binner: Binner(T, f32_range),
        x: []align(1) const T,
        /// stripe 0 counts straight into out; stripe s > 0 into partials[(s-1)*bins ..]
        out: []align(1) i64,
        partials: []i64,
        stripes: usize,

        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            const n: u64 = self.x.len;
            for (lo..hi) |s| {
                const start: usize = @intCast(n * s / self.stripes);
                const end: usize = @intCast(n * (s + 1) / self.stripes);
                const b = self.binner.bins;
                const counts: []align(1) i64 = if (s == 0) self.out else self.partials[(s - 1) * b ..][0..b];
                // A stripe is up to n / (4 * threads) elements: look for a cancel every
                // cancel_check_every of them.
                var i = start;
                while (i < end) {
                    if (i != start and rt.pollCancelled()) return;
                    const e = @min(end, i + cancel_check_every);
                    for (self.x[i..e]) |v| {
                        if (self.binner.bin(v)) |idx| counts[idx] += 1;
                    }
                    i = e;
                }
            }
        }
    };
}

/// Computes the edges (into the host's array when it gave one, else into scratch), clears the
/// counts and partial counts, and notes any edge that does not increase.
fn EdgesBody(comptime E: type, comptime f32_range: bool) type {
    return struct {
        /// numpy's arithmetic: float32 with F32_RANGE, else float64 rounded to E.
        const F = if (f32_range) f32 else f64;
        /// Two SIMD registers of F a step.
        const lanes = 32 / @sizeOf(F);
        const VF = @Vector(lanes, F);
        const VE = @Vector(lanes, E);
        const one: @Vector(lanes, usize) = @splat(1);
        const zero8: @Vector(lanes, u8) = @splat(0);
        const one8: @Vector(lanes, u8) = @splat(1);
        space: Linspace(F),
        bins: usize,
        edges: []align(1) E,
        out: []align(1) i64,
        partials: []i64,
        not_increasing: u32 = 0,

        inline fn edge(self: *const @This(), i: usize) E {
            return @floatCast(self.space.at(i));
        }

        /// Over the edges [lo, hi) of [0, bins + 1); counts and partials are cleared over
        /// the same share of their length.
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            const sp = &self.space;
            const top = @min(hi, self.bins);
            var bad = false;
            // Edges and the check of each pair (i, i + 1) in one pass, lanes at a time: the
            // scalar loops cost about 1 ns an edge, most of a many-bins call on little data.
            // Lane k of `nxt` is edge i + k + 1 by the same formula, which is the value
            // written for it (all of them below `top`, so none is the last edge, `hi`).
            var i = lo;
            if (sp.step != 0) {
                const iota = std.simd.iota(usize, lanes);
                const step: VF = @splat(sp.step);
                const base: VF = @splat(sp.lo);
                var flags: @Vector(lanes, u8) = @splat(0);
                while (i + lanes + 1 <= top) : (i += lanes) {
                    const at: @Vector(lanes, usize) = @as(@Vector(lanes, usize), @splat(i)) + iota;
                    const cur: VE = @floatCast(@as(VF, @floatFromInt(at)) * step + base);
                    const nxt: VE = @floatCast(@as(VF, @floatFromInt(at + one)) * step + base);
                    self.edges[i..][0..lanes].* = cur;
                    flags |= @select(u8, cur < nxt, zero8, one8);
                }
                bad = @reduce(.Or, flags) != 0;
            }
            const tail = i;
            if (sp.step == 0) {
                for (tail..top) |k| self.edges[k] = self.edge(k);
            } else {
                // at(k) without its branches, as the lanes above
                for (tail..top) |k| self.edges[k] = @floatCast(@as(F, @floatFromInt(k)) * sp.step + sp.lo);
            }
            if (hi > self.bins) self.edges[self.bins] = @floatCast(sp.hi);
            for (@max(lo, tail) + 1..hi) |k| bad = bad | !(self.edges[k - 1] < self.edges[k]);
            // the pair across this share's end: the next edge is another task's to write
            if (hi <= self.bins and !(self.edges[hi - 1] < self.edge(hi))) bad = true;
            if (bad) @atomicStore(u32, &self.not_increasing, 1, .monotonic);
            const total = self.bins + 1;
            @memset(self.out[share(self.out.len, lo, total)..share(self.out.len, hi, total)], 0);
            @memset(self.partials[share(self.partials.len, lo, total)..share(self.partials.len, hi, total)], 0);
        }

        fn share(len: usize, at: usize, total: usize) usize {
            return @intCast(@as(u64, len) * at / total);
        }
    };
}

const Combine = struct {
    out: []align(1) i64,
    partials: []const i64,
    pub fn run(self: *Combine, lo: usize, hi: usize) void {
        const b = self.out.len;
        var p: usize = 0;
        while (p < self.partials.len) : (p += b) {
            for (lo..hi) |j| self.out[j] += self.partials[p + j];
        }
    }
};

fn histogramTyped(
    comptime T: type,
    comptime f32_range: bool,
    x: []align(1) const T,
    bins: usize,
    lo: f64,
    hi: f64,
    denom: f64,
    out: []align(1) i64,
    edges_out: []align(1) EdgeType(T),
) i32 {
    const E = EdgeType(T);
    // The kernel bins by the very edges it hands back: the host's array, or scratch.
    var own: []E = &.{};
    if (edges_out.len == 0) own = c.scratch(E, bins + 1) orelse return c.E_NOMEM;
    defer if (own.len != 0) c.freeScratch(own);
    const edges: []align(1) E = if (edges_out.len == 0) own else edges_out;
    const blocks = c.blockCount(x.len);
    const max_partials = @max(1, partials_budget / (bins * 8));
    // A stripe past the first costs clearing and adding `bins` partial counts, and waking a
    // thread costs tens of microseconds: each needs some 16K values more than it has bins (10000
    // values in 10000 bins: 0.065 ms on one stripe, 0.098 on stripes over two threads).
    const worth = x.len / (bins + 4 * c.block_len);
    const stripes = @max(1, @min(blocks, 4 * rt.numThreads(), max_partials + 1, worth));
    const partials = c.scratch(i64, (stripes - 1) * bins) orelse return c.E_NOMEM;
    defer c.freeScratch(partials);

    const Space = Linspace(EdgesBody(E, f32_range).F);
    var eb: EdgesBody(E, f32_range) = .{
        .space = Space.init(@floatCast(lo), @floatCast(hi), bins),
        .bins = bins,
        .edges = edges,
        .out = out,
        .partials = partials,
    };
    rt.parallelFor(bins + 1, edges_chunk, &eb);
    if (rt.cancelled()) return c.E_CANCELED;
    // numpy: "Too many bins for data range. Cannot create N finite-sized bins."
    if (eb.not_increasing != 0) return c.E_INVAL;
    if (x.len == 0) return c.OK;

    const Bn = Binner(T, f32_range);
    const default_denom: Bn.D = if (f32_range) edges[bins] - edges[0] else hi - lo;
    var body: Stripes(T, f32_range) = .{
        .binner = .{
            .edges = edges,
            .lo = @floatCast(lo),
            .denom = if (denom == 0) default_denom else @floatCast(denom),
            .bins = bins,
        },
        .x = x,
        .out = out,
        .partials = partials,
        .stripes = stripes,
    };
    rt.parallelFor(stripes, 1, &body);
    if (stripes > 1 and !rt.cancelled()) {
        var comb: Combine = .{ .out = out, .partials = partials };
        rt.parallelFor(bins, 4096, &comb);
    }
    return c.OK;
}

/// The smallest and largest value of some data, and whether every value was finite.
fn Extremes(comptime T: type) type {
    return struct {
        lo: T,
        hi: T,
        finite: bool,

        /// Floats: IEEE minimum / maximum (-0.0 < +0.0), as jr.min and jr.max (reduce.zig), so
        /// the result does not depend on the order of equal zeros; NaN never wins (it is
        /// noted as not finite instead, which refuses the range anyway).
        fn merge(a: @This(), b: @This()) @This() {
            return .{ .lo = pick(T, true, a.lo, b.lo), .hi = pick(T, false, a.hi, b.hi), .finite = a.finite and b.finite };
        }
    };
}

inline fn pick(comptime T: type, comptime is_min: bool, a: T, b: T) T {
    if (@typeInfo(T) != .float) return if (is_min) @min(a, b) else @max(a, b);
    if (b != b) return a;
    if (a != b) return if ((a < b) == is_min) a else b;
    const U = @Int(.unsigned, @bitSizeOf(T));
    const ua: U = @bitCast(a);
    const ub: U = @bitCast(b);
    return @bitCast(if (is_min) ua | ub else ua & ub);
}

/// min, max and finiteness of a non-empty block in one pass.
fn blockExtremes(comptime T: type, x: []align(1) const T) Extremes(T) {
    const lanes = 2 * 16 / @sizeOf(T);
    const V = @Vector(lanes, T);
    var i: usize = 0;
    var r: Extremes(T) = .{ .lo = x[0], .hi = x[0], .finite = true };
    if (x.len >= lanes) {
        var lo: V = x[0..lanes].*;
        var hi = lo;
        if (@typeInfo(T) == .float) {
            const U = @Vector(lanes, @Int(.unsigned, @bitSizeOf(T)));
            var junk: V = @splat(0); // v - v: NaN for inf and NaN, which then stays NaN
            while (i + lanes <= x.len) : (i += lanes) {
                const v: V = x[i..][0..lanes].*;
                junk += v - v;
                const vb: U = @bitCast(v);
                const lb: U = @bitCast(lo);
                const hb: U = @bitCast(hi);
                lo = @select(T, v < lo, v, @select(T, v == lo, @as(V, @bitCast(vb | lb)), lo));
                hi = @select(T, v > hi, v, @select(T, v == hi, @as(V, @bitCast(vb & hb)), hi));
            }
            r.finite = @reduce(.And, junk == @as(V, @splat(0)));
        } else {
            while (i + lanes <= x.len) : (i += lanes) {
                const v: V = x[i..][0..lanes].*;
                lo = @min(lo, v);
                hi = @max(hi, v);
            }
        }
        const los: [lanes]T = lo;
        const his: [lanes]T = hi;
        for (los, his) |l, h| r = r.merge(.{ .lo = l, .hi = h, .finite = true });
    }
    for (x[i..]) |v| {
        const finite = @typeInfo(T) != .float or std.math.isFinite(v);
        r = r.merge(.{ .lo = v, .hi = v, .finite = finite });
    }
    return r;
}

fn ExtremesBody(comptime T: type) type {
    return struct {
        x: []align(1) const T,
        parts: []Extremes(T),
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |b| {
                const start = b * c.block_len;
                self.parts[b] = blockExtremes(T, self.x[start..@min(self.x.len, start + c.block_len)]);
            }
        }
    };
}

/// min and max of non-empty x, block by block in parallel; null when scratch is exhausted.
fn extremes(comptime T: type, x: []align(1) const T) ?Extremes(T) {
    const nb = c.blockCount(x.len);
    if (nb == 1) return blockExtremes(T, x);
    const parts = c.scratch(Extremes(T), nb) orelse return null;
    defer c.freeScratch(parts);
    var body: ExtremesBody(T) = .{ .x = x, .parts = parts };
    rt.parallelFor(nb, 16, &body); // 64K elements a task at least
    var r = parts[0];
    for (parts[1..]) |p| r = r.merge(p);
    return r;
}

fn toF64(comptime T: type, v: T) f64 {
    return if (@typeInfo(T) == .float) @floatCast(v) else @floatFromInt(v);
}

/// numpy.histogram(x, bins) with its range from the data, as numpy 2 takes it: (0, 1) for
/// empty data; a range that is one value widened by 0.5 each way (in float32 for float32
/// data, whose edges and indices are then computed in float32: F32_RANGE); integer data
/// divides by the exact integer max - min. NaN or inf in the data, a range too wide for
/// finite bins and one too narrow to widen are E_INVAL (hosts say which from min and max).
fn autoHistogram(comptime T: type, x: []align(1) const T, bins: usize, out: []align(1) i64, edges: []align(1) EdgeType(T)) i32 {
    if (x.len == 0) return histogramTyped(T, false, x, bins, 0, 1, 0, out, edges);
    const ext = extremes(T, x) orelse return c.E_NOMEM;
    if (rt.cancelled()) return c.E_CANCELED;
    if (!ext.finite) return c.E_INVAL;
    var lo = toF64(T, ext.lo);
    var hi = toF64(T, ext.hi);
    var denom: f64 = 0;
    if (lo == hi) {
        if (T == f32) {
            lo = ext.lo - 0.5;
            hi = ext.hi + 0.5;
        } else {
            lo -= 0.5;
            hi += 0.5;
        }
    } else if (@typeInfo(T) == .int) {
        denom = @floatFromInt(@as(i128, ext.hi) - @as(i128, ext.lo));
    }
    if (!std.math.isFinite(hi - lo) or !(lo < hi)) return c.E_INVAL;
    return histogramTyped(T, T == f32, x, bins, lo, hi, denom, out, edges);
}

/// jr_histogram(dtype, x, n, bins, lo, hi, out, edges, denom, flags)
pub fn histogram(dtype_code: u32, x: usize, n: usize, bins: u32, lo: f64, hi: f64, out: usize, edges: usize, denom: f64, flags: u32) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    if (bins == 0) return c.E_INVAL;
    const auto = flags == AUTO_RANGE;
    if (auto) {
        if (lo != 0 or hi != 0 or denom != 0) return c.E_INVAL;
    } else {
        if (!std.math.isFinite(lo) or !std.math.isFinite(hi) or !(lo < hi)) return c.E_INVAL;
        if (flags & ~F32_RANGE != 0) return c.E_INVAL;
        // F32_RANGE is for float32 data whose range are float32 values.
        if (flags & F32_RANGE != 0 and (dt != .f32 or @as(f64, @as(f32, @floatCast(lo))) != lo or
            @as(f64, @as(f32, @floatCast(hi))) != hi)) return c.E_INVAL;
        // 0 means hi - lo; any other denominator is a positive finite number.
        if (denom != 0 and !(std.math.isFinite(denom) and denom > 0)) return c.E_INVAL;
    }
    const f32_range = flags & F32_RANGE != 0;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, bins, 8) orelse return c.E_RANGE;
    const nedges: usize = if (edges == 0) 0 else @as(usize, bins) + 1;
    const er = c.byteRange(edges, nedges, if (dt == .f32) 4 else 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr) or er.overlaps(xr) or er.overlaps(outr)) return c.E_INVAL;
    const counts = c.slice(i64, out, bins);
    return switch (dt) {
        inline else => |d| {
            const T = d.Type();
            const e = c.slice(EdgeType(T), edges, nedges);
            const xs = c.slice(T, x, n);
            if (auto) return autoHistogram(T, xs, bins, counts, e);
            if (T == f32 and f32_range) return histogramTyped(T, true, xs, bins, lo, hi, denom, counts, e);
            return histogramTyped(T, false, xs, bins, lo, hi, denom, counts, e);
        },
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

test "linspaceEdge matches np.linspace(-1.3, 2.9, 8); linspaceIn(f32) np.linspace(f32(0), f32(4), 29)" {
    const numpy = [_]f64{ -1.3, -0.7000000000000001, -0.10000000000000009, 0.4999999999999998, 1.0999999999999999, 1.7, 2.3, 2.9 };
    for (numpy, 0..) |e, i| try std.testing.expectEqual(e, linspaceEdge(-1.3, 2.9, 7, i));
    // np.linspace(np.float32(0), np.float32(4), 29)[21] is float32 3.0000002, not 3.0
    try std.testing.expectEqual(@as(f32, 3.0000002), linspaceIn(f32, 0, 4, 28, 21));
    try std.testing.expectEqual(@as(f32, 3.0), @as(f32, @floatCast(linspaceEdge(0, 4, 28, 21))));
}

/// numpy's definition: bin j holds edges[j] <= x < edges[j+1], the last bin also x == hi,
/// with the edges the kernel wrote out (checked against linspace separately).
fn refHistogram(comptime T: type, x: []const T, edges: []const f64, counts: []i64) void {
    const E = if (T == f32) f32 else f64;
    const bins = edges.len - 1;
    @memset(counts, 0);
    for (x) |v| {
        const xe: E = if (@typeInfo(T) == .float) v else @floatFromInt(v);
        if (!(xe >= @as(E, @floatCast(edges[0])) and xe <= @as(E, @floatCast(edges[bins])))) continue;
        var j: usize = bins - 1;
        for (0..bins) |b| {
            if (xe < @as(E, @floatCast(edges[b + 1]))) {
                j = b;
                break;
            }
        }
        counts[j] += 1;
    }
}

/// The edges numpy computes: linspace in f64 (rounded to f32 for f32 data), or all in f32.
fn refEdge(comptime T: type, f32_range: bool, lo: f64, hi: f64, bins: usize, i: usize) f64 {
    if (f32_range) return linspaceIn(f32, @floatCast(lo), @floatCast(hi), bins, i);
    const e = linspaceEdge(lo, hi, bins, i);
    return if (T == f32) @as(f32, @floatCast(e)) else e;
}

fn checkHistogram(comptime T: type, dtype: u32, rng: std.Random, bins: u32, lo_in: f64, hi_in: f64, f32_range: bool) !void {
    const lo: f64 = if (f32_range) @as(f32, @floatCast(lo_in)) else lo_in;
    const hi: f64 = if (f32_range) @as(f32, @floatCast(hi_in)) else hi_in;
    const flags: u32 = if (f32_range) F32_RANGE else 0;
    // 70001 values run in stripes (each needs some 16K values more than it has bins)
    for ([_]usize{ 0, 1, 2, 7, 4097, 30011, 70001 }) |n| {
        const x = try alloc.alloc(T, n);
        defer alloc.free(x);
        for (x, 0..) |*v, i| {
            const span = hi - lo;
            // values around and on the edges: exactly lo, exactly hi, edges, next to edges
            const e = refEdge(T, f32_range, lo, hi, bins, rng.uintLessThan(usize, bins + 1));
            const raw: f64 = switch (i % 7) {
                0 => lo,
                1 => hi,
                2 => e,
                3 => if (T == f32) std.math.nextAfter(f32, @floatCast(e), -std.math.inf(f32)) else std.math.nextAfter(f64, e, -std.math.inf(f64)),
                4 => if (T == f32) std.math.nextAfter(f32, @floatCast(e), std.math.inf(f32)) else std.math.nextAfter(f64, e, std.math.inf(f64)),
                5 => lo - 0.1 * span + rng.float(f64) * 1.2 * span,
                else => if (@typeInfo(T) == .float) std.math.nan(f64) else lo + rng.float(f64) * span,
            };
            v.* = if (@typeInfo(T) == .float) @floatCast(raw) else @intFromFloat(@round(raw));
        }
        const E = EdgeType(T);
        const want_edges = try alloc.alloc(f64, bins + 1);
        defer alloc.free(want_edges);
        for (want_edges, 0..) |*w, i| w.* = refEdge(T, f32_range, lo, hi, bins, i);
        const want_typed = try alloc.alloc(E, bins + 1);
        defer alloc.free(want_typed);
        for (want_typed, want_edges) |*w, e| w.* = @floatCast(e);
        const ref = try alloc.alloc(i64, bins);
        defer alloc.free(ref);
        refHistogram(T, x, want_edges, ref);
        const out = try alloc.alloc(i64, bins);
        defer alloc.free(out);
        const edges = try alloc.alloc(E, bins + 1);
        defer alloc.free(edges);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(histogram, .{ dtype, addr(x), n, bins, lo, hi, addr(out), addr(edges), 0, flags }));
            try testing.expectEqualSlices(i64, ref, out);
            try testing.expectEqualSlices(E, want_typed, edges);
            // without an edges array the counts are the same
            try testing.expectEqual(c.OK, c.call(histogram, .{ dtype, addr(x), n, bins, lo, hi, addr(out), 0, 0, flags }));
            try testing.expectEqualSlices(i64, ref, out);
        }
    }
    setThreads(1);
}

test "histogram: numpy edges and edge rules at exactly lo, hi, edges and just below" {
    var prng = std.Random.DefaultPrng.init(10);
    const rng = prng.random();
    const ranges = [_][2]f64{ .{ 0, 1 }, .{ -1.3, 2.9 }, .{ 0.1, 0.7 }, .{ -1e6, 3 }, .{ 5, 1000 } };
    for (ranges) |r| {
        for ([_]u32{ 1, 2, 7, 10, 100, 1000 }) |bins| {
            try checkHistogram(f64, 0, rng, bins, r[0], r[1], false);
            try checkHistogram(f32, 1, rng, bins, r[0], r[1], false);
            try checkHistogram(f32, 1, rng, bins, r[0], r[1], true);
            try checkHistogram(i32, 2, rng, bins, r[0], r[1], false);
            try checkHistogram(i64, 3, rng, bins, r[0], r[1], false);
        }
    }
    // numpy.histogram(np.float32([0.7]), 2, range=(0.7, 1.0)) == [1, 0]: compared in float32
    var f = [_]f32{0.7};
    var out: [2]i64 = undefined;
    try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&f), 1, 2, 0.7, 1.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 1, 0 }, &out);
    var d = [_]f64{ 0.0, 1.0, 0.5, -0.0, 2.0, -1.0, std.math.nan(f64), std.math.inf(f64) };
    try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, 1.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 2, 2 }, &out);
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 0, 0.0, 1.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, 1.0, 1.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, std.math.inf(f64), addr(&out), 0, 0, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, std.math.nan(f64), 1.0, addr(&out), 0, 0, 0 }));
    // numpy: "Too many bins for data range" when edges stop increasing
    var big: [3]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&f), 1, 3, 1.0, 1.0000001, addr(&big), 0, 0, 0 }));
    // unsigned data (uint32, uint64): values at and above 2^63 are large, not negative
    var u = [_]u32{ 1, std.math.maxInt(u32) };
    try testing.expectEqual(c.OK, c.call(histogram, .{ 4, addr(&u), 2, 2, 0.0, 4294967296.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 1, 1 }, &out);
    var w = [_]u64{ 1, 1 << 63, std.math.maxInt(u64) };
    try testing.expectEqual(c.OK, c.call(histogram, .{ 5, addr(&w), 3, 2, 0.0, 18446744073709551616.0, addr(&out), 0, 0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 1, 2 }, &out);
    // flags: unknown bits, F32_RANGE on other dtypes or with bounds float32 cannot hold
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&f), 1, 2, 0.0, 1.0, addr(&out), 0, 0, 2 }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), 1, 2, 0.0, 1.0, addr(&out), 0, 0, F32_RANGE }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&f), 1, 2, 0.7, 1.0, addr(&out), 0, 0, F32_RANGE }));
    // a denominator must be positive and finite (0: hi - lo)
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), 1, 2, 0.0, 1.0, addr(&out), 0, -1.0, 0 }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), 1, 2, 0.0, 1.0, addr(&out), 0, std.math.inf(f64), 0 }));
    // the edges array must not overlap the data or the counts
    var e3: [3]f64 = undefined;
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, 1.0, addr(&out), addr(d[1..]), 0, 0 }));
    try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, 1.0, addr(&out), addr(&e3), 0, 0 }));
    try testing.expectEqualSlices(f64, &.{ 0.0, 0.5, 1.0 }, &e3);
}

test "histogram: float32 data with its own range bins by the float32 edges (issue 9 item 1)" {
    // numpy.histogram(np.float32([0, 3, 4]), 28): edges in float32 arithmetic, edges[21] is
    // 3.0000002, so 3.0 is in bin 20.
    var f = [_]f32{ 0, 3, 4 };
    var out: [28]i64 = undefined;
    var edges: [29]f32 = undefined;
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&f), 3, 28, 0.0, 4.0, addr(&out), addr(&edges), 0, F32_RANGE }));
        try testing.expectEqual(@as(f32, 3.0000002), edges[21]);
        try testing.expectEqual(@as(i64, 1), out[20]);
        try testing.expectEqual(@as(i64, 0), out[21]);
        try testing.expectEqual(@as(i64, 1), out[0]);
        try testing.expectEqual(@as(i64, 1), out[27]);
    }
    setThreads(1);
}

test "histogram: many bins: the edges (written lanes at a time, split over tasks) are linspace's; edges that stop increasing are E_INVAL" {
    const x = [_]f64{ -5.0, -1.0, 0.0, 0.25, 4.999, 5.0 };
    const xf = [_]f32{ -5.0, -1.0, 0.0, 0.25, 4.999, 5.0 };
    for ([_]u32{ 40_000, 100_003 }) |bins| {
        const out = try alloc.alloc(i64, bins);
        defer alloc.free(out);
        const e64 = try alloc.alloc(f64, bins + 1);
        defer alloc.free(e64);
        const e32 = try alloc.alloc(f32, bins + 1);
        defer alloc.free(e32);
        const ref = try alloc.alloc(i64, bins);
        defer alloc.free(ref);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&x), x.len, bins, -5.0, 5.0, addr(out), addr(e64), 0, 0 }));
            for (e64, 0..) |e, i| try testing.expectEqual(linspaceEdge(-5.0, 5.0, bins, i), e);
            refHistogram(f64, &x, e64, ref);
            try testing.expectEqualSlices(i64, ref, out);
            inline for (.{ 0, F32_RANGE }) |flags| {
                try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&xf), xf.len, bins, -5.0, 5.0, addr(out), addr(e32), 0, flags }));
                for (e32, 0..) |e, i| try testing.expectEqual(@as(f32, @floatCast(refEdge(f32, flags != 0, -5.0, 5.0, bins, i))), e);
            }
        }
    }
    // Edges closer than the spacing of the values repeat somewhere inside the lanes' part.
    var out: [50_000]i64 = undefined;
    for (thread_counts) |t| {
        setThreads(t);
        try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&x), x.len, 50_000, 1.0, 1.0 + 1e-12, addr(&out), 0, 0, 0 }));
        try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&xf), xf.len, 50_000, 1.0, 1.001, addr(&out), 0, 0, 0 }));
        try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&xf), xf.len, 50_000, 1.0, 1.0009765625, addr(&out), 0, 0, F32_RANGE }));
        // the same spans with few enough bins are fine
        try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&x), x.len, 1000, 1.0, 1.0 + 1e-12, addr(&out), 0, 0, 0 }));
        try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&xf), xf.len, 1000, 1.0, 1.001, addr(&out), 0, 0, 0 }));
    }
    setThreads(1);
}

test "histogram: edges that repeat only inside the lanes' part of a task are found" {
    // float32 edges of linspace(-1.001, -0.999, 30001): spaced 6.7e-8 apart, below float32's
    // 1.2e-7 spacing under -1 (edges repeat there) and above its 6e-8 over -1 (all increase).
    // Edges 14000..16000: the repeats lie before edge 15000 (-1.0), far from the task's end.
    const bins = 30_000;
    const edges = try alloc.alloc(f32, bins + 1);
    defer alloc.free(edges);
    const Body = EdgesBody(f32, false);
    var body: Body = .{ .space = Linspace(f64).init(-1.001, -0.999, bins), .bins = bins, .edges = edges, .out = &.{}, .partials = &.{} };
    body.run(15_100, 16_000);
    try testing.expectEqual(@as(u32, 0), body.not_increasing);
    body.run(14_000, 16_000);
    try testing.expectEqual(@as(u32, 1), body.not_increasing);
    var repeats: usize = 0;
    for (14_001..16_000) |i| {
        try testing.expectEqual(@as(f32, @floatCast(linspaceEdge(-1.001, -0.999, bins, i))), edges[i]);
        if (!(edges[i - 1] < edges[i])) {
            try testing.expect(i < 15_000);
            repeats += 1;
        }
    }
    try testing.expect(repeats > 0);
}

test "histogram: an integer range's exact denominator is used as given" {
    // numpy divides by the exact integer hi - lo; the f64 edges still bound the bins.
    var x = [_]i64{ 0, 5, 9, 10 };
    var out: [2]i64 = undefined;
    try testing.expectEqual(c.OK, c.call(histogram, .{ 3, addr(&x), 4, 2, 0.0, 10.0, addr(&out), 0, 10.0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 1, 3 }, &out);
    // another denominator moves the first guess of the index; numpy's one-step corrections
    // against the edges still decide the bin
    try testing.expectEqual(c.OK, c.call(histogram, .{ 3, addr(&x), 4, 2, 0.0, 10.0, addr(&out), 0, 7.0, 0 }));
    try testing.expectEqualSlices(i64, &.{ 1, 3 }, &out);
}

test "histogram: a cancel lands within 100 ms, also with few stripes (many bins)" {
    const n = 1 << 25;
    const x = try alloc.alloc(f32, n);
    defer alloc.free(x);
    for (x, 0..) |*v, i| v.* = @floatFromInt(i % 1000);
    const out = try alloc.alloc(i64, 1 << 20);
    defer alloc.free(out);
    setThreads(1);
    try support.expectPromptCancel(histogram, .{ 1, addr(x), n, 1 << 20, 0, 1000, addr(out), 0, 0, 0 }, 5);
    try support.expectPromptCancel(histogram, .{ 1, addr(x), n, 10, 0, 1000, addr(out), 0, 0, 0 }, 5);
}

test "histogram: an automatic range in the same call gives the counts and edges of the range passed" {
    // AUTO_RANGE must equal passing numpy's range by hand (what hosts did with min and max).
    var prng = std.Random.DefaultPrng.init(14);
    const rng = prng.random();
    inline for (.{ f64, f32, i32, i64, u32, u64 }, .{ 0, 1, 2, 3, 4, 5 }) |T, dt| {
        for ([_]usize{ 1, 2, 9, 4096, 4097, 30011 }) |n| {
            for ([_]u32{ 1, 7, 28, 1000 }) |bins| {
                const x = try alloc.alloc(T, n);
                defer alloc.free(x);
                const constant = n == 2;
                for (x) |*v| v.* = if (constant) (if (@typeInfo(T) == .float) 3.0 else 3) else if (@typeInfo(T) == .float)
                    @floatCast(rng.float(f64) * 8 - 2)
                else
                    @intCast(rng.uintLessThan(u32, 1000));
                var lo: f64 = toF64(T, std.mem.min(T, x));
                var hi: f64 = toF64(T, std.mem.max(T, x));
                var denom: f64 = 0;
                var flags: u32 = if (T == f32) F32_RANGE else 0;
                if (lo == hi) {
                    lo -= 0.5;
                    hi += 0.5;
                } else if (@typeInfo(T) == .int) denom = hi - lo;
                const E = EdgeType(T);
                const want = try alloc.alloc(i64, bins);
                defer alloc.free(want);
                const want_edges = try alloc.alloc(E, bins + 1);
                defer alloc.free(want_edges);
                const got = try alloc.alloc(i64, bins);
                defer alloc.free(got);
                const got_edges = try alloc.alloc(E, bins + 1);
                defer alloc.free(got_edges);
                try testing.expectEqual(c.OK, c.call(histogram, .{ dt, addr(x), n, bins, lo, hi, addr(want), addr(want_edges), denom, flags }));
                for (thread_counts) |t| {
                    setThreads(t);
                    try testing.expectEqual(c.OK, c.call(histogram, .{ dt, addr(x), n, bins, 0, 0, addr(got), addr(got_edges), 0, AUTO_RANGE }));
                    try testing.expectEqualSlices(i64, want, got);
                    try testing.expectEqualSlices(E, want_edges, got_edges);
                }
                flags = 0;
            }
        }
    }
    setThreads(1);
    // numpy.histogram(np.float32([0, 3, 4]), 28): 3.0 in bin 20 (edges[21] is 3.0000002)
    var f = [_]f32{ 4, 3, 0 };
    var out: [28]i64 = undefined;
    var edges: [29]f32 = undefined;
    try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&f), 3, 28, 0, 0, addr(&out), addr(&edges), 0, AUTO_RANGE }));
    try testing.expectEqual(@as(f32, 3.0000002), edges[21]);
    try testing.expectEqual(@as(i64, 1), out[20]);
    // no data: the range (0, 1)
    try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&f), 0, 2, 0, 0, addr(&out), addr(&edges), 0, AUTO_RANGE }));
    // signed zeros: the largest value is +0.0 when both zeros occur (IEEE maximum, as jr.max)
    var z = [_]f64{ -1.0, 0.0, -0.0 };
    var ze: [3]f64 = undefined;
    try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&z), 3, 2, 0, 0, addr(&out), addr(&ze), 0, AUTO_RANGE }));
    try testing.expect(!std.math.signbit(ze[2]));
    // a one-value int64 range widened by 0.5, and the exact integer denominator
    var big = [_]i64{ std.math.maxInt(i64), std.math.minInt(i64) };
    try testing.expectEqual(c.OK, c.call(histogram, .{ 3, addr(&big), 2, 2, 0, 0, addr(&out), 0, 0, AUTO_RANGE }));
    try testing.expectEqualSlices(i64, &.{ 1, 1 }, out[0..2]);
    // refused: NaN or inf in the data, a range too wide, nonzero lo/hi/denom, other flags with it
    const inf = std.math.inf(f64);
    for ([_][2]f64{ .{ 1, std.math.nan(f64) }, .{ 1, inf }, .{ -inf, 1 }, .{ -1e308, 1e308 } }) |pair| {
        var d = pair;
        try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), 2, 2, 0, 0, addr(&out), 0, 0, AUTO_RANGE }));
    }
    var one = [_]f64{1e300};
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&one), 1, 2, 0, 0, addr(&out), 0, 0, AUTO_RANGE }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&z), 3, 2, 0, 1, addr(&out), 0, 0, AUTO_RANGE }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&z), 3, 2, 0, 0, addr(&out), 0, 1, AUTO_RANGE }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&f), 3, 2, 0, 0, addr(&out), 0, 0, AUTO_RANGE | F32_RANGE }));
    // too many bins for the data's range
    var close = [_]f32{ 1.0, 1.0000001 };
    var many: [3]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&close), 2, 3, 0, 0, addr(&many), 0, 0, AUTO_RANGE }));
}
