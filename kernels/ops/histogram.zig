// jr_histogram: numpy.histogram(x, bins, range=(lo, hi)) counts, reproducing numpy 2's
// uniform-bin path step by step: edges from np.linspace, bin index from
// (x - lo) / (hi - lo) * bins, then its one-step corrections against the edges. For float32
// input numpy works in float32 (edges, comparisons, x - lo) with the division in float64;
// that is reproduced too. Each stripe of the input counts into its own partial histogram;
// counts are integers, so results are identical for any thread count.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

/// Partial histograms take at most this many bytes of scratch (beyond one).
const partials_budget: usize = 8 << 20;
/// Elements between cancel checks inside a stripe (well under a millisecond).
const cancel_check_every: usize = 1 << 16;

/// Element type numpy computes bin edges and indices in: float32 for float32, else float64.
fn EdgeType(comptime T: type) type {
    return if (T == f32) f32 else f64;
}

/// np.linspace(lo, hi, bins + 1) evaluated in f64, including its step == 0 branch.
pub fn linspaceEdge(lo: f64, hi: f64, bins: usize, i: usize) f64 {
    if (i == bins) return hi;
    const delta = hi - lo;
    const div: f64 = @floatFromInt(bins);
    const fi: f64 = @floatFromInt(i);
    const step = delta / div;
    if (step == 0) return (fi / div) * delta + lo;
    return fi * step + lo;
}

fn Binner(comptime T: type) type {
    return struct {
        const E = EdgeType(T);
        edges: []const E,
        lo: E,
        hi: E,
        denom: f64,
        bins: usize,

        /// numpy's bin for v, or null when v is outside [lo, hi] or NaN.
        inline fn bin(self: *const @This(), v: T) ?usize {
            const x: E = if (@typeInfo(T) == .float) v else @floatFromInt(v);
            if (!(x >= self.lo and x <= self.hi)) return null;
            const f = (@as(f64, x - self.lo) / self.denom) * @as(f64, @floatFromInt(self.bins));
            var idx: usize = if (f >= @as(f64, @floatFromInt(self.bins))) self.bins - 1 else @intFromFloat(f);
            if (x < self.edges[idx]) {
                idx -|= 1;
            } else if (idx != self.bins - 1 and x >= self.edges[idx + 1]) {
                idx += 1;
            }
            return idx;
        }
    };
}

