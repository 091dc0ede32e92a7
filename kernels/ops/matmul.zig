// jr_matmul: row-major C[m,n] = A[m,k] @ B[k,n] for f64 and f32. A matrix-vector product (n
// == 1) streams each row of A once (MatVec). Otherwise C is cut into tiles run in
// parallel; inside a tile, k is walked in slabs of k_slab so the B slab stays in cache (and a
// cancel is looked for between slabs), and a register-blocked SIMD micro-kernel computes
// micro_rows x (2 vectors) of C at a time. Small outputs get smaller tiles (down to one
// micro-kernel) so that every thread helps; tile sizes stay multiples of the micro-kernel's,
// so whether an element comes from the micro-kernel or the edge code, and in which order its
// sum is formed, depends only on (m, k, n): results do not depend on tiles or threads.
const std = @import("std");
const c = @import("common.zig");
const rt = c.rt;

const micro_rows = 4;
const micro_vecs = 2;
const k_slab = 256;
const tile_rows = 64;
/// Fewer tiles than this and tiles shrink (when the shape allows it).
const min_tiles = 64;

fn Kernel(comptime T: type) type {
    return struct {
        const vl = 16 / @sizeOf(T); // one simd128 register
        const V = @Vector(vl, T);
        const micro_cols = micro_vecs * vl;
        // Tile width: a k_slab x tile_cols slab of B is 128 KiB.
        const tile_cols = (128 * 1024) / (k_slab * @sizeOf(T));

        a: c.Ptr(T),
        b: c.Ptr(T),
        cm: c.Ptr(T),
        m: usize,
        k: usize,
        n: usize,
        col_tiles: usize,
        rows_per_tile: usize,
        cols_per_tile: usize,

        /// C[i..i+micro_rows, j..j+micro_cols] (=, or += when !first) A[i.., p0..p1] @ B[p0..p1, j..]
        inline fn micro(self: *const @This(), i: usize, j: usize, p0: usize, p1: usize, first: bool) void {
            var acc: [micro_rows][micro_vecs]V = @splat(@splat(@splat(0)));
            for (p0..p1) |p| {
                const brow = self.b + p * self.n + j;
                var bv: [micro_vecs]V = undefined;
                inline for (0..micro_vecs) |v| bv[v] = brow[v * vl ..][0..vl].*;
                inline for (0..micro_rows) |r| {
                    const av: V = @splat(self.a[(i + r) * self.k + p]);
                    inline for (0..micro_vecs) |v| acc[r][v] += av * bv[v];
                }
            }
            inline for (0..micro_rows) |r| {
                const crow = self.cm + (i + r) * self.n + j;
                inline for (0..micro_vecs) |v| {
                    const dst = crow[v * vl ..][0..vl];
                    dst.* = if (first) acc[r][v] else @as(V, dst.*) + acc[r][v];
                }
            }
        }

        /// The ragged edges (fewer than micro_rows rows or micro_cols columns), a row at a
        /// time: C[i, col0..col1] += A[i,p] * B[p, col0..col1], vectorised over columns.
        fn edge(self: *const @This(), r0: usize, r1: usize, col0: usize, col1: usize, p0: usize, p1: usize) void {
            for (r0..r1) |i| {
                const crow = self.cm + i * self.n;
                if (p0 == 0) @memset(crow[col0..col1], 0);
                for (p0..p1) |p| {
                    const aip = self.a[i * self.k + p];
                    const brow = self.b + p * self.n;
                    const av: V = @splat(aip);
                    var j = col0;
                    while (j + vl <= col1) : (j += vl) {
                        crow[j..][0..vl].* = @as(V, crow[j..][0..vl].*) + av * @as(V, brow[j..][0..vl].*);
                    }
                    while (j < col1) : (j += 1) crow[j] += aip * brow[j];
                }
            }
        }

        fn tile(self: *const @This(), t: usize) void {
            const row0 = (t / self.col_tiles) * self.rows_per_tile;
            const col0 = (t % self.col_tiles) * self.cols_per_tile;
            const row1 = @min(self.m, row0 + self.rows_per_tile);
            const col1 = @min(self.n, col0 + self.cols_per_tile);
            const full_i = row0 + (row1 - row0) / micro_rows * micro_rows;
            const full_j = col0 + (col1 - col0) / micro_cols * micro_cols;
            var p0: usize = 0;
            while (p0 < self.k) : (p0 += k_slab) {
                // A tile with a long k runs for seconds: honour a cancel between slabs (the
                // result is discarded then).
                if (p0 != 0 and rt.pollCancelled()) return;
                const p1 = @min(self.k, p0 + k_slab);
                var i = row0;
                while (i < full_i) : (i += micro_rows) {
                    var j = col0;
                    while (j < full_j) : (j += micro_cols) self.micro(i, j, p0, p1, p0 == 0);
                    if (full_j < col1) self.edge(i, i + micro_rows, full_j, col1, p0, p1);
                }
                if (full_i < row1) self.edge(full_i, row1, col0, col1, p0, p1);
            }
        }

        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            for (lo..hi) |t| self.tile(t);
        }
    };
}

