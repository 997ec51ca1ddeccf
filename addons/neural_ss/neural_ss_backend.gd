class_name NeuralSSBackend
extends Node
## What feeds a NeuralSSViewport's NEURAL mode: the GPU runtime (NeuralSSGpuBackend, gpu/) or the
## Python runtime (NeuralSSPythonBackend, bridge/). NeuralSSViewport.choose_backend() picks one and adds
## it as its child; the backend hands upscaled frames to the viewport ([method
## NeuralSSViewport.set_upscaled_texture] / [method NeuralSSViewport.set_upscaled_image]) and its
## per-stage timings to the overlay (stats["runtime"] is its one-line label).

## The viewport this backend feeds (its parent).
var viewport: NeuralSSViewport
## The test / tool hooks (--nss-record, ...), or null when none was given.
var hooks: NeuralSSTestHooks


## Called by the viewport when its capture effect is created (before it renders). The GPU runtime runs
## the network inside it; the Python runtime reads the captured frames through frame_captured instead.
func attach_capture(_effect: NeuralSSCaptureEffect) -> void:
	pass


## The model's scale (upscaling factor per axis) once known, else 0.
func model_scale() -> int:
	return 0


## True when the model wants raw sub-pixel jitter on its input frames (a temporal model).
func model_wants_jitter() -> bool:
	return false