fn Stripes(comptime T: type) type {
    return struct {
        binner: Binner(T),
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

fn histogramTyped(comptime T: type, x: []align(1) const T, bins: usize, lo: f64, hi: f64, out: []align(1) i64) i32 {
    const E = EdgeType(T);
    const edges = c.scratch(E, bins + 1) orelse return c.E_NOMEM;
    defer c.freeScratch(edges);
    for (edges, 0..) |*e, i| e.* = @floatCast(linspaceEdge(lo, hi, bins, i));
    // numpy: "Too many bins for data range. Cannot create N finite-sized bins."
    for (edges[0..bins], edges[1..]) |a, b| if (!(a < b)) return c.E_INVAL;

    @memset(out, 0);
    if (x.len == 0) return c.OK;
    const blocks = c.blockCount(x.len);
    const max_partials = @max(1, partials_budget / (bins * 8));
    const stripes = @min(blocks, 4 * rt.numThreads(), max_partials + 1);
    const partials = c.scratch(i64, (stripes - 1) * bins) orelse return c.E_NOMEM;
    defer c.freeScratch(partials);
    @memset(partials, 0);

    var body: Stripes(T) = .{
        .binner = .{ .edges = edges, .lo = @floatCast(lo), .hi = @floatCast(hi), .denom = hi - lo, .bins = bins },
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

/// jr_histogram(dtype, x, n, bins, lo, hi, out)
pub fn histogram(dtype_code: u32, x: usize, n: usize, bins: u32, lo: f64, hi: f64, out: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    if (dt == .u32) return c.E_DTYPE;
    if (bins == 0 or !std.math.isFinite(lo) or !std.math.isFinite(hi) or !(lo < hi)) return c.E_INVAL;
    const xr = c.byteRange(x, n, dt.size()) orelse return c.E_RANGE;
    const outr = c.byteRange(out, bins, 8) orelse return c.E_RANGE;
    if (xr.overlaps(outr)) return c.E_INVAL;
    return switch (dt) {
        inline .f64, .f32, .i32, .i64 => |d| histogramTyped(d.Type(), c.slice(d.Type(), x, n), bins, lo, hi, c.slice(i64, out, bins)),
        .u32 => unreachable,
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

test "linspaceEdge matches np.linspace(-1.3, 2.9, 8)" {
    const numpy = [_]f64{ -1.3, -0.7000000000000001, -0.10000000000000009, 0.4999999999999998, 1.0999999999999999, 1.7, 2.3, 2.9 };
    for (numpy, 0..) |e, i| try std.testing.expectEqual(e, linspaceEdge(-1.3, 2.9, 7, i));
}

/// numpy's definition: bin j holds edges[j] <= x < edges[j+1], the last bin also x == hi,
/// with edges from np.linspace in the dtype numpy uses (float32 for float32 input).
fn refHistogram(comptime T: type, x: []const T, bins: usize, lo: f64, hi: f64, counts: []i64) void {
    const E = if (T == f32) f32 else f64;
    @memset(counts, 0);
    for (x) |v| {
        const xe: E = if (@typeInfo(T) == .float) v else @floatFromInt(v);
        if (!(xe >= @as(E, @floatCast(lo)) and xe <= @as(E, @floatCast(hi)))) continue;
        var j: usize = bins - 1;
        for (0..bins) |b| {
            const next: E = @floatCast(linspaceEdge(lo, hi, bins, b + 1));
            if (xe < next) {
                j = b;
                break;
            }
        }
        counts[j] += 1;
    }
}

fn checkHistogram(comptime T: type, dtype: u32, rng: std.Random, bins: u32, lo: f64, hi: f64) !void {
    for ([_]usize{ 0, 1, 2, 7, 4097, 30011 }) |n| {
        const x = try alloc.alloc(T, n);
        defer alloc.free(x);
        for (x, 0..) |*v, i| {
            const span = hi - lo;
            // values around and on the edges: exactly lo, exactly hi, edges, just below edges
            const e = linspaceEdge(lo, hi, bins, rng.uintLessThan(usize, bins + 1));
            const raw: f64 = switch (i % 6) {
                0 => lo,
                1 => hi,
                2 => e,
                3 => std.math.nextAfter(f64, e, -std.math.inf(f64)),
                4 => lo - 0.1 * span + rng.float(f64) * 1.2 * span,
                else => if (@typeInfo(T) == .float) std.math.nan(f64) else lo + rng.float(f64) * span,
            };
            v.* = if (@typeInfo(T) == .float) @floatCast(raw) else @intFromFloat(@round(raw));
        }
        const ref = try alloc.alloc(i64, bins);
        defer alloc.free(ref);
        refHistogram(T, x, bins, lo, hi, ref);
        const out = try alloc.alloc(i64, bins);
        defer alloc.free(out);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(histogram, .{ dtype, addr(x), n, bins, lo, hi, addr(out) }));
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
            try checkHistogram(f64, 0, rng, bins, r[0], r[1]);
            try checkHistogram(f32, 1, rng, bins, r[0], r[1]);
            try checkHistogram(i32, 2, rng, bins, r[0], r[1]);
            try checkHistogram(i64, 3, rng, bins, r[0], r[1]);
        }
    }
    // numpy.histogram(np.float32([0.7]), 2, range=(0.7, 1.0)) == [1, 0]: compared in float32
    var f = [_]f32{0.7};
    var out: [2]i64 = undefined;
    try testing.expectEqual(c.OK, c.call(histogram, .{ 1, addr(&f), 1, 2, 0.7, 1.0, addr(&out) }));
    try testing.expectEqualSlices(i64, &.{ 1, 0 }, &out);
    var d = [_]f64{ 0.0, 1.0, 0.5, -0.0, 2.0, -1.0, std.math.nan(f64), std.math.inf(f64) };
    try testing.expectEqual(c.OK, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, 1.0, addr(&out) }));
    try testing.expectEqualSlices(i64, &.{ 2, 2 }, &out);
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 0, 0.0, 1.0, addr(&out) }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, 1.0, 1.0, addr(&out) }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, 0.0, std.math.inf(f64), addr(&out) }));
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 0, addr(&d), d.len, 2, std.math.nan(f64), 1.0, addr(&out) }));
    // numpy: "Too many bins for data range" when edges stop increasing
    var big: [3]i64 = undefined;
    try testing.expectEqual(c.E_INVAL, c.call(histogram, .{ 1, addr(&f), 1, 3, 1.0, 1.0000001, addr(&big) }));
    var u = [_]u32{1};
    try testing.expectEqual(c.E_DTYPE, c.call(histogram, .{ 4, addr(&u), 1, 2, 0.0, 1.0, addr(&out) }));
}

test "histogram: a cancel lands within 100 ms, also with few stripes (many bins)" {
    const n = 1 << 25;
    const x = try alloc.alloc(f32, n);
    defer alloc.free(x);
    for (x, 0..) |*v, i| v.* = @floatFromInt(i % 1000);
    const out = try alloc.alloc(i64, 1 << 20);
    defer alloc.free(out);
    setThreads(1);
    try support.expectPromptCancel(histogram, .{ 1, addr(x), n, 1 << 20, 0, 1000, addr(out) }, 5);
    try support.expectPromptCancel(histogram, .{ 1, addr(x), n, 10, 0, 1000, addr(out) }, 5);
}