/// C[m, 1] = A[m, k] @ B[k, 1], the matrix-vector product (also jr.dot of 2-D with 1-D): each
/// row is a dot product streamed once through memory.
///
/// How a row's sum is formed depends on k alone (never on the threads, the build or which rows
/// are computed together), in one of three forms:
/// - short rows (k < short_k, 16 registers): one simd128 register of lane accumulators from
///   zero, the lanes combined in a fixed tree of halves, then the last k mod lanes products in
///   order (shortRows, the row unrolled: 100000 x 20 f64 0.28 ms against 0.55 four at a time);
/// - rows under 24 KiB: four registers of lanes (vector j of the row into register j mod 4),
///   the tree over their lanes, then the tail (the last k mod 4 * lanes products) in order;
///   one row at a time, one sequential stream. Seven rows at a time in one register each
///   (chunks of k / 4 to stay as accurate) was 5-15% faster while A is in L3 (f32 2000 x
///   2000 0.29 -> 0.26 ms) but 13% slower out of it (f32 4000 x 4000) and 50% slower for
///   many short rows (f64 16000 x 300: chunks of 80);
/// - rows of 24 KiB and more: the row cut into chunks of `chunk` elements from its start (the
///   last one shorter); each chunk's products go lane by lane into one register from zero, the
///   chunk registers are added lane by lane in order, then the tree, then the tail (the last k
///   mod lanes products) in order. No lane adds more than chunk / lanes products plus one a
///   chunk, so long rows are as accurate as rows in four registers (one register over the
///   whole row was k / lanes products a lane: 4000 x 4000 f64 errors 6.4e-13 -> 1.3e-13).
///
/// Long rows go `group` at a time: each load of B serves all of them, and there are `group` chains
/// of adds (4000 x 4000 f64 from DRAM, one thread, side by side in one process: 4.4-4.8 ms four
/// rows at a time, 3.9-4.1 seven). Why 7: Cranelift places every load of a loop iteration before
/// its arithmetic (loads may trap, so they keep their order; the multiplies and adds go where their
/// results are first needed, the back edge) and folds no v128 load into a multiply (not even one
/// right before it), so an iteration's loads plus the accumulators must fit x86's 16 vector
/// registers: 7 rows + 7 loads + B = 15; 8 rows, or two registers a row, spill (up to 1.7x slower).
/// Tried and slower (same runs, wasmtime; the row counts in V8 too): A in k-blocks so that B stays
/// in L1 (a row's block after the other rows' blocks: the prefetcher loses the stream, 1.3-2.5x
/// slower), a row's chunks side by side (one stream each), touching rows ahead with a load (wasm
/// has no prefetch; 25-85% slower), two or three rows in four registers each (an exit test after
/// every step makes Cranelift do each step's arithmetic before the next loads, so they fit, but out
/// of L3 they ran 1.6-2.4x slower), and the chunk sums kept in the leaf (a nested loop: up to 40%
/// slower). Groups of rows (7, or 4-6 when that spreads few rows more evenly over the threads:
/// groupRows) are the tasks shared among the threads; how many rows go together never changes a
/// row's sum.
fn MatVec(comptime T: type) type {
    return struct {
        const vl = 16 / @sizeOf(T); // lanes of one simd128 register
        const V = @Vector(vl, T);
        /// Most rows a group holds (long rows go together; see above for why 7).
        pub const group = 7;
        /// Long rows: elements summed in one register before joining the row's total.
        const chunk = 512;
        /// Rows shorter than this (16 registers) go through shortRows.
        const short_k = 16 * vl;
        /// Elements of a row between cancel checks (a single very long row is one task).
        const poll_every = 1 << 20;

        a: c.Ptr(T),
        b: c.Ptr(T),
        cm: c.Ptr(T),
        m: usize,
        k: usize,
        /// Rows a group (a task's unit): groupRows(m, threads), 4 to `group`.
        rows: usize = group,

        fn long(k: usize) bool {
            return k * @sizeOf(T) >= 24 * 1024;
        }

        /// Rows a group for m rows on `threads` threads: the size (4 to 7) that gives the
        /// busiest thread the least work, each row weighted by how fast its group size runs
        /// (measured: 4 rows at a time about 8% slower a row than 7). 20 rows on two threads
        /// go 5 a group (2 + 2 groups) instead of 7 (2 + 1).
        pub fn groupRows(m: usize, threads: usize) usize {
            const weight = [_]usize{ 108, 105, 102, 100 }; // 4, 5, 6, 7 rows
            var best: usize = group;
            var best_cost: usize = std.math.maxInt(usize);
            var r: usize = group;
            while (r >= 4) : (r -= 1) {
                const groups = tilesAlong(m, r);
                const busiest = @min(m, tilesAlong(groups, @max(threads, 1)) * r);
                const cost = busiest * weight[r - 4];
                if (cost < best_cost) {
                    best = r;
                    best_cost = cost;
                }
            }
            return best;
        }

        fn Acc(comptime R: usize, comptime regs: usize) type {
            return [R]@Vector(regs * vl, T);
        }

        /// acc[r] += A[i + r, p0..p1] * B[p0..p1] lane by lane, p1 - p0 a multiple of the lanes.
        /// A leaf function with one loop: the engine (Cranelift) then keeps the accumulators in
        /// machine registers; with a call or other loops in the function its register
        /// allocator spilled them (2x slower).
        noinline fn sweep(self: *const @This(), comptime R: usize, comptime regs: usize, i: usize, p0: usize, p1: usize, out: *Acc(R, regs)) void {
            const lanes = regs * vl;
            const W = @Vector(lanes, T);
            const k = self.k;
            const b = self.b;
            var ar: [R]c.Ptr(T) = undefined;
            inline for (0..R) |r| ar[r] = self.a + (i + r) * k;
            var acc = out.*;
            var p = p0;
            while (p < p1) : (p += lanes) {
                const bv: W = b[p..][0..lanes].*;
                inline for (0..R) |r| acc[r] += @as(W, ar[r][p..][0..lanes].*) * bv;
            }
            out.* = acc;
        }

        /// Row i, under 24 KiB, in four registers. The sweep is called from a loop over
        /// poll_every pieces (one piece here) as long rows are: called once with p0 = 0, LLVM
        /// unrolled its loop by two, and the doubled loads spilled the accumulators (1.5x
        /// slower).
        fn midRow(self: *const @This(), i: usize) void {
            const lanes = 4 * vl;
            const k = self.k;
            const whole = k / lanes * lanes;
            var acc: Acc(1, 4) = @splat(@splat(0));
            var p: usize = 0;
            while (p < whole) {
                const end = @min(whole, p + poll_every);
                self.sweep(1, 4, i, p, end, &acc);
                p = end;
            }
            const ar = self.a + i * k;
            var s: T = laneTree(lanes, acc[0]);
            var q = whole;
            while (q < k) : (q += 1) s += ar[q] * self.b[q];
            self.cm[i] = s;
        }

        /// Long rows i..i+R (R <= group), chunk by chunk.
        fn longRows(self: *const @This(), comptime R: usize, i: usize) void {
            const k = self.k;
            const whole = k / vl * vl;
            var total: Acc(R, 1) = @splat(@splat(0));
            var p: usize = 0;
            var next_poll: usize = poll_every;
            while (p < whole) {
                if (p >= next_poll) {
                    if (rt.pollCancelled()) return;
                    next_poll += poll_every;
                }
                const end = @min(whole, p + chunk);
                var sums: Acc(R, 1) = @splat(@splat(0));
                self.sweep(R, 1, i, p, end, &sums);
                inline for (0..R) |r| total[r] += sums[r];
                p = end;
            }
            inline for (0..R) |r| {
                const ar = self.a + (i + r) * k;
                var s: T = laneTree(vl, total[r]);
                var q = whole;
                while (q < k) : (q += 1) s += ar[q] * self.b[q];
                self.cm[i + r] = s;
            }
        }

        fn laneTree(comptime w: usize, v: @Vector(w, T)) T {
            if (w == 1) return v[0];
            const half = w / 2;
            const lo: @Vector(half, T) = @as([w]T, v)[0..half].*;
            const hi: @Vector(half, T) = @as([w]T, v)[half..].*;
            return laneTree(half, lo + hi);
        }

        /// Rows lo..hi of a short matrix (k < short_k): each row's whole registers unrolled
        /// (nv of them, known at compile time), so a row costs its loads, multiplies and adds
        /// and one store, without the per-row call, loop and pointer updates of the other
        /// forms. One register of lanes from zero, the lane tree, then the tail in order.
        noinline fn shortRows(self: *const @This(), comptime nv: usize, lo: usize, hi: usize) void {
            const k = self.k;
            const b = self.b;
            var bv: [nv]V = undefined;
            inline for (0..nv) |v| bv[v] = b[v * vl ..][0..vl].*;
            for (lo..hi) |i| {
                const ar = self.a + i * k;
                var acc: V = @splat(0);
                inline for (0..nv) |v| acc += @as(V, ar[v * vl ..][0..vl].*) * bv[v];
                var s: T = laneTree(vl, acc);
                var q = nv * vl;
                while (q < k) : (q += 1) s += ar[q] * b[q];
                self.cm[i] = s;
            }
        }

        /// Groups lo..hi of `rows` rows (the last one may be shorter).
        pub fn run(self: *@This(), lo: usize, hi: usize) void {
            const r0 = lo * self.rows;
            const r1 = @min(self.m, hi * self.rows);
            if (self.k < short_k) {
                switch (self.k / vl) {
                    inline 0...(short_k / vl - 1) => |nv| self.shortRows(nv, r0, r1),
                    else => unreachable,
                }
            } else if (!long(self.k)) {
                // A task is at most 64K elements or one group of rows under 24 KiB: the
                // pool polls between tasks.
                for (r0..r1) |i| self.midRow(i);
            } else {
                var i = r0;
                while (i < r1) : (i += self.rows) {
                    switch (@min(self.rows, r1 - i)) {
                        inline 1...group => |R| self.longRows(R, i),
                        else => unreachable,
                    }
                }
            }
        }
    };
}

