// What every kernel family shares: status codes, dtype codes, pointer-range validation,
// the fixed-block layout and the fixed pairwise combine tree (kernels/ABI.md).
const std = @import("std");
const builtin = @import("builtin");

pub const rt = @import("../runtime/runtime.zig");

pub const OK = rt.status.OK;
pub const E_INVAL = rt.status.E_INVAL;
pub const E_NOMEM = rt.status.E_NOMEM;
pub const E_CANCELED = rt.status.E_CANCELED;
pub const E_EMPTY = rt.status.E_EMPTY;
pub const E_DTYPE = rt.status.E_DTYPE;
pub const E_RANGE = rt.status.E_RANGE;

pub const Dtype = enum(u32) {
    f64 = 0,
    f32 = 1,
    i32 = 2,
    i64 = 3,
    u32 = 4,
    u64 = 5,

    pub fn Type(comptime d: Dtype) type {
        return switch (d) {
            .f64 => f64,
            .f32 => f32,
            .i32 => i32,
            .i64 => i64,
            .u32 => u32,
            .u64 => u64,
        };
    }

    pub fn size(d: Dtype) usize {
        return switch (d) {
            .f64, .i64, .u64 => 8,
            .f32, .i32, .u32 => 4,
        };
    }

    pub fn isFloat(d: Dtype) bool {
        return d == .f64 or d == .f32;
    }
};

/// Unsigned integer element types (uint32, uint64): abs is the identity, min/max and sorting
/// compare without sign, sums wrap modulo 2**64 (numpy's uint64).
pub inline fn isUnsigned(comptime T: type) bool {
    return @typeInfo(T) == .int and @typeInfo(T).int.signedness == .unsigned;
}

/// What an integer reduction (sum, min, max, dot) and cumsum of T produce: u64 for unsigned
/// T, i64 for signed T, each wrapping (numpy's dtype for sums of uint32/uint64 and int32/int64).
pub fn Wide(comptime T: type) type {
    return if (isUnsigned(T)) u64 else i64;
}

pub fn dtypeFromCode(code: u32) ?Dtype {
    return std.enums.fromInt(Dtype, code);
}

/// dot, integer sums, min/max, integer cumsum and histogram work on blocks of this many
/// elements, whatever the thread count, so that their results are bit-identical for 1..64
/// threads and in the st build (float sum, mean and cumsum follow numpy's order instead).
pub const block_len: usize = 4096;

pub fn blockCount(n: usize) usize {
    return n / block_len + @intFromBool(n % block_len != 0);
}

/// Pointers into wasm memory may have any alignment (the host may hand out views); wasm
/// loads and stores accept that, so kernels use align(1) pointers and never trap on it.
pub fn Ptr(comptime T: type) type {
    return [*]align(1) T;
}

/// Top of wasm memory. Native tests pass addresses from the system heap, so no bound there.
pub fn memoryBytes() usize {
    if (builtin.cpu.arch.isWasm()) return @as(usize, @wasmMemorySize(0)) * 65536;
    return std.math.maxInt(usize);
}

/// Byte range of `n` elements of `elem_size` at `addr`, or null when the length overflows,
/// the range does not fit in memory, or a non-empty range starts at address 0.
pub fn byteRange(addr: usize, n: usize, elem_size: usize) ?Range {
    const nbytes = std.math.mul(usize, n, elem_size) catch return null;
    if (nbytes == 0) return .{ .start = addr, .end = addr };
    if (addr == 0) return null;
    const end = std.math.add(usize, addr, nbytes) catch return null;
    if (end > memoryBytes()) return null;
    return .{ .start = addr, .end = end };
}

pub const Range = struct {
    start: usize,
    end: usize,

    pub fn overlaps(a: Range, b: Range) bool {
        return a.start < b.end and b.start < a.end;
    }

    /// Out arrays may alias their input exactly (in place) but not partly.
    pub fn sameOrDisjoint(a: Range, b: Range) bool {
        return !a.overlaps(b) or (a.start == b.start and a.end == b.end);
    }
};

/// A slice over a validated range; `n == 0` gives an empty slice that is never dereferenced.
pub fn slice(comptime T: type, addr: usize, n: usize) []align(1) T {
    if (n == 0) return &.{};
    const p: Ptr(T) = @ptrFromInt(addr);
    return p[0..n];
}

