// jr_mandelbrot: escape iteration counts, exactly the formula of kernels/ABI.md (IEEE f64, no
// fused multiply-add). Eight pixels run together in four interleaved f64x2 groups, and the
// "is any lane still live" test runs once every four passes. One group is a chain of dependent
// float ops per pass (latency-bound: the core idles between them); independent groups overlap
// their chains, and testing less often takes the OR, any_true and branch out of most passes.
// Measured on 800x600, max_iter 300, one thread (ms, wasmtime / Node's V8): one group, a test
// per pass (the old kernel) 75 / 84; three groups, a test per pass (what @jr.jit emits) 29 / 32;
// three groups, a test every 2 passes 25 / 22, every 4: 23 / 19; four groups every 4: 21 / 18;
// five 21 / 18, six 22; four groups every 8 passes 25 (lanes run too long after they finish).
// Work is split by sets of eight pixels in row-major order, not by rows, so one very wide row
// or one very tall column still keeps every thread busy, and a task checks for cancel after
// every 2^16 pixel-iterations it has run, across pixels and inside one long pixel, so a cancel
// lands within a millisecond.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const lanes = 2; // f64 per v128
const groups = 4; // v128 groups run interleaved (the header says why four)
const per_set = lanes * groups; // pixels run together
const unroll = 4; // passes between two tests for a live lane (the header says why)
const V = @Vector(lanes, f64);
/// Lane masks and counts: a comparison of two f64x2 is an i64x2 of -1 (true) or 0, so an
/// active lane's count goes up by subtracting its mask, with no select and no narrowing.
const M = @Vector(lanes, i64);
/// Pixel-iterations between cancel checks (some 40 us of work).
const cancel_check_every: u32 = 1 << 16;

fn mask(b: @Vector(lanes, bool)) M {
    return @select(i64, b, @as(M, @splat(-1)), @as(M, @splat(0)));
}

/// Escape counts of the 2 * g points (cx[q][l], cy[q][l]). `budget` counts pixel-iterations
/// down to the next cancel check; returns null once cancelled.
///
/// Every lane computes exactly escapeScalar's sequence of IEEE operations and stops counting
/// on the same pass: a lane's mask turns off at its first escape and its count stops there.
/// Escaped lanes keep iterating unmasked (their z is read by nobody), so passes run after the
/// last lane finished (up to unroll - 1 of them) change nothing. While a lane is active, its
/// count equals the number of passes run, so `k < max_iter` is one scalar pass count shared
/// by all lanes. The hot loop makes no call (a call there makes the engine keep every vector
/// on the stack): it runs up to the budget's worth of passes, then the poll runs.
inline fn escape(comptime g: usize, cx: [g]V, cy: [g]V, max_iter: u32, budget: *u32) ?[g]M {
    const cost: u32 = lanes * g; // pixel-iterations per pass
    var z: Lanes(g) = .{ .cx = cx, .cy = cy };
    var left = max_iter; // passes still allowed
    while (left > 0) {
        if (budget.* < cost) {
            budget.* = cancel_check_every;
            if (rt.pollCancelled()) return null;
        }
        const n = @min(left, budget.* / cost);
        var pass: u32 = 0;
        // Several passes per test for a live lane: a pass with no live lane changes no count.
        var done = while (pass + unroll <= n) : (pass += unroll) {
            inline for (0..unroll) |_| z.pass();
            if (!z.anyActive()) break true;
        } else false;
        while (!done and pass < n) {
            z.pass();
            pass += 1;
            done = !z.anyActive();
        }
        budget.* -= pass * cost;
        if (done) break;
        left -= n;
    }
    return z.k;
}

