// The kernel exports of kernels/ABI.md ("Exports: kernels"). Each runs its kernel family's
// entry point inside rt.call, which marks the call, rejects re-entry and maps cancellation.
// Addresses and element counts are usize (i32 on wasm32).
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;
const reduce = @import("reduce.zig");
const map = @import("map.zig");
const scan = @import("scan.zig");
const sort = @import("sort.zig");
const matmul = @import("matmul.zig");
const mandelbrot = @import("mandelbrot.zig");
const histogram = @import("histogram.zig");
const pi = @import("pi.zig");

fn callKernel(comptime f: anytype, args: std.meta.ArgsTuple(@TypeOf(f))) i32 {
    const Body = struct {
        args: @TypeOf(args),
        pub fn run(self: *@This()) i32 {
            return @call(.auto, f, self.args);
        }
    };
    var body: Body = .{ .args = args };
    return rt.call(&body);
}

pub export fn jr_reduce(op: u32, dtype: u32, x: usize, n: usize, out: usize) i32 {
    return callKernel(reduce.reduce, .{ op, dtype, x, n, out });
}

pub export fn jr_dot(dtype: u32, x: usize, y: usize, n: usize, out: usize) i32 {
    return callKernel(reduce.dot, .{ dtype, x, y, n, out });
}

pub export fn jr_map_unary(op: u32, dtype: u32, x: usize, out: usize, n: usize) i32 {
    return callKernel(map.mapUnary, .{ op, dtype, x, out, n });
}

pub export fn jr_map_binary(op: u32, dtype: u32, x: usize, y: usize, out: usize, n: usize) i32 {
    return callKernel(map.mapBinary, .{ op, dtype, x, y, out, n });
}

pub export fn jr_map_scalar(op: u32, dtype: u32, x: usize, s: f64, out: usize, n: usize, swap: u32) i32 {
    return callKernel(map.mapScalar, .{ op, dtype, x, s, out, n, swap });
}

pub export fn jr_clip(dtype: u32, x: usize, lo: f64, hi: f64, out: usize, n: usize) i32 {
    return callKernel(map.clip, .{ dtype, x, lo, hi, out, n });
}

pub export fn jr_cumsum(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return callKernel(scan.cumsum, .{ dtype, x, out, n });
}

pub export fn jr_sort(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return callKernel(sort.sort, .{ dtype, x, out, n });
}

pub export fn jr_argsort(dtype: u32, x: usize, out: usize, n: usize) i32 {
    return callKernel(sort.argsort, .{ dtype, x, out, n });
}

pub export fn jr_matmul(dtype: u32, a: usize, b: usize, cm: usize, m: usize, k: usize, n: usize) i32 {
    return callKernel(matmul.matmul, .{ dtype, a, b, cm, m, k, n });
}

pub export fn jr_mandelbrot(out: usize, width: u32, height: u32, x0: f64, x1: f64, y0: f64, y1: f64, max_iter: u32) i32 {
    return callKernel(mandelbrot.mandelbrot, .{ out, width, height, x0, x1, y0, y1, max_iter });
}

pub export fn jr_histogram(dtype: u32, x: usize, n: usize, bins: u32, lo: f64, hi: f64, out: usize) i32 {
    return callKernel(histogram.histogram, .{ dtype, x, n, bins, lo, hi, out });
}

pub export fn jr_pi(samples: i64, seed: i64, out: usize) i32 {
    return callKernel(pi.pi, .{ samples, seed, out });
}
