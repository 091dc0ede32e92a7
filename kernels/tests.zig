//! Native test root (x86_64-linux, std threads and futexes):
//!     python -m ziglang test kernels/tests.zig -O ReleaseSafe
//! Every test sits beside the code it tests; this root only makes the compiler see every file.
test {
    _ = @import("runtime/abi.zig");
    _ = @import("runtime/status.zig");
    _ = @import("runtime/counters.zig");
    _ = @import("runtime/platform.zig");
    _ = @import("runtime/deque.zig");
    _ = @import("runtime/job.zig");
    _ = @import("runtime/sleep.zig");
    _ = @import("runtime/thread.zig");
    _ = @import("runtime/alloc.zig");
    _ = @import("runtime/join.zig");
    _ = @import("runtime/scope.zig");
    _ = @import("runtime/parallel_for.zig");
    _ = @import("runtime/registry.zig");
    _ = @import("runtime/modules.zig");
    _ = @import("runtime/runtime.zig");
    _ = @import("ops/common.zig");
    _ = @import("ops/pow.zig");
    _ = @import("ops/reduce.zig");
    _ = @import("ops/map.zig");
    _ = @import("ops/scan.zig");
    _ = @import("ops/sort.zig");
    _ = @import("ops/matmul.zig");
    _ = @import("ops/mandelbrot.zig");
    _ = @import("ops/histogram.zig");
    _ = @import("ops/pi.zig");
    _ = @import("ops/exports.zig");
    _ = @import("ops/jit.zig");
}
