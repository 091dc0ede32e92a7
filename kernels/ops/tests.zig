// Native tests of the compute kernels; referenced from kernels/tests.zig.
