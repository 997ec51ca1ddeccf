"""Export: a model as an ONNX graph for the ONNX Runtime helper (onnx) and as a GPU program for the Godot
compute-shader runtime (gpu: the entry point; program_builder and accum_to_program emit the ops)."""
