"""Fused splatting kernels: numba on CPU (cpu.py), Triton on CUDA (cuda.py); splat.softmax_splat picks one."""
