//! Native test root (x86_64-linux, std threads and futexes):
//!     python -m ziglang test kernels/tests.zig -O ReleaseSafe
//! The runtime's tests sit beside its code; the compute kernels' tests come from ops/tests.zig.
test {
    _ = @import("runtime/runtime.zig");
    _ = @import("ops/tests.zig");
}
