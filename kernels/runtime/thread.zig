//! Starting and ending helper threads. On wasm: the wasi-threads ABI (`wasi.thread-spawn`
//! import, `wasi_thread_start` export written in assembly), each helper with its own stack and
//! TLS block that are kept per worker index and reused. Natively: std.Thread.
const std = @import("std");
const platform = @import("platform.zig");
const registry = @import("registry.zig");
const alloc = @import("alloc.zig");

const wasm_mt = platform.is_wasm and platform.threaded;

/// Stack of each helper (the caller's stack is the module's own, `--stack` in build.py).
pub const stack_pages = 16; // 1 MiB

/// What `wasi_thread_start` receives as `arg`. extern: `stack_top` must stay at offset 0,
/// the assembly reads it before any compiled code runs.
const StartBlock = extern struct {
    stack_top: usize,
    tls_base: usize,
    worker: usize, // *registry.Worker
};

pub const Handle = struct {
    native: if (platform.is_wasm) void else ?std.Thread = if (platform.is_wasm) {} else null,
    /// wasm: the helper's stack + TLS region, allocated once per worker index and reused.
    region: usize = 0,
    start: StartBlock = .{ .stack_top = 0, .tls_base = 0, .worker = 0 },
};

// wasi_thread_start sets __stack_pointer from the start block before any compiled code runs
// (a compiled function's prologue would push its frame on the instance's initial stack, which
// belongs to the caller thread). After jr_thread_main returns the address of the worker's
// `exited` word, the assembly stores 1 there and notifies: from then on nothing touches the
// helper's stack, so the stack can be reused at once by a new thread.
comptime {
    if (wasm_mt) asm (
        \\ .globaltype __stack_pointer, i32
        \\ .functype jr_thread_main (i32, i32) -> (i32)
        \\ .globl wasi_thread_start
        \\ .export_name wasi_thread_start, wasi_thread_start
        \\ .type wasi_thread_start,@function
        \\ wasi_thread_start:
        \\ .functype wasi_thread_start (i32, i32) -> ()
        \\ .local i32
        \\ local.get 1
        \\ i32.load 0
        \\ global.set __stack_pointer
        \\ local.get 0
        \\ local.get 1
        \\ call jr_thread_main
        \\ local.tee 2
        \\ i32.const 1
        \\ i32.atomic.store 0
        \\ local.get 2
        \\ i32.const -1
        \\ memory.atomic.notify 0
        \\ drop
        \\ end_function
    );
}

extern "wasi" fn @"thread-spawn"(arg: usize) i32;
extern fn __wasm_init_tls(mem: usize) void;

fn tlsSize() usize {
    return asm volatile (
        \\ .globaltype __tls_size, i32, immutable
        \\ global.get __tls_size
        \\ local.set %[ret]
        : [ret] "=r" (-> usize),
    );
}

fn threadMain(tid: i32, sb: *StartBlock) callconv(.c) usize {
    _ = tid;
    __wasm_init_tls(sb.tls_base);
    const w: *registry.Worker = @ptrFromInt(sb.worker);
    registry.helperMain(w);
    return @intFromPtr(&w.exited);
}

comptime {
    if (wasm_mt) @export(&threadMain, .{ .name = "jr_thread_main", .visibility = .hidden });
}

fn nativeMain(w: *registry.Worker) void {
    registry.helperMain(w);
    @atomicStore(u32, &w.exited, 1, .seq_cst);
    platform.futexWake(&w.exited, std.math.maxInt(u32));
}

/// Native tests only: when set, how many more spawns may succeed (to exercise E_THREADS).
pub var native_spawn_budget: ?usize = null;

/// Start the helper thread for worker `w`; false when no thread could be started.
pub fn spawn(w: *registry.Worker) bool {
    if (!platform.threaded) return false;
    if (!platform.is_wasm) {
        if (native_spawn_budget) |*left| {
            if (left.* == 0) return false;
            left.* -= 1;
        }
        w.os.native = std.Thread.spawn(.{ .stack_size = 8 << 20 }, nativeMain, .{w}) catch return false;
        return true;
    }
    if (!wasm_mt) return false;
    if (w.os.region == 0) {
        // TLS at the bottom of the region (page aligned, which satisfies __tls_align), the
        // stack above it growing down from the top.
        const tls_pages = std.math.divCeil(usize, tlsSize() + 16, platform.page_size) catch unreachable;
        w.os.region = alloc.allocRuntimePages(stack_pages + tls_pages) orelse return false;
        w.os.start = .{
            .stack_top = w.os.region + (stack_pages + tls_pages) * platform.page_size,
            .tls_base = w.os.region,
            .worker = @intFromPtr(w),
        };
    }
    return @"thread-spawn"(@intFromPtr(&w.os.start)) > 0;
}

/// Wait until worker `w`'s thread has returned from its entry point.
pub fn waitExited(w: *registry.Worker) void {
    if (!platform.threaded) return;
    while (@atomicLoad(u32, &w.exited, .seq_cst) == 0) {
        _ = platform.futexWait(&w.exited, 0, null);
    }
    if (!platform.is_wasm) {
        if (w.os.native) |t| t.join();
        w.os.native = null;
    }
}
