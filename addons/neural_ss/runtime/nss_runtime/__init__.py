"""nss_runtime: runs an exported NSS model with numpy + onnxruntime (no torch), for the Godot addon."""
__version__ = "0.1.0"
