// x^y for jr_map_binary/jr_map_scalar: a port of musl's pow (Arm Optimized Routines, MIT;
// worst-case error 0.54 ULP), the no-FMA variant (wasm has no fused multiply-add). Zig's
// std.math.pow (a port of Go's) is off by up to tens of ULP for large results, far from
// numpy's C pow. float32 goes through the f64 routine and rounds once more.
const std = @import("std");
const tables = @import("pow_tables.zig");

const log_table_bits = 7;
const exp_table_bits = 7;
const n_exp: u64 = 1 << exp_table_bits;
const off: u64 = 0x3fe6955500000000;
const sign_bias: u64 = 0x800 << exp_table_bits;

const ln2hi = 0x1.62e42fefa3800p-1;
const ln2lo = 0x1.ef35793c76730p-45;
// pow_data.c's log polynomial, scaled as there.
const a_poly = [7]f64{
    -0x1p-1,
    0x1.555555555556p-2 * -2.0,
    -0x1.0000000000006p-2 * -2.0,
    0x1.999999959554ep-3 * 4.0,
    -0x1.555555529a47ap-3 * 4.0,
    0x1.2495b9b4845e9p-3 * -8.0,
    -0x1.0002b8b263fc3p-3 * -8.0,
};
const inv_ln2_n = 0x1.71547652b82fep0 * 128.0;
const neg_ln2hi_n = -0x1.62e42fefa0000p-8;
const neg_ln2lo_n = -0x1.cf79abc9e3b3ap-47;
const shift = 0x1.8p52;
const c2 = 0x1.ffffffffffdbdp-2;
const c3 = 0x1.555555555543cp-3;
const c4 = 0x1.55555cf172b91p-5;
const c5 = 0x1.1111167a4d017p-7;

inline fn bits(x: f64) u64 {
    return @bitCast(x);
}

inline fn float(u: u64) f64 {
    return @bitCast(u);
}

inline fn top12(x: f64) u32 {
    return @intCast(bits(x) >> 52);
}

/// log(x) as hi + tail with ~15 extra bits; ix is x's bits (subnormals pre-normalised).
fn logInline(ix: u64, tail: *f64) f64 {
    const tmp = ix -% off;
    const i: usize = @intCast((tmp >> (52 - log_table_bits)) % (1 << log_table_bits));
    const k: i64 = @as(i64, @bitCast(tmp)) >> 52;
    const iz = ix -% (tmp & (@as(u64, 0xfff) << 52));
    const z = float(iz);
    const kd: f64 = @floatFromInt(k);
    const e = tables.log_tab[i];

    // Split z so that rhi, rlo and rhi*rhi are exact.
    const zhi = float((iz +% (1 << 31)) & (~@as(u64, 0) << 32));
    const zlo = z - zhi;
    const rhi = zhi * e.invc - 1.0;
    const rlo = zlo * e.invc;
    const r = rhi + rlo;

    const t1 = kd * ln2hi + e.logc;
    const t2 = t1 + r;
    const lo1 = kd * ln2lo + e.logctail;
    const lo2 = t1 - t2 + r;

    const ar = a_poly[0] * r;
    const ar2 = r * ar;
    const ar3 = r * ar2;
    const arhi = a_poly[0] * rhi;
    const arhi2 = rhi * arhi;
    const hi = t2 + arhi2;
    const lo3 = rlo * (ar + arhi);
    const lo4 = t2 - hi + arhi2;
    const p = ar3 * (a_poly[1] + r * a_poly[2] + ar2 * (a_poly[3] + r * a_poly[4] + ar2 * (a_poly[5] + r * a_poly[6])));
    const lo = lo1 + lo2 + lo3 + lo4 + p;
    const y = hi + lo;
    tail.* = hi - y + lo;
    return y;
}

fn overflow(sign: u64) f64 {
    return if (sign != 0) -std.math.inf(f64) else std.math.inf(f64);
}

fn underflow(sign: u64) f64 {
    return if (sign != 0) -0.0 else 0.0;
}

/// scale * (1 + tmp) when the exponent of scale may have overflowed or gone subnormal.
fn specialCase(tmp: f64, sbits0: u64, ki: u64) f64 {
    if (ki & 0x80000000 == 0) {
        const scale = float(sbits0 -% (1009 << 52));
        return 0x1p1009 * (scale + scale * tmp);
    }
    const sbits = sbits0 +% (1022 << 52);
    const scale = float(sbits);
    var y = scale + scale * tmp;
    if (@abs(y) < 1.0) {
        // Round to the right precision before scaling into the subnormal range.
        const one: f64 = if (y < 0.0) -1.0 else 1.0;
        var lo = scale - y + scale * tmp;
        const hi = one + y;
        lo = one - hi + y + lo;
        y = (hi + lo) - one;
        if (y == 0.0) y = float(sbits & 0x8000000000000000);
    }
    return 0x1p-1022 * y;
}

/// sign * exp(x + xtail).
fn expInline(x: f64, xtail: f64, sign: u64) f64 {
    var abstop = top12(x) & 0x7ff;
    if (abstop -% top12(0x1p-54) >= top12(512.0) -% top12(0x1p-54)) {
        if (abstop -% top12(0x1p-54) >= 0x80000000) {
            const one = 1.0 + x;
            return if (sign != 0) -one else one;
        }
        if (abstop >= top12(1024.0)) {
            return if (bits(x) >> 63 != 0) underflow(sign) else overflow(sign);
        }
        abstop = 0; // large x: handled by specialCase below
    }
    const z = inv_ln2_n * x;
    var kd = z + shift;
    const ki = bits(kd);
    kd -= shift;
    var r = x + kd * neg_ln2hi_n + kd * neg_ln2lo_n;
    r += xtail;
    const idx: usize = @intCast(2 * (ki % n_exp));
    const top = (ki +% sign) << (52 - exp_table_bits);
    const tail = float(tables.exp_tab[idx]);
    const sbits = tables.exp_tab[idx + 1] +% top;
    const r2 = r * r;
    const tmp = tail + r + r2 * (c2 + r * c3) + r2 * r2 * (c4 + r * c5);
    if (abstop == 0) return specialCase(tmp, sbits, ki);
    const scale = float(sbits);
    return scale + scale * tmp;
}