fn tilesAlong(len: usize, per_tile: usize) usize {
    return len / per_tile + @intFromBool(len % per_tile != 0);
}

fn matmulTyped(comptime T: type, a: usize, b: usize, cm: usize, m: usize, k: usize, n: usize) i32 {
    const K = Kernel(T);
    if (m == 0 or n == 0) return c.OK;
    if (k == 0) {
        @memset(c.slice(T, cm, m * n), 0);
        return c.OK;
    }
    if (n == 1) {
        const MV = MatVec(T);
        const rows = MV.groupRows(m, rt.numThreads());
        var mv: MV = .{ .a = @ptrFromInt(a), .b = @ptrFromInt(b), .cm = @ptrFromInt(cm), .m = m, .k = k, .rows = rows };
        // 64K multiply-adds a task at least: a few tens of microseconds.
        rt.parallelFor(tilesAlong(m, rows), @max(1, (1 << 16) / (k * rows)), &mv);
        return c.OK;
    }
    // Halve the tiles (rows first) while there are too few for the threads and halving adds
    // tiles; sizes stay multiples of micro_rows x micro_cols.
    var rows_per_tile: usize = tile_rows;
    var cols_per_tile: usize = K.tile_cols;
    // A tile twice the matrix is no tile at all: shrink those first (the tile count stays).
    while (rows_per_tile > micro_rows and rows_per_tile / 2 >= m) rows_per_tile /= 2;
    while (cols_per_tile > K.micro_cols and cols_per_tile / 2 >= n) cols_per_tile /= 2;
    while (tilesAlong(m, rows_per_tile) * tilesAlong(n, cols_per_tile) < min_tiles) {
        if (rows_per_tile > micro_rows and m > rows_per_tile / 2) {
            rows_per_tile /= 2;
        } else if (cols_per_tile > K.micro_cols and n > cols_per_tile / 2) {
            cols_per_tile /= 2;
        } else break;
    }
    const row_tiles = tilesAlong(m, rows_per_tile);
    const col_tiles = tilesAlong(n, cols_per_tile);
    var body: K = .{
        .a = @ptrFromInt(a),
        .b = @ptrFromInt(b),
        .cm = @ptrFromInt(cm),
        .m = m,
        .k = k,
        .n = n,
        .col_tiles = col_tiles,
        .rows_per_tile = rows_per_tile,
        .cols_per_tile = cols_per_tile,
    };
    rt.parallelFor(row_tiles * col_tiles, 1, &body);
    return c.OK;
}

