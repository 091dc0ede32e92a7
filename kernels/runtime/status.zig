//! Status codes of kernels/ABI.md (their values come from the generated abi.zig) and their
//! messages (jr_strerror).
const abi = @import("abi.zig");

pub const OK = abi.OK;
pub const E_INVAL = abi.E_INVAL;
pub const E_NOMEM = abi.E_NOMEM;
pub const E_CANCELED = abi.E_CANCELED;
pub const E_EMPTY = abi.E_EMPTY;
pub const E_DTYPE = abi.E_DTYPE;
pub const E_RANGE = abi.E_RANGE;
pub const E_THREADS = abi.E_THREADS;
pub const E_BUSY = abi.E_BUSY;
pub const E_INDEX = abi.E_INDEX;
pub const E_ZERODIV = abi.E_ZERODIV;
pub const E_VALUE = abi.E_VALUE;
pub const E_LOAD = abi.E_LOAD;

pub fn message(code: i32) [:0]const u8 {
    return switch (code) {
        OK => "ok",
        E_INVAL => "invalid argument",
        E_NOMEM => "out of pool memory: the module's maximum memory is reached",
        E_CANCELED => "cancelled",
        E_EMPTY => "reduction of an empty array has no identity",
        E_DTYPE => "operation not supported for this dtype",
        E_RANGE => "a pointer and length fall outside pool memory, or lengths overflow",
        E_THREADS => "a pool thread could not be started",
        E_BUSY => "the pool is busy with another call",
        E_INDEX => "a jitted function indexed an array out of bounds",
        E_ZERODIV => "a jitted function divided by zero",
        E_VALUE => "a jitted function met an invalid value",
        E_LOAD => "a pool thread could not load a jitted module",
        else => "unknown status code",
    };
}

test "status: every code of abi.zig has its own message" {
    const std = @import("std");
    const codes = [_]i32{ OK, E_INVAL, E_NOMEM, E_CANCELED, E_EMPTY, E_DTYPE, E_RANGE, E_THREADS, E_BUSY, E_INDEX, E_ZERODIV, E_VALUE, E_LOAD };
    // Every i32 constant of abi.zig named OK or E_* is listed above (a new code needs a message).
    var listed: usize = 0;
    inline for (comptime std.meta.declarations(abi)) |name| {
        const v = @field(abi, name);
        if (@TypeOf(v) == i32 and (std.mem.eql(u8, name, "OK") or std.mem.startsWith(u8, name, "E_"))) {
            try std.testing.expect(std.mem.indexOfScalar(i32, &codes, v) != null);
            listed += 1;
        }
    }
    try std.testing.expectEqual(codes.len, listed);
    for (codes, 0..) |a, i| {
        try std.testing.expect(!std.mem.eql(u8, message(a), "unknown status code"));
        for (codes[i + 1 ..]) |b| try std.testing.expect(!std.mem.eql(u8, message(a), message(b)));
    }
    try std.testing.expectEqualStrings("unknown status code", message(-1000));
}
