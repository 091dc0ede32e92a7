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

test "pow64: within 1 ULP of glibc (Python's math.pow) on random arguments" {
    // (x, y, math.pow(x, y)) from CPython on glibc, which is correctly rounded here
    const cases = [_][3]f64{
        .{ 46.30073578150215, -25.337613720991598, 6.280256170757592e-43 },
        .{ 1.550147448192117, 456.3844707462133, 7.643377015995702e+86 },
        .{ -49.54917937160598, -118.0, 9.676025303971469e-201 },
        .{ 8.895760557740515e-301, 0.5451604763676756, 2.655545310204668e-164 },
        .{ 91.13792792699496, -20.691418228768697, 2.8251744891932363e-41 },
        .{ 0.5352247383825477, -150.5492964948179, 7.390730096300754e+40 },
        .{ -44.623760910147276, -82.0, 5.439688844922362e-136 },
        .{ 7.008476598845071e-301, -0.7092856143034223, 7.855633819751368e+212 },
        .{ 93.97154644793893, 43.92705255497381, 4.654954146250811e+86 },
        .{ 1.8029900905355989, -195.26480211432613, 1.0315995954370173e-50 },
        .{ -4.336955721441998, 27.0, -1.599538439797221e+17 },
        .{ 7.99369853812751e-301, -0.3425756990817945, 6.397731013177428e+102 },
        .{ 43.357249432584354, -57.314559486946614, 1.4877449935090725e-94 },
        .{ 1.7113247338157693, -5.3387977767191614, 0.05679176369200253 },
        .{ -47.792059503458994, 136.0, 2.4682062804154903e+228 },
        .{ 2.629607540101675e-301, -0.6715709569131421, 7.258911021395425e+201 },
        .{ 12.026228462575105, -70.33613769430707, 1.0662677767358322e-76 },
        .{ 1.342898222927675, -725.4007911418134, 1.310492675771884e-93 },
        .{ -29.408669057181726, -64.0, 1.0413010575004866e-94 },
        .{ 1.7332868881156008e-301, 0.2593674632963636, 9.825366766134371e-79 },
        .{ 8.42722964452568, 56.029811188054936, 7.344228385427764e+51 },
        .{ 1.389397452918111, -475.1224140013784, 1.380159588862086e-68 },
        .{ -39.8059889918488, 143.0, -6.203315288500832e+228 },
        .{ 8.88896552013254e-301, 0.4550011910937437, 2.9948144282441295e-137 },
        .{ 67.87929505327186, -94.15927473732421, 3.34920800218154e-173 },
        .{ 1.4199109343466605, 356.1119051242231, 1.6672152478175152e+54 },
        .{ -27.35085134788198, 93.0, -4.3479943314233904e+133 },
        .{ 9.863148143769652e-301, 0.6655687710330984, 2.1153665429953254e-200 },
        .{ 10.623530218518296, -30.247307313625754, 9.080933145600216e-32 },
        .{ 0.6238259714740653, -792.7597501716583, 2.9204307906293002e+162 },
        .{ -0.7740551379530947, -21.0, -216.66569195627196 },
        .{ 6.389429946501204e-301, 0.36238556020235424, 1.6361918237201546e-109 },
        .{ 13.223000839463417, -92.22168803173415, 3.881970288049207e-104 },
        .{ 0.6416227485552496, -364.6432095867358, 1.8798763965318333e+70 },
        .{ -23.087482328195236, 141.0, -1.7222540704133777e+192 },
        .{ 7.1160246706363e-301, 0.31752522135735495, 4.960383507101615e-96 },
        .{ 13.769344198496004, 25.074237713091165, 3.608957133785451e+28 },
        .{ 1.3286910439486443, -58.80583483951568, 5.520115832659232e-08 },
        .{ -10.255859073782347, -36.0, 4.027229653070984e-37 },
        .{ 6.491842034791709e-301, -0.209081733384457, 5.804308015011782e+62 },
        .{ 88.84369178604359, 1.2414691871165786, 262.518477660679 },
        .{ 1.6657053142980889, -643.7139724079952, 2.2602727998037307e-143 },
        .{ -37.73171048378178, -11.0, -4.53136005868732e-18 },
        .{ 5.454109928361224e-301, 0.8577450714159571, 2.8226354189070016e-258 },
        .{ 2.622782870059104, -62.71839508748294, 5.443750395901891e-27 },
        .{ 1.2730439775007052, 678.3226532605813, 1.3111663590516294e+71 },
        .{ -40.406703501442024, 54.0, 5.60382708936467e+86 },
        .{ 2.601931609098109e-301, -0.5057677363245277, 1.0618064961198821e+152 },
    };
    for (cases) |cs| {
        const got: i64 = @bitCast(pow64(cs[0], cs[1]));
        const want: i64 = @bitCast(cs[2]);
        try std.testing.expect(@abs(got - want) <= 1);
    }
}
