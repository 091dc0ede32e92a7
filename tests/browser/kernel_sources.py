"""Python source run inside the browser kernels by several test modules (Pyodide has no numpy
offline, so references are plain Python)."""

# kernels/ABI.md's Mandelbrot formula, exactly: counts in row-major order, as a flat list.
REF_MANDELBROT = r"""
def ref_mandelbrot(width, height, x0, x1, y0, y1, max_iter):
    dx = (x1 - x0) / width
    dy = (y1 - y0) / height
    out = []
    for j in range(height):
        cy = y0 + j * dy
        for i in range(width):
            cx = x0 + i * dx
            zr = zi = 0.0
            k = 0
            while k < max_iter:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = (2.0 * zr) * zi + cy
                zr = (zr2 - zi2) + cx
                k += 1
            out.append(k)
    return out
"""
