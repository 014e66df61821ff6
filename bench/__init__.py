"""Benchmarks of inl-sim against the plain-PyTorch floor (see BENCHMARKS.md)."""
