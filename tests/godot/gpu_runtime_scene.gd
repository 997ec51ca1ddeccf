extends SceneTree
## The GPU runtime in a real NeuralSSViewport (tests/test_gpu_runtime.py, under Xvfb + lavapipe):
## checkered walls and boxes, sky, a moving camera and a moving box, a camera cut at --cut-at.
##
## Phase 1 (frames 0 .. --frames - 1): a frame_captured listener writes every captured frame (raw, the
## capture's own floats) and the backend records every upscaled frame (--nss-record): Python runs ONNX
## Runtime on the captured frames and compares. Phase 2 (--gpu-only-frames more frames): the listener is
## disconnected and recording stops, i.e. plain GPU mode; the script checks the capture effect made no
## readback and the runner kept producing frames, and prints what runs: the node tree must hold no
## runtime bridge/client (nothing can start a process). Prints "GPU_SCENE_DONE {json}".
## User args: --out DIR --frames N --cut-at K --gpu-only-frames M --low WxH --scale S
##            plus the addon's --nss-runtime= / --nss-record= / --nss-runtime-command=.

var ns: NeuralSSViewport
var writer: NeuralSSFrameWriter
var args: Dictionary
var camera: Camera3D
var box: MeshInstance3D
var frames_wanted: int = 6
var cut_at: int = 3
var gpu_only: int = 4
var written: int = 0
var ticks: int = 0
var phase: int = 1
var readbacks_at_phase2: int = -1
var runner_readbacks_at_phase2: int = -1
var runs_at_phase2: int = -1
var frames_phase2: int = 0
var fresh_phase2: int = 0
var cut_offset: float = 0.0


func _initialize() -> void:
	args = TestArgs.parse()
	frames_wanted = int(args.get("frames", "6"))
	cut_at = int(args.get("cut-at", "3"))
	gpu_only = int(args.get("gpu-only-frames", "4"))
	var low := TestWorld.low_size(args, Vector2i(64, 36))
	var scale := int(args.get("scale", "2"))
	root.size = low * scale
	var world := Node3D.new()
	root.add_child(world)
	TestWorld.environment(world, Color(0.25, 0.35, 0.6))
	TestWorld.sun(world)
	TestWorld.quad(world, Vector3(-3.0, -1.5, -6.0), Vector2(8.0, 5.0), _material(Color(0.9, 0.5, 0.2), true))
	TestWorld.quad(world, Vector3(5.0, -2.0, -11.0), Vector2(14.0, 8.0), _material(Color(0.3, 0.8, 0.4), true))
	for i in 5:
		var b := MeshInstance3D.new()
		var bm := BoxMesh.new()
		bm.size = Vector3(0.6, 0.6, 0.6)
		b.mesh = bm
		b.material_override = _material(Color(0.2 + 0.15 * i, 0.6, 0.9 - 0.1 * i), false)
		b.position = Vector3(-2.0 + i, -0.5 + 0.3 * (i % 2), -3.5 - 0.4 * i)
		b.rotation_degrees = Vector3(20 * i, 35 * i, 0)
		world.add_child(b)
		if i == 2:
			box = b
	camera = TestWorld.camera(world)
	ns = NeuralSSViewport.new()
	ns.scale_factor = scale
	ns.mode = NeuralSSViewport.Mode.NEURAL
	ns.cut_distance = 100.0  # cuts come from mark_camera_cut only
	ns.cut_angle_deg = 180.0
	ns.show_stats = 1
	root.add_child(ns)
	ns.frame_captured.connect(_on_frame)
	writer = NeuralSSFrameWriter.new(args.get("out", "/tmp/gpu_runtime_scene"))
	if not writer.open({"scene": "gpu_runtime_scene", "scale": scale, "fps": 30, "warmup": 0}):
		push_error("gpu_runtime_scene: " + writer.last_error)
		quit(3)
	TestWorld.add_driver(self, _drive)


func _drive() -> void:
	ticks += 1
	if ticks > frames_wanted + gpu_only + 120:
		print("GPU_SCENE_TIMEOUT written=%d" % written)
		quit(4)
		return
	var k := ns.frame_index  # the index the frame rendered now carries
	if k == cut_at:
		ns.mark_camera_cut()
		cut_offset = 2.5
	var t := k / 30.0
	ns.scene_time = t
	camera.position = Vector3(0.6 * t + cut_offset, 0.15 * sin(3.0 * t) + 0.3 * cut_offset, 0.0)
	camera.rotation_degrees = Vector3(0.0, -4.0 * t - 8.0 * cut_offset, 0.0)
	box.position.x = -1.0 + 1.2 * t
	if phase == 2:
		frames_phase2 += 1
		var backend := ns.get_node_or_null("NeuralSSGpuBackend")
		if ns.neural_is_fresh():
			fresh_phase2 += 1
		if frames_phase2 >= gpu_only:
			_report(backend)


func _on_frame(frame: NeuralSSFrame) -> void:
	if phase != 1:
		return
	if not writer.write(frame, written):
		push_error("gpu_runtime_scene: " + writer.last_error)
		quit(3)
		return
	written += 1
	if written == frames_wanted:
		# phase 2: plain GPU mode, nobody wants pixels
		phase = 2
		ns.frame_captured.disconnect(_on_frame)
		var backend := ns.get_node_or_null("NeuralSSGpuBackend")
		if ns.hooks != null:
			ns.hooks.stop_recording()
		var eff := _effect()
		readbacks_at_phase2 = eff.readbacks if eff != null else -1
		runs_at_phase2 = _runner_frames(backend)
		if backend != null and backend.get("runner") != null:
			runner_readbacks_at_phase2 = (backend.get("runner") as NeuralSSGpuRunner).readbacks


func _effect() -> NeuralSSCaptureEffect:
	var backend := ns.get_node_or_null("NeuralSSGpuBackend")
	return backend.get("_effect") if backend != null else null


func _runner_frames(backend: Node) -> int:
	if backend == null or backend.get("runner") == null:
		return -1
	return int((backend.get("runner") as NeuralSSGpuRunner).frames_run)


func _report(backend: Node) -> void:
	var eff := _effect()
	var runner: NeuralSSGpuRunner = backend.get("runner") if backend != null else null
	var names := PackedStringArray()
	for n: Node in ns.find_children("*", "", true, false):
		names.append(n.get_class() + ":" + str(n.name) + ":" + str(n.get_script().get_global_name() if n.get_script() else ""))
	var tex: Variant = ns.get("_neural_tex")
	var res := {
		"written": written, "backend": backend != null,
		"readbacks_phase1": readbacks_at_phase2,
		"readbacks_end": eff.readbacks if eff != null else -1,
		"effect_readback_flag": eff.readback if eff != null else true,
		"runner_readbacks_phase1": runner_readbacks_at_phase2,
		"runner_readbacks_end": runner.readbacks if runner != null else -1,
		"runs_phase2": _runner_frames(backend) - runs_at_phase2,
		"frames_phase2": frames_phase2, "fresh_phase2": fresh_phase2,
		"texture_class": (tex as Object).get_class() if tex != null else "",
		"nodes": names, "runtime_stat": str(ns.stats.get("runtime", "")),
		"choice": str(backend.get("choice")) if backend != null else "",
	}
	print("GPU_SCENE_DONE " + JSON.stringify(res))
	quit(0)


func _material(c: Color, unshaded: bool) -> StandardMaterial3D:
	return TestWorld.checker(c, 0.3, 6.0, unshaded)