/// jr_matmul(dtype, a, b, c, m, k, n)
pub fn matmul(dtype_code: u32, a: usize, b: usize, cm: usize, m: usize, k: usize, n: usize) i32 {
    const dt = c.dtypeFromCode(dtype_code) orelse return c.E_INVAL;
    if (!dt.isFloat()) return c.E_DTYPE;
    const mk = std.math.mul(usize, m, k) catch return c.E_INVAL;
    const kn = std.math.mul(usize, k, n) catch return c.E_INVAL;
    const mn = std.math.mul(usize, m, n) catch return c.E_INVAL;
    const ar = c.byteRange(a, mk, dt.size()) orelse return c.E_RANGE;
    const br = c.byteRange(b, kn, dt.size()) orelse return c.E_RANGE;
    const cr = c.byteRange(cm, mn, dt.size()) orelse return c.E_RANGE;
    // C is written while A and B are still read: no overlap at all.
    if (cr.overlaps(ar) or cr.overlaps(br)) return c.E_INVAL;
    return switch (dt) {
        inline .f64, .f32 => |d| matmulTyped(d.Type(), a, b, cm, m, k, n),
        else => unreachable,
    };
}

// ---- tests ---------------------------------------------------------------------------------
// Each kernel runs through c.call (validation, rt.call, the real parallel path), as its jr_*
// export does, and is compared with a plain sequential reference written here, over many sizes
// and thread counts.