fn Lanes(comptime g: usize) type {
    return struct {
        cx: [g]V,
        cy: [g]V,
        zr: [g]V = @splat(@splat(0.0)),
        zi: [g]V = @splat(@splat(0.0)),
        k: [g]M = @splat(@splat(0)),
        active: [g]M = @splat(@splat(-1)),

        inline fn pass(z: *@This()) void {
            const four: V = @splat(4.0);
            inline for (0..g) |q| {
                const zr2 = z.zr[q] * z.zr[q];
                const zi2 = z.zi[q] * z.zi[q];
                // A lane stops for good at its first escape.
                z.active[q] &= ~mask(zr2 + zi2 > four);
                z.zi[q] = (z.zr[q] + z.zr[q]) * z.zi[q] + z.cy[q]; // zr + zr is 2.0 * zr, exactly
                z.zr[q] = (zr2 - zi2) + z.cx[q];
                z.k[q] -%= z.active[q];
            }
        }

        inline fn anyActive(z: *const @This()) bool {
            var any: M = @splat(0);
            inline for (0..g) |q| any |= z.active[q];
            return @reduce(.Or, any != @as(M, @splat(0)));
        }
    };
}

/// The scalar formula, word for word: the reference the tests hold `escape` to.
pub fn escapeScalar(cx: f64, cy: f64, max_iter: u32) u32 {
    var zr: f64 = 0;
    var zi: f64 = 0;
    var k: u32 = 0;
    while (k < max_iter) {
        const zr2 = zr * zr;
        const zi2 = zi * zi;
        if (zr2 + zi2 > 4.0) break;
        zi = (2.0 * zr) * zi + cy;
        zr = (zr2 - zi2) + cx;
        k += 1;
    }
    return k;
}

const Pixels = struct {
    out: []align(1) u32,
    width: usize,
    x0: f64,
    y0: f64,
    dx: f64,
    dy: f64,
    max_iter: u32,

    /// The next pixels of a row-major walk; cx and cy exactly as the ABI formula has them.
    const Walk = struct {
        px: *const Pixels,
        i: usize,
        j: usize,

        /// The point of the next pixel.
        fn next(w: *Walk) [2]f64 {
            const xy = .{
                w.px.x0 + @as(f64, @floatFromInt(w.i)) * w.px.dx,
                w.px.y0 + @as(f64, @floatFromInt(w.j)) * w.px.dy,
            };
            w.i += 1;
            if (w.i == w.px.width) {
                w.i = 0;
                w.j += 1;
            }
            return xy;
        }

        /// g groups of points, lane by lane in pixel order.
        fn take(w: *Walk, comptime g: usize, xs: *[g]V, ys: *[g]V) void {
            inline for (0..g) |q| inline for (0..lanes) |l| {
                const xy = w.next();
                xs[q][l] = xy[0];
                ys[q][l] = xy[1];
            };
        }
    };

    fn store(self: *Pixels, p: usize, comptime g: usize, k: [g]M) void {
        inline for (0..g) |q| {
            const counts: @Vector(lanes, u32) = @truncate(@as(@Vector(lanes, u64), @bitCast(k[q])));
            self.out[p + lanes * q ..][0..lanes].* = counts;
        }
    }

    /// Sets [lo_set, hi_set) of `per_set` pixels in row-major order (a set may span rows;
    /// only the image's last set may be short). The split is by whole sets so that every task
    /// runs full sets: a short tail runs in one group, three to four times slower per pixel.
    pub fn run(self: *Pixels, lo_set: usize, hi_set: usize) void {
        const lo = lo_set * per_set;
        const hi = @min(hi_set * per_set, self.out.len);
        var budget: u32 = cancel_check_every;
        var walk: Walk = .{ .px = self, .i = lo % self.width, .j = lo / self.width };
        var p = lo;
        var xs: [groups]V = undefined;
        var ys: [groups]V = undefined;
        while (hi - p >= per_set) : (p += per_set) {
            walk.take(groups, &xs, &ys);
            self.store(p, groups, escape(groups, xs, ys, self.max_iter, &budget) orelse return);
        }
        // What is left: pairs, then an odd last pixel on both lanes of one group.
        while (hi - p >= lanes) : (p += lanes) {
            walk.take(1, xs[0..1], ys[0..1]);
            self.store(p, 1, escape(1, xs[0..1].*, ys[0..1].*, self.max_iter, &budget) orelse return);
        }
        if (p < hi) {
            const xy = walk.next();
            const one = escape(1, .{@splat(xy[0])}, .{@splat(xy[1])}, self.max_iter, &budget) orelse return;
            self.out[p] = @truncate(@as(u64, @bitCast(one[0][0])));
        }
    }
};

