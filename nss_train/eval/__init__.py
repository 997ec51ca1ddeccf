"""Evaluation: offline metrics over held-out sequences (evaluate), the non-neural baselines (baselines) and the
library behind tools/compare_upscalers.py that compares upscalers inside Godot (in_engine)."""