const testing = std.testing;
const support = @import("test_support.zig");
const alloc = support.alloc;
const sizes = support.sizes;
const thread_counts = support.thread_counts;
const setThreads = support.setThreads;
const addr = support.addr;
const randomArray = support.randomArray;
const Ref = support.Ref;

fn checkMatmul(comptime T: type, dtype: u32, rng: std.Random, m: usize, k: usize, n: usize) !void {
    const a = try randomArray(T, rng, m * k);
    defer alloc.free(a);
    const b = try randomArray(T, rng, k * n);
    defer alloc.free(b);
    const out = try alloc.alloc(T, m * n);
    defer alloc.free(out);
    const first = try alloc.alloc(T, m * n);
    defer alloc.free(first);
    @memset(out, std.math.nan(T)); // must be overwritten, not accumulated into
    for (thread_counts, 0..) |t, ti| {
        setThreads(t);
        try testing.expectEqual(c.OK, c.call(matmul, .{ dtype, addr(a), addr(b), addr(out), m, k, n }));
        if (ti == 0) @memcpy(first, out) else try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(first), std.mem.sliceAsBytes(out)));
    }
    setThreads(1);
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        var mag: f64 = 0;
        for (0..k) |p| {
            const prod = @as(f64, a[i * k + p]) * @as(f64, b[p * n + j]);
            s += prod;
            mag += @abs(prod);
        }
        const tol = 2 * @as(f64, @floatFromInt(k + 1)) * std.math.floatEps(T) * mag;
        try testing.expectApproxEqAbs(s, @as(f64, out[i * n + j]), tol);
    };
}