/// Fixed pairwise combine tree over per-block partials (in place): level by level, p[i] =
/// p[2i] + p[2i+1], an odd last element moves up unchanged. The shape depends only on the
/// number of blocks, never on how blocks were scheduled.
pub fn pairwiseCombine(comptime T: type, p: []T, comptime add: fn (T, T) T) T {
    var m = p.len;
    std.debug.assert(m > 0);
    while (m > 1) {
        const half = m / 2;
        for (0..half) |i| p[i] = add(p[2 * i], p[2 * i + 1]);
        if (m % 2 == 1) p[half] = p[m - 1];
        m = half + m % 2;
    }
    return p[0];
}

/// Run the kernel entry `f(args...) -> i32` inside rt.call (marks the call, rejects re-entry,
/// maps cancellation): what every jr_* export does, and what the kernels' tests call.
pub fn call(comptime f: anytype, args: std.meta.ArgsTuple(@TypeOf(f))) i32 {
    const Body = struct {
        args: @TypeOf(args),
        pub fn run(self: *@This()) i32 {
            return @call(.auto, f, self.args);
        }
    };
    var body: Body = .{ .args = args };
    return rt.call(&body);
}

/// Scratch memory from the pool allocator (counted in bytes_in_use); null is E_NOMEM.
pub fn scratch(comptime T: type, n: usize) ?[]T {
    return rt.allocator.alloc(T, n) catch null;
}

pub fn freeScratch(s: anytype) void {
    rt.allocator.free(s);
}

test "pairwiseCombine has the documented shape" {
    const add = struct {
        fn f(a: f64, b: f64) f64 {
            return a + b;
        }
    }.f;
    var one = [_]f64{3.0};
    try std.testing.expectEqual(@as(f64, 3.0), pairwiseCombine(f64, &one, add));
    // ((1e16 + 1) + (-1e16 + 1)) + 1 : the shape decides the rounding.
    var five = [_]f64{ 1e16, 1.0, -1e16, 1.0, 1.0 };
    const big: f64 = 1e16;
    const one_f: f64 = 1.0;
    const expect = ((big + one_f) + (-big + one_f)) + one_f; // 1.0; in order it would be 2.0
    try std.testing.expectEqual(expect, pairwiseCombine(f64, &five, add));
}

test "dtype codes, sizes and element types are the ABI's table" {
    const want = [_]struct { code: u32, size: usize, T: type }{
        .{ .code = 0, .size = 8, .T = f64 },
        .{ .code = 1, .size = 4, .T = f32 },
        .{ .code = 2, .size = 4, .T = i32 },
        .{ .code = 3, .size = 8, .T = i64 },
        .{ .code = 4, .size = 4, .T = u32 },
        .{ .code = 5, .size = 8, .T = u64 },
    };
    inline for (want) |w| {
        const d = comptime dtypeFromCode(w.code).?;
        try std.testing.expectEqual(w.size, d.size());
        try std.testing.expectEqual(w.size, @sizeOf(w.T));
        try std.testing.expect(d.Type() == w.T);
    }
    try std.testing.expect(dtypeFromCode(6) == null);
    try std.testing.expect(isUnsigned(u64) and isUnsigned(u32) and !isUnsigned(i64) and !isUnsigned(f64));
    try std.testing.expect(Wide(u32) == u64 and Wide(u64) == u64 and Wide(i32) == i64);
}

test "byteRange rejects overflow and address 0" {
    try std.testing.expect(byteRange(0, 1, 8) == null);
    try std.testing.expect(byteRange(16, std.math.maxInt(usize) / 4, 8) == null);
    try std.testing.expect(byteRange(std.math.maxInt(usize) - 4, 1, 8) == null);
    try std.testing.expect(byteRange(0, 0, 8) != null);
    const r = byteRange(64, 3, 8).?;
    try std.testing.expectEqual(@as(usize, 88), r.end);
    try std.testing.expect(r.sameOrDisjoint(r));
    try std.testing.expect(!r.sameOrDisjoint(byteRange(72, 3, 8).?));
    try std.testing.expect(r.sameOrDisjoint(byteRange(88, 3, 8).?));
}
