"""The notebook front: the %parallel magics and the pool widget."""