test "matmul: odd shapes, f32 and f64, against a naive triple loop" {
    var prng = std.Random.DefaultPrng.init(9);
    const rng = prng.random();
    const shapes = [_][3]usize{ .{ 1, 1, 1 }, .{ 7, 13, 1 }, .{ 300, 7, 1 }, .{ 5, 1031, 1 }, .{ 3000, 64, 1 }, .{ 1, 100003, 1 }, .{ 6, 5000, 1 }, .{ 9, 9000, 1 }, .{ 11, 20, 1 }, .{ 7, 13, 5 }, .{ 65, 33, 129 }, .{ 4, 8, 16 }, .{ 1, 300, 70 }, .{ 131, 257, 3 }, .{ 64, 512, 33 }, .{ 2, 1, 2 }, .{ 0, 3, 4 }, .{ 3, 0, 4 }, .{ 129, 65, 200 } };
    for (shapes) |s| {
        try checkMatmul(f64, 0, rng, s[0], s[1], s[2]);
        try checkMatmul(f32, 1, rng, s[0], s[1], s[2]);
    }
    var x = [_]i32{ 1, 2 };
    var o = [_]i32{ 0, 0, 0, 0 };
    try testing.expectEqual(c.E_DTYPE, c.call(matmul, .{ 2, addr(&x), addr(&x), addr(&o), 2, 1, 2 }));
    var f = [_]f64{ 1, 2, 3, 4 };
    try testing.expectEqual(c.E_INVAL, c.call(matmul, .{ 0, addr(&f), addr(&f), addr(&f), 2, 2, 2 }));
    try testing.expectEqual(c.E_INVAL, c.call(matmul, .{ 0, addr(&f), addr(&f), addr(&o), std.math.maxInt(usize) / 2, 4, 1 }));
}

test "matmul: results do not depend on the tile sizes the shape picks" {
    // Rows 0..63 of a (130 x k) @ (k x n) product are computed with other tiles than the
    // (64 x k) @ (k x n) product of the same rows; both must agree bit for bit.
    var prng = std.Random.DefaultPrng.init(12);
    const rng = prng.random();
    inline for (.{ f64, f32 }) |T| {
        const dt: u32 = if (T == f64) 0 else 1;
        for ([_][2]usize{ .{ 300, 70 }, .{ 513, 3 }, .{ 40, 257 } }) |kn| {
            const k = kn[0];
            const n = kn[1];
            const a = try randomArray(T, rng, 130 * k);
            defer alloc.free(a);
            const b = try randomArray(T, rng, k * n);
            defer alloc.free(b);
            const big = try alloc.alloc(T, 130 * n);
            defer alloc.free(big);
            const small = try alloc.alloc(T, 64 * n);
            defer alloc.free(small);
            try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a), addr(b), addr(big), 130, k, n }));
            try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a), addr(b), addr(small), 64, k, n }));
            try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(small), std.mem.sliceAsBytes(big[0 .. 64 * n])));
            // m = 1: the first row alone (tiles one row high, columns cut small).
            const one = try alloc.alloc(T, n);
            defer alloc.free(one);
            if (n >= 64) { // the edge path there and in the big product: rows >= 128 are edges
                try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a[129 * k ..]), addr(b), addr(one), 1, k, n }));
                try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(one), std.mem.sliceAsBytes(big[129 * n ..][0..n])));
            }
        }
    }
}

test "matvec: every short row length (the unrolled rows) and the lengths around the switches" {
    var prng = std.Random.DefaultPrng.init(14);
    const rng = prng.random();
    for (1..70) |k| {
        try checkMatmul(f64, 0, rng, 9, k, 1);
        try checkMatmul(f32, 1, rng, 9, k, 1);
    }
    // one register at a time from 24 KiB rows: f64 k = 3072, f32 k = 6144
    for ([_]usize{ 3071, 3072, 3073, 6143, 6144, 6145 }) |k| {
        try checkMatmul(f64, 0, rng, 5, k, 1);
        try checkMatmul(f32, 1, rng, 5, k, 1);
    }
}

