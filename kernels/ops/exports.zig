// Kernel exports (jr_reduce, jr_map_*, ...): see kernels/ABI.md. Filled in by the ops work.
