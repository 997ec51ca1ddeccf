"""The matmul GFLOP/s probe the benchmarks compare against (same process, same threads)."""
import time


def matmul_probe(n: int = 1024, reps: int = 3) -> float:
    """GFLOP/s of the best of `reps` fp32 n x n torch matmuls (MKL/oneDNN)."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9
