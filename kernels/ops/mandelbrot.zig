// jr_mandelbrot: escape iteration counts, exactly the formula of kernels/ABI.md (IEEE f64, no
// fused multiply-add), two pixels at a time in f64x2 lanes. Work is split by pixels, not rows
// (row-major pixel index), so one very wide row or one very tall column still keeps every
// thread busy, and a task checks for cancel after every 2^16 iterations it has run, across
// pixels and inside one long pixel, so a cancel lands within about a millisecond.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const lanes = 2;
const V = @Vector(lanes, f64);
const U = @Vector(lanes, u32);
/// Iterations between cancel checks (about 100 us of work).
const cancel_check_every: u32 = 1 << 16;

/// Iterations before |z|^2 > 4 (or max_iter) for the points (cx[l], cy[l]). `budget` counts
/// iterations down to the next cancel check; returns null once cancelled.
fn escape(cx: V, cyv: V, max_iter: u32, budget: *u32) ?U {
    const four: V = @splat(4.0);
    const two: V = @splat(2.0);
    var zr: V = @splat(0.0);
    var zi: V = @splat(0.0);
    var k: U = @splat(0);
    var active: @Vector(lanes, bool) = @splat(true);
    var it: u32 = 0;
    while (it < max_iter) : (it += 1) {
        if (budget.* == 0) {
            budget.* = cancel_check_every;
            if (rt.pollCancelled()) return null;
        }
        budget.* -= 1;
        const zr2 = zr * zr;
        const zi2 = zi * zi;
        // A lane stops for good at its first escape; escaped lanes keep iterating harmlessly.
        active = active & !(zr2 + zi2 > four);
        if (!@reduce(.Or, active)) break;
        zi = (two * zr) * zi + cyv;
        zr = (zr2 - zi2) + cx;
        k += @select(u32, active, @as(U, @splat(1)), @as(U, @splat(0)));
    }
    return k;
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

    fn cx(self: *const Pixels, p: usize) f64 {
        return self.x0 + @as(f64, @floatFromInt(p % self.width)) * self.dx;
    }

    fn cy(self: *const Pixels, p: usize) f64 {
        return self.y0 + @as(f64, @floatFromInt(p / self.width)) * self.dy;
    }

    /// Pixels [lo, hi) in row-major order; a lane pair may span two rows.
    pub fn run(self: *Pixels, lo: usize, hi: usize) void {
        var budget: u32 = cancel_check_every;
        var p = lo;
        while (p + lanes <= hi) : (p += lanes) {
            var xs: V = undefined;
            var ys: V = undefined;
            inline for (0..lanes) |l| {
                xs[l] = self.cx(p + l);
                ys[l] = self.cy(p + l);
            }
            self.out[p..][0..lanes].* = escape(xs, ys, self.max_iter, &budget) orelse return;
        }
        // An odd last pixel: both lanes on it.
        if (p < hi) self.out[p] = (escape(@splat(self.cx(p)), @splat(self.cy(p)), self.max_iter, &budget) orelse return)[0];
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
    rt.parallelFor(npix, lanes, &pixels);
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