/// jr_mandelbrot(out, width, height, x0, x1, y0, y1, max_iter)
pub fn mandelbrot(out: usize, width: u32, height: u32, x0: f64, x1: f64, y0: f64, y1: f64, max_iter: u32) i32 {
    const npix = std.math.mul(usize, width, height) catch return c.E_RANGE;
    _ = c.byteRange(out, npix, 4) orelse return c.E_RANGE;
    if (npix == 0) return c.OK;
    var pixels: Pixels = .{
        .out = c.slice(u32, out, npix),
        .width = width,
        .x0 = x0,
        .y0 = y0,
        .dx = (x1 - x0) / @as(f64, @floatFromInt(width)),
        .dy = (y1 - y0) / @as(f64, @floatFromInt(height)),
        .max_iter = max_iter,
    };
    rt.parallelFor(std.math.divCeil(usize, npix, per_set) catch unreachable, 1, &pixels);
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
const Ref = support.Ref;
const setCancel = support.setCancel;

test "mandelbrot equals the ABI formula pixel for pixel" {
    const cases = [_]struct { w: u32, h: u32, x0: f64, x1: f64, y0: f64, y1: f64, it: u32 }{
        .{ .w = 1, .h = 1, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 256 },
        .{ .w = 97, .h = 61, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 256 },
        .{ .w = 64, .h = 33, .x0 = -0.75, .x1 = -0.74, .y0 = 0.1, .y1 = 0.11, .it = 1000 },
        .{ .w = 5, .h = 3, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 0 },
        // pixel (0, 1) is c = -2 + 0i: |z|^2 stays exactly 4, so only "> 4" keeps it inside
        .{ .w = 6, .h = 2, .x0 = -2, .x1 = 1, .y0 = -1, .y1 = 1, .it = 100 },
        .{ .w = 0, .h = 7, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = 10 },
    };
    for (cases) |cs| {
        const out = try alloc.alloc(u32, @as(usize, cs.w) * cs.h);
        defer alloc.free(out);
        for (thread_counts) |t| {
            setThreads(t);
            try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(out), cs.w, cs.h, cs.x0, cs.x1, cs.y0, cs.y1, cs.it }));
            const dx = (cs.x1 - cs.x0) / @as(f64, @floatFromInt(cs.w));
            const dy = (cs.y1 - cs.y0) / @as(f64, @floatFromInt(cs.h));
            for (0..cs.h) |j| for (0..cs.w) |i| {
                const cx = cs.x0 + @as(f64, @floatFromInt(i)) * dx;
                const cy = cs.y0 + @as(f64, @floatFromInt(j)) * dy;
                try testing.expectEqual(escapeScalar(cx, cy, cs.it), out[j * cs.w + i]);
            };
        }
    }
    setThreads(1);
    var edge: [12]u32 = undefined;
    try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(&edge), 6, 2, -2, 1, -1, 1, 100 }));
    try testing.expectEqual(@as(u32, 100), edge[6]);
    // known values: the origin never escapes; c = 1 gives z = 0, 1, 2, 5: |5|^2 > 4 at k = 3
    try testing.expectEqual(@as(u32, 50), escapeScalar(0, 0, 50));
    try testing.expectEqual(@as(u32, 3), escapeScalar(1, 0, 50));
    // c = -2 stays on |z|^2 == 4 (never > 4): the boundary is exclusive
    try testing.expectEqual(@as(u32, 50), escapeScalar(-2, 0, 50));
    var o: [1]u32 = undefined;
    try testing.expectEqual(c.E_RANGE, c.call(mandelbrot, .{ 0, 4, 4, -2, 1, -1, 1, 10 }));
    try testing.expectEqual(c.E_RANGE, c.call(mandelbrot, .{ addr(&o), 0xFFFF_FFFF, 0xFFFF_FFFF, -2, 1, -1, 1, 10 }));
}

