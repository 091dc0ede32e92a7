//! Status codes of kernels/ABI.md and their messages (jr_strerror).
pub const OK: i32 = 0;
pub const E_INVAL: i32 = -1;
pub const E_NOMEM: i32 = -2;
pub const E_CANCELED: i32 = -3;
pub const E_EMPTY: i32 = -4;
pub const E_DTYPE: i32 = -5;
pub const E_RANGE: i32 = -6;
pub const E_THREADS: i32 = -7;
pub const E_BUSY: i32 = -8;

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
        else => "unknown status code",
    };
}
