//! The wasm root: every jr_* export of kernels/ABI.md. Pool control is defined here; the
//! compute kernels' exports come from ops/exports.zig.
const std = @import("std");
const rt = @import("runtime/runtime.zig");

const counters = rt.counters;
const status = rt.status;

comptime {
    _ = @import("ops/exports.zig");
    _ = @import("ops/jit.zig"); // the jit's exports (jr_jit_*, jr_math_*)
}

// Zig 0.17's std.heap.page_allocator is a compile error on threaded wasm; std.debug refers to
// it, so the root provides one (the runtime's own allocator).
pub const os = struct {
    pub const heap = struct {
        pub const page_allocator = rt.allocator;
    };
};

// ReleaseFast: a panic is `unreachable` (a trap the host reports), no WASI imports needed.
pub const panic = std.debug.no_panic;

export fn jr_abi_version() u32 {
    return counters.abi_version;
}

export fn jr_max_threads() u32 {
    return counters.max_threads;
}

export fn jr_counters() usize {
    return @intFromPtr(&counters.block);
}

export fn jr_set_threads(n: u32) i32 {
    return rt.setThreads(n);
}

export fn jr_alloc(nbytes: u32, zero: u32) usize {
    const p = rt.allocBytes(nbytes, 16, zero != 0) orelse return 0;
    return @intFromPtr(p);
}

export fn jr_free(ptr: usize) void {
    if (ptr == 0) return;
    rt.freeBytes(@ptrFromInt(ptr));
}

// The cell variants let a host own a block from before it exists. A host whose language can
// drop a returned address (Python raises KeyboardInterrupt between any two bytecodes) passes
// a cell, a u32 in memory its owner already holds and frees when it dies: the address lands
// there inside the call, so no window is left where nobody holds it. Each cell has one owner
// and one allocation at a time; jr_free_cell swaps it to 0 so a second free is a no-op.
export fn jr_alloc_into(cell: usize, nbytes: u32, zero: u32) usize {
    const slot: *u32 = @ptrFromInt(cell);
    const ptr = jr_alloc(nbytes, zero);
    @atomicStore(u32, slot, @intCast(ptr), .release);
    return ptr;
}

export fn jr_free_cell(cell: usize) void {
    const slot: *u32 = @ptrFromInt(cell);
    jr_free(@atomicRmw(u32, slot, .Xchg, 0, .acq_rel));
}

export fn jr_strerror(code: i32) usize {
    return @intFromPtr(status.message(code).ptr);
}

/// True when [ptr, ptr + len) lies inside memory.
fn inMemory(ptr: usize, len: usize) bool {
    const end = std.math.add(usize, ptr, len) catch return false;
    return ptr != 0 and end <= rt.platform.memoryTop();
}

const Fib = struct {
    n: u32,
    result: u64 = 0,

    pub fn run(self: *Fib) void {
        if (self.n < 2) {
            self.result = self.n;
            return;
        }
        var a: Fib = .{ .n = self.n - 1 };
        var b: Fib = .{ .n = self.n - 2 };
        rt.join(&a, &b);
        self.result = a.result + b.result;
    }
};

/// fib(n) by recursive join down to fib(1): measures join overhead. n <= 50.
export fn jr_bench_fib(n: u32, out: usize) i32 {
    if (n > 50) return status.E_INVAL;
    if (!inMemory(out, 8)) return status.E_RANGE;
    const Body = struct {
        fib: Fib,
        pub fn run(self: *@This()) i32 {
            self.fib.run();
            return status.OK;
        }
    };
    var body: Body = .{ .fib = .{ .n = n } };
    const rc = rt.call(&body);
    if (rc == status.OK) std.mem.writeInt(u64, @as(*[8]u8, @ptrFromInt(out)), body.fib.result, .little);
    return rc;
}

/// An empty parallelFor over n items with min chunk 1; writes how many chunks ran.
export fn jr_bench_for(n: u32, out: usize) i32 {
    if (!inMemory(out, 8)) return status.E_RANGE;
    const Chunks = struct {
        count: u64 = 0,
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            _ = lo;
            _ = hi;
            counters.add64(&self.count, 1);
        }
    };
    const Body = struct {
        n: u32,
        chunks: Chunks = .{},
        pub fn run(self: *@This()) i32 {
            rt.parallelFor(self.n, 1, &self.chunks);
            return status.OK;
        }
    };
    var body: Body = .{ .n = n };
    const rc = rt.call(&body);
    if (rc == status.OK) std.mem.writeInt(u64, @as(*[8]u8, @ptrFromInt(out)), body.chunks.count, .little);
    return rc;
}
