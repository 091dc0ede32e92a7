// jr_mandelbrot: escape iteration counts, exactly the formula of kernels/ABI.md (IEEE f64, no
// fused multiply-add), two pixels at a time in f64x2 lanes. Rows cost wildly different
// amounts, so tasks are single rows (min_len 1) and the splitter balances them.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const lanes = 2;
const V = @Vector(lanes, f64);
const U = @Vector(lanes, u32);
const cancel_check_every: u32 = 1 << 16;

/// Iterations before |z|^2 > 4 (or max_iter) for the points (cx[l], cy).
fn escape(cx: V, cy: f64, max_iter: u32) U {
    const cyv: V = @splat(cy);
    const four: V = @splat(4.0);
    const two: V = @splat(2.0);
    var zr: V = @splat(0.0);
    var zi: V = @splat(0.0);
    var k: U = @splat(0);
    var active: @Vector(lanes, bool) = @splat(true);
    var it: u32 = 0;
    while (it < max_iter) : (it += 1) {
        // One pixel can take seconds at a large max_iter: honour a cancel inside it too (the
        // result is discarded then).
        if (it % cancel_check_every == cancel_check_every - 1 and rt.pollCancelled()) break;
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

const Rows = struct {
    out: []align(1) u32,
    width: usize,
    x0: f64,
    y0: f64,
    dx: f64,
    dy: f64,
    max_iter: u32,

    fn cx(self: *const Rows, i: usize) f64 {
        return self.x0 + @as(f64, @floatFromInt(i)) * self.dx;
    }

    pub fn run(self: *Rows, lo: usize, hi: usize) void {
        for (lo..hi) |j| {
            const cy = self.y0 + @as(f64, @floatFromInt(j)) * self.dy;
            const row = self.out[j * self.width ..][0..self.width];
            var i: usize = 0;
            while (i + lanes <= self.width) : (i += lanes) {
                var xs: V = undefined;
                inline for (0..lanes) |l| xs[l] = self.cx(i + l);
                row[i..][0..lanes].* = escape(xs, cy, self.max_iter);
            }
            // The odd last pixel: both lanes on it.
            if (i < self.width) row[i] = escape(@splat(self.cx(i)), cy, self.max_iter)[0];
        }
    }
};

/// jr_mandelbrot(out, width, height, x0, x1, y0, y1, max_iter)
pub fn mandelbrot(out: usize, width: u32, height: u32, x0: f64, x1: f64, y0: f64, y1: f64, max_iter: u32) i32 {
    const npix = std.math.mul(usize, width, height) catch return c.E_RANGE;
    _ = c.byteRange(out, npix, 4) orelse return c.E_RANGE;
    if (npix == 0) return c.OK;
    var rows: Rows = .{
        .out = c.slice(u32, out, npix),
        .width = width,
        .x0 = x0,
        .y0 = y0,
        .dx = (x1 - x0) / @as(f64, @floatFromInt(width)),
        .dy = (y1 - y0) / @as(f64, @floatFromInt(height)),
        .max_iter = max_iter,
    };
    rt.parallelFor(height, 1, &rows);
    return c.OK;
}
