"""Evaluation: the one home of the image metrics (metrics), offline evaluation over held-out sequences (evaluate),
the non-neural baselines (baselines), the accum ablations (ablation, tools/accum_ablation.py), and inside Godot:
the library behind tools/compare_upscalers.py (in_engine) and tools/compare_suite.py (in_engine_suite), the demo
run (demo, tools/run_demo.py), the runtime server as a subprocess (runtime_process), runs of the real addon for
tests and benchmarks (godot_runs) and the comparison pictures (pictures)."""