test "escape: every lane of every group count equals the scalar formula, whatever the budget" {
    var prng = std.Random.DefaultPrng.init(7);
    const r = prng.random();
    // Points near the set's edge escape at very different passes within one set of lanes.
    const iters = [_]u32{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 100, 1000 };
    // Budgets that end a stretch of passes at every offset within an unrolled block.
    const budgets = [_]u32{ cancel_check_every, 1, 2, 7, 8, 9, 15, 16, 17, 31, 8 * 5 + 3 };
    for (0..50) |_| {
        var xs: [groups]V = undefined;
        var ys: [groups]V = undefined;
        inline for (0..groups) |q| inline for (0..lanes) |l| {
            xs[q][l] = -2.2 + 3.4 * r.float(f64);
            ys[q][l] = -1.5 + 3.0 * r.float(f64);
        };
        for (iters) |it| for (budgets) |b0| {
            var budget = b0;
            const k = escape(groups, xs, ys, it, &budget).?;
            try testing.expect(budget <= cancel_check_every);
            var budget1 = b0;
            const k1 = escape(1, xs[0..1].*, ys[0..1].*, it, &budget1).?;
            inline for (0..groups) |q| inline for (0..lanes) |l| {
                try testing.expectEqual(@as(i64, escapeScalar(xs[q][l], ys[q][l], it)), k[q][l]);
            };
            inline for (0..lanes) |l| try testing.expectEqual(k[0][l], k1[0][l]);
        };
    }
}

test "mandelbrot: every remainder width, long pixels across many budgets, thread counts" {
    // npix % 8 takes every value (pairs and an odd last pixel after the sets), sets span rows,
    // and max_iter 20000 makes a pixel cross several cancel-check stretches of passes.
    const Case = struct { w: u32, h: u32, x0: f64, x1: f64, y0: f64, y1: f64, it: u32 };
    var cases: [40]Case = undefined;
    for (&cases, 0..) |*cs, n| {
        const w: u32 = @intCast(1 + n % 20);
        const h: u32 = @intCast(1 + n / 20 * 2);
        cs.* = if (n % 2 == 0)
            .{ .w = w, .h = h, .x0 = -2, .x1 = 1, .y0 = -1.5, .y1 = 1.5, .it = @intCast(1 + n * 7) }
        else
            .{ .w = w, .h = h, .x0 = -0.76, .x1 = -0.74, .y0 = 0.09, .y1 = 0.11, .it = 20_000 };
    }
    const out = try alloc.alloc(u32, 20 * 5);
    defer alloc.free(out);
    for (thread_counts) |t| {
        setThreads(t);
        for (cases) |cs| {
            const px = out[0 .. @as(usize, cs.w) * cs.h];
            @memset(px, 0xDEAD_BEEF);
            try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(px), cs.w, cs.h, cs.x0, cs.x1, cs.y0, cs.y1, cs.it }));
            const dx = (cs.x1 - cs.x0) / @as(f64, @floatFromInt(cs.w));
            const dy = (cs.y1 - cs.y0) / @as(f64, @floatFromInt(cs.h));
            for (0..cs.h) |j| for (0..cs.w) |i| {
                const cx = cs.x0 + @as(f64, @floatFromInt(i)) * dx;
                const cy = cs.y0 + @as(f64, @floatFromInt(j)) * dy;
                try testing.expectEqual(escapeScalar(cx, cy, cs.it), px[j * cs.w + i]);
            };
        }
    }
    setThreads(1);
}