test "matvec: a row's value does not depend on the rows computed with it or the threads" {
    // Long rows go seven at a time, the leftover rows of a group together (fewer of them);
    // mid rows one at a time. Shifting A by one row moves every row to another place in its
    // group.
    var prng = std.Random.DefaultPrng.init(13);
    const rng = prng.random();
    inline for (.{ f64, f32 }) |T| {
        const dt: u32 = if (T == f64) 0 else 1;
        for ([_]usize{ 1, 3, 20, 31, 63, 64, 300, 3100, 4100, 9000 }) |k| {
            const m = 17; // rows in groups that depend on the thread count (7, 7, 3 at one)
            const a = try randomArray(T, rng, m * k);
            defer alloc.free(a);
            const b = try randomArray(T, rng, k);
            defer alloc.free(b);
            const whole = try alloc.alloc(T, m);
            defer alloc.free(whole);
            const shifted = try alloc.alloc(T, m - 1);
            defer alloc.free(shifted);
            for (thread_counts) |t| {
                setThreads(t);
                try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a), addr(b), addr(whole), m, k, 1 }));
                try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a[k..]), addr(b), addr(shifted), m - 1, k, 1 }));
                try testing.expect(std.mem.eql(u8, std.mem.sliceAsBytes(whole[1..]), std.mem.sliceAsBytes(shifted)));
            }
        }
    }
    setThreads(1);
}

test "matmul: a cancel lands within 100 ms (64 x 2^18 x 64, m = 1); small outputs use every thread" {
    const k = 1 << 18;
    const a = try alloc.alloc(f32, 64 * k);
    defer alloc.free(a);
    @memset(a, 1.5);
    const b = try alloc.alloc(f32, k * 64);
    defer alloc.free(b);
    @memset(b, 0.5);
    const out = try alloc.alloc(f32, 64 * 64);
    defer alloc.free(out);
    for ([_]usize{ 1, 4 }) |t| {
        setThreads(t);
        try support.expectPromptCancel(matmul, .{ 1, addr(a), addr(b), addr(out), 64, k, 64 }, 20);
    }
    // m = 1 with a long k: every thread gets column tiles.
    setThreads(4);
    const before = support.taskCounts();
    try testing.expectEqual(c.OK, c.call(matmul, .{ 1, addr(a), addr(b), addr(out), 1, k, 64 }));
    try testing.expect(support.threadsThatRan(before) >= 2);
    for (out[0..64]) |v| try testing.expectEqual(@as(f32, 0.75 * k), v);
    setThreads(1);
}

/// A row's sum in the order MatVec documents, one lane at a time in scalars: short rows one
/// register, rows under 24 KiB four registers, longer rows chunks of MatVec.chunk elements in
/// one register each, added in order; then the lane tree; then the tail in order.
fn documentedOrder(comptime T: type, row: []const T, b: []const T) T {
    const MV = MatVec(T);
    const vl = MV.vl;
    const k = row.len;
    var lanes: [4 * vl]T = @splat(0);
    var w: usize = vl; // lanes in use
    var whole: usize = k / vl * vl;
    if (k < MV.short_k) {
        for (0..whole) |p| lanes[p % vl] += row[p] * b[p];
    } else if (!MV.long(k)) {
        w = 4 * vl;
        whole = k / w * w;
        for (0..whole) |p| lanes[p % w] += row[p] * b[p];
    } else {
        var c0: usize = 0;
        while (c0 < whole) : (c0 += MV.chunk) {
            var sums: [vl]T = @splat(0);
            for (c0..@min(whole, c0 + MV.chunk)) |p| sums[p % vl] += row[p] * b[p];
            for (0..vl) |l| lanes[l] += sums[l];
        }
    }
    while (w > 1) : (w /= 2) {
        for (0..w / 2) |l| lanes[l] += lanes[l + w / 2];
    }
    var s = lanes[0];
    for (whole..k) |q| s += row[q] * b[q];
    return s;
}