/// 0: not an integer, 1: odd integer, 2: even integer (iy: a non-zero finite value's bits).
fn checkInt(iy: u64) u32 {
    const e = (iy >> 52) & 0x7ff;
    if (e < 0x3ff) return 0;
    if (e > 0x3ff + 52) return 2;
    const sh: u6 = @intCast(0x3ff + 52 - e);
    if (iy & ((@as(u64, 1) << sh) - 1) != 0) return 0;
    if (iy & (@as(u64, 1) << sh) != 0) return 1;
    return 2;
}

/// True for the bits of 0, +-inf or NaN.
inline fn zeroInfNan(i: u64) bool {
    return 2 *% i -% 1 >= 2 *% bits(std.math.inf(f64)) -% 1;
}

pub fn pow64(x: f64, y: f64) f64 {
    var sign: u64 = 0;
    var ix = bits(x);
    const iy = bits(y);
    var topx = top12(x);
    const topy = top12(y);
    if (topx -% 0x001 >= 0x7ff - 0x001 or (topy & 0x7ff) -% 0x3be >= 0x43e - 0x3be) {
        if (zeroInfNan(iy)) {
            if (2 *% iy == 0) return 1.0;
            if (ix == bits(1.0)) return 1.0;
            if (2 *% ix > 2 *% bits(std.math.inf(f64)) or 2 *% iy > 2 *% bits(std.math.inf(f64))) return x + y;
            if (2 *% ix == 2 *% bits(1.0)) return 1.0;
            if ((2 *% ix < 2 *% bits(1.0)) == (iy >> 63 == 0)) return 0.0;
            return y * y;
        }
        if (zeroInfNan(ix)) {
            var x2 = x * x;
            if (ix >> 63 != 0 and checkInt(iy) == 1) x2 = -x2;
            return if (iy >> 63 != 0) 1.0 / x2 else x2;
        }
        // x and y are non-zero finite here.
        if (ix >> 63 != 0) {
            const yint = checkInt(iy);
            if (yint == 0) return std.math.nan(f64);
            if (yint == 1) sign = sign_bias;
            ix &= 0x7fffffffffffffff;
            topx &= 0x7ff;
        }
        if ((topy & 0x7ff) -% 0x3be >= 0x43e - 0x3be) {
            if (ix == bits(1.0)) return 1.0;
            if ((topy & 0x7ff) < 0x3be) return if (ix > bits(1.0)) 1.0 + y else 1.0 - y;
            return if ((ix > bits(1.0)) == (topy < 0x800)) overflow(0) else underflow(0);
        }
        if (topx == 0) {
            // Normalise a subnormal x so that its exponent becomes negative.
            ix = bits(x * 0x1p52);
            ix &= 0x7fffffffffffffff;
            ix -%= 52 << 52;
        }
    }
    var lo: f64 = undefined;
    const hi = logInline(ix, &lo);
    const yhi = float(iy & (~@as(u64, 0) << 27));
    const ylo = y - yhi;
    const lhi = float(bits(hi) & (~@as(u64, 0) << 27));
    const llo = hi - lhi + lo;
    const ehi = yhi * lhi;
    const elo = ylo * lhi + y * llo;
    return expInline(ehi, elo, sign);
}

pub fn pow(comptime T: type, x: T, y: T) T {
    if (T == f64) return pow64(x, y);
    return @floatCast(pow64(x, y));
}

test "pow64: special cases of C99 Annex F" {
    const inf = std.math.inf(f64);
    const nan = std.math.nan(f64);
    const t = std.testing;
    try t.expectEqual(@as(f64, 1), pow64(nan, 0));
    try t.expectEqual(@as(f64, 1), pow64(1, nan));
    try t.expect(std.math.isNan(pow64(nan, 1)));
    try t.expect(std.math.isNan(pow64(-2, 0.5)));
    try t.expectEqual(-inf, pow64(-0.0, -3));
    try t.expectEqual(inf, pow64(0.0, -2));
    try t.expectEqual(@as(f64, -0.0), pow64(-0.0, 3));
    try t.expectEqual(@as(f64, 1), pow64(-1, inf));
    try t.expectEqual(@as(f64, 0), pow64(0.5, inf));
    try t.expectEqual(inf, pow64(2, inf));
    try t.expectEqual(@as(f64, 0), pow64(-inf, -1));
    try t.expectEqual(-inf, pow64(-inf, 3));
    try t.expectEqual(inf, pow64(10, 400));
    try t.expectEqual(@as(f64, 0), pow64(10, -400));
    try t.expectEqual(@as(f64, -8), pow64(-2, 3));
}

test "pow64: exact powers and values that need more than Go's algorithm" {
    const t = std.testing;
    try t.expectEqual(@as(f64, 1024), pow64(2, 10));
    try t.expectEqual(@as(f64, 0x1p-1074), pow64(2, -1074));
    try t.expectEqual(@as(f64, 1e22), pow64(10, 22));
    try t.expectEqual(@as(f64, 3), pow64(9, 0.5));
    // correctly rounded values (Python's math.pow, glibc)
    try t.expectEqual(@as(f64, 2.8183829312644723e+78), pow64(10, 78.45));
    try t.expectEqual(@as(f64, 1.4142135623730951), pow64(2, 0.5));
}