test "mandelbrot: infinities, NaN and huge windows give the scalar formula's counts" {
    const inf = std.math.inf(f64);
    const nan = std.math.nan(f64);
    // NaN never compares > 4 (runs to max_iter); inf and 1e300 overflow |z|^2 at once.
    const windows = [_][4]f64{
        .{ nan, 1, -1, 1 },  .{ -2, 1, nan, 1 },        .{ -inf, 1, -1, 1 },
        .{ -2, inf, -1, 1 }, .{ -1e300, 1e300, -1, 1 }, .{ -1e-300, 1e-300, -1e-300, 1e-300 },
        .{ 1, -2, 1.5, -1.5 }, // reversed bounds: dx, dy < 0
    };
    var out: [11 * 3]u32 = undefined;
    for (windows) |win| {
        try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(&out), 11, 3, win[0], win[1], win[2], win[3], 37 }));
        const dx = (win[1] - win[0]) / 11.0;
        const dy = (win[3] - win[2]) / 3.0;
        for (0..3) |j| for (0..11) |i| {
            const cx = win[0] + @as(f64, @floatFromInt(i)) * dx;
            const cy = win[2] + @as(f64, @floatFromInt(j)) * dy;
            try testing.expectEqual(escapeScalar(cx, cy, 37), out[j * 11 + i]);
        };
    }
}

test "cancel reaches inside one long mandelbrot pixel" {
    setThreads(1);
    const Canceller = struct {
        fn run() void {
            while (@atomicLoad(u32, &rt.counters.block.in_call, .seq_cst) == 0) std.atomic.spinLoopHint();
            // Let the kernel get deep into its first pixel (4e9 iterations: many seconds).
            var spin: usize = 0;
            while (spin < 20_000_000) : (spin += 1) std.atomic.spinLoopHint();
            setCancel(1);
        }
    };
    const t = try std.Thread.spawn(.{}, Canceller.run, .{});
    var out: [16]u32 = undefined;
    // every point of this window is inside the set: no pixel escapes early
    const st = c.call(mandelbrot, .{ addr(&out), 4, 4, -0.1, 0.1, -0.1, 0.1, 4_000_000_000 });
    t.join();
    setCancel(0);
    try testing.expectEqual(c.E_CANCELED, st);
    try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(&out), 4, 4, -2, 1, -1, 1, 50 }));
}

test "mandelbrot: one very wide row or one tall column is shared by the threads, pixel-exact" {
    for ([_][2]u32{ .{ 20_000, 1 }, .{ 1, 20_000 } }) |wh| {
        const npix = @as(usize, wh[0]) * wh[1];
        const out = try alloc.alloc(u32, npix);
        defer alloc.free(out);
        setThreads(4);
        const before = support.taskCounts();
        // x in [-0.1, 0.1] (or y): inside the set, every pixel runs all 3000 iterations.
        const x1: f64 = if (wh[0] > 1) 0.1 else -0.1 + 0.2 / 20_000.0;
        const y1: f64 = if (wh[1] > 1) 0.1 else -0.1 + 0.2 / 20_000.0;
        try testing.expectEqual(c.OK, c.call(mandelbrot, .{ addr(out), wh[0], wh[1], -0.1, x1, -0.1, y1, 3000 }));
        try testing.expect(support.threadsThatRan(before) >= 2);
        const dx = (x1 + 0.1) / @as(f64, @floatFromInt(wh[0]));
        const dy = (y1 + 0.1) / @as(f64, @floatFromInt(wh[1]));
        for (0..wh[1]) |j| for (0..wh[0]) |i| {
            const cx = -0.1 + @as(f64, @floatFromInt(i)) * dx;
            const cy = -0.1 + @as(f64, @floatFromInt(j)) * dy;
            try testing.expectEqual(escapeScalar(cx, cy, 3000), out[j * wh[0] + i]);
        };
    }
    setThreads(1);
}

test "mandelbrot: a cancel lands within 100 ms on a 200000 x 1 row and a 1 x 200000 column" {
    const out = try alloc.alloc(u32, 200_000);
    defer alloc.free(out);
    for ([_]usize{ 1, 4 }) |t| {
        setThreads(t);
        // max_iter 60000: below the old in-pixel check interval, so only the pixel split and
        // the cross-pixel budget can see the cancel (the issue: 41 s on one thread).
        try support.expectPromptCancel(mandelbrot, .{ addr(out), 200_000, 1, -0.1, 0.1, 0, 0.1, 60_000 }, 50);
        try support.expectPromptCancel(mandelbrot, .{ addr(out), 1, 200_000, 0, 0.1, -0.1, 0.1, 60_000 }, 50);
    }
    setThreads(1);
}
