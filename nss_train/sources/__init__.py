"""Producers of frame sequences in the frame contract: Blender (render, scenes) and Godot (godot_pairs drives the
paired capture, godot_raw converts the addon's raw captures, worldgen builds procedural worlds to capture)."""
