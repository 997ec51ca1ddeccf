class_name NeuralSSFrame
extends RefCounted
## One captured low-res frame, already in the frame contract's units
## (nss_runtime/contract.py, docs/frame_contract.md).

## Frame counter of the capturing NeuralSSViewport (increments by one per rendered frame).
var index: int = 0
## Low-res size in pixels.
var size: Vector2i = Vector2i.ZERO
## RGBA32F, row-major, top row first: r, g, b = linear colour before tone mapping,
## a = linear view depth (scene units; background = 1e10).
var colour_depth: PackedByteArray
## RG32F, row-major, top row first: motion in low-res pixels, prev = p + motion (x right, y down).
var motion: PackedByteArray
## Sub-pixel camera offset in low-res pixels (non-zero when the low-res render is jittered: use_taa,
## NeuralSSViewport.jitter, or a model that asks for it).
var jitter: Vector2 = Vector2.ZERO
## History must be reset before this frame (first frame, camera cut, resolution change).
var camera_cut: bool = false
## Camera intrinsics in low-res pixels: fx, fy, cx, cy, near, far, fov_y_deg.
var intrinsics: Dictionary = {}
## Scene time of the frame in seconds (as given by the viewport's time source).
var time: float = 0.0
## CPU milliseconds spent in the capture render callback for this frame.
var capture_ms: float = 0.0


func bytes_ok() -> bool:
	var n := size.x * size.y
	return n > 0 and colour_depth.size() == n * 16 and motion.size() == n * 8