test "matvec: every row's sum is the documented order, bit for bit (every form, every group size)" {
    var prng = std.Random.DefaultPrng.init(15);
    const rng = prng.random();
    inline for (.{ f64, f32 }) |T| {
        const dt: u32 = if (T == f64) 0 else 1;
        const MV = MatVec(T);
        const vl = MV.vl;
        const long_k = 24 * 1024 / @sizeOf(T); // first long row length
        const lengths = [_]usize{
            1,                              vl - 1,                vl + 1,
            MV.short_k - 1,                 MV.short_k,            MV.short_k + 1,
            4 * vl * 7 + 3,                 1000,                  long_k - 1,
            long_k,                         long_k + 1,            long_k + vl - 1,
            long_k + MV.chunk,              long_k + MV.chunk + 1, long_k + 3 * MV.chunk - vl,
            long_k + 3 * MV.chunk + vl + 1, 5 * MV.chunk * vl + 5,
        };
        for (lengths) |k| {
            // m from 1 to 16: every group size of long rows (1..7) and a second group
            for ([_]usize{ 1, 2, 3, 4, 5, 6, 7, 8, 13, 16 }) |m| {
                const a = try randomArray(T, rng, m * k);
                defer alloc.free(a);
                const b = try randomArray(T, rng, k);
                defer alloc.free(b);
                const out = try alloc.alloc(T, m);
                defer alloc.free(out);
                for ([_]usize{ 1, 3 }) |t| {
                    setThreads(t);
                    @memset(out, std.math.nan(T));
                    try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a), addr(b), addr(out), m, k, 1 }));
                    for (0..m) |i| {
                        const want = documentedOrder(T, a[i * k ..][0..k], b);
                        if (!std.mem.eql(u8, std.mem.asBytes(&want), std.mem.asBytes(&out[i]))) {
                            std.debug.print("{s} m={d} k={d} row {d} threads {d}: {d} against {d}\n", .{ @typeName(T), m, k, i, t, out[i], want });
                            return error.TestUnexpectedResult;
                        }
                    }
                }
            }
        }
    }
    setThreads(1);
}

test "matvec: long rows are as accurate as rows in four registers (chunked sums)" {
    // Every product 1 + 2^-12 (f32; f64: 1 + 2^-41). One register over a whole long row adds
    // k / lanes products into a lane: once a lane holds more than 2^12 (f64 2^11) the 2^-12
    // of each product rounds away, a relative error of about 2^-12 (2000 eps). Chunks keep a
    // lane's sum under chunk / lanes + 1 products, where it is exact, and the chunk sums stay
    // exact in the total: the result is k (1 + 2^-12) to a few eps.
    inline for (.{ f64, f32 }) |T| {
        const dt: u32 = if (T == f64) 0 else 1;
        const k = 200_000;
        const tiny: T = if (T == f64) 0x1p-41 else 0x1p-12;
        const a = try alloc.alloc(T, k);
        defer alloc.free(a);
        const b = try alloc.alloc(T, k);
        defer alloc.free(b);
        @memset(a, 1);
        @memset(b, 1 + tiny);
        var out: [1]T = undefined;
        try testing.expectEqual(c.OK, c.call(matmul, .{ dt, addr(a), addr(b), addr(&out), 1, k, 1 }));
        const exact = @as(f64, k) * (1 + @as(f64, tiny));
        const rel = @abs((@as(f64, out[0]) - exact) / exact);
        try testing.expect(rel <= 16 * std.math.floatEps(T));
    }
}

test "matvec: groupRows spreads few rows evenly and keeps 7 for many" {
    const MV = MatVec(f64);
    try testing.expectEqual(@as(usize, 5), MV.groupRows(20, 2)); // 4 groups: 2 + 2
    try testing.expectEqual(@as(usize, 7), MV.groupRows(4000, 2));
    try testing.expectEqual(@as(usize, 7), MV.groupRows(14, 2)); // 7 + 7
    try testing.expectEqual(@as(usize, 7), MV.groupRows(20, 1));
    try testing.expectEqual(@as(usize, 6), MV.groupRows(24, 4)); // 4 groups of 6
    try testing.expectEqual(@as(usize, 7), MV.groupRows(1, 4));
    try testing.expectEqual(@as(usize, 7), MV.groupRows(0, 2));
}
