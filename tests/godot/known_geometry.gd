extends SceneTree
## Known geometry for checking the capture (tests/test_godot.py runs it under Xvfb + lavapipe):
## camera at the origin looking down -Z; a wall at depth 6 (left half, lower half of the image),
## a wall at depth 11 (right half), sky above; a box at depth 4 moving right and up.
##
## User args: --out DIR --frames N --scenario translate|rotate|resize|nocamera
##            --low WxH --scale S --warmup K --taa 0|1 --speed X (multiplies the per-frame steps)
##   translate: camera moves +x by CAM_STEP per frame; rotate: camera yaws by YAW_DEG per frame;
##   resize: like translate, the window doubles in width at frame RESIZE_AT (resolution change);
##   nocamera: no Camera3D at all (2D-only scene): must warn and keep running.
## Prints "KNOWN_GEOMETRY_DONE written=N" when finished.

const CAM_STEP := 0.03
const YAW_DEG := 0.4
const BOX_STEP := Vector3(0.04, 0.02, 0.0)
const BOX_START := Vector3(-2.0, -1.0, -4.0)
const RESIZE_AT := 4

var ns: NeuralSSViewport
var writer: NeuralSSFrameWriter
var args: Dictionary
var frames_wanted: int
var warmup: int
var scenario: String
var camera: Camera3D
var box: MeshInstance3D
var seq: int = 0
var ticks: int = 0
var low := Vector2i(160, 90)
var scale: int = 2
var speed: float = 1.0


func _initialize() -> void:
	args = TestArgs.parse()
	frames_wanted = int(args.get("frames", "4"))
	warmup = int(args.get("warmup", "2"))
	scenario = args.get("scenario", "translate")
	scale = int(args.get("scale", "2"))
	speed = float(args.get("speed", "1"))
	low = TestWorld.low_size(args, low)
	root.size = low * scale
	var world := Node3D.new()
	root.add_child(world)

	TestWorld.environment(world, Color(0.2, 0.3, 0.5))

	if scenario != "nocamera":
		TestWorld.quad(world, Vector3(-6.2, -3.0, -6.0), Vector2(12.0, 6.0), _material(Color(0.9, 0.4, 0.2)))
		TestWorld.quad(world, Vector3(10.2, -5.0, -11.0), Vector2(20.0, 10.0), _material(Color(0.2, 0.8, 0.3)))
		box = MeshInstance3D.new()
		var bm := BoxMesh.new()
		bm.size = Vector3(0.5, 0.5, 0.5)
		box.mesh = bm
		box.material_override = _material(Color(0.9, 0.9, 0.9))
		box.position = BOX_START
		world.add_child(box)
		camera = TestWorld.camera(world)
	else:
		var label := Label.new()
		label.text = "2D only"
		root.add_child(label)

	ns = NeuralSSViewport.new()
	ns.mode = NeuralSSViewport.Mode.BILINEAR  # the capture is under test, not a model (NEURAL would jitter for one)
	ns.scale_factor = scale
	ns.use_taa = args.get("taa", "0") == "1"
	ns.cut_distance = 1.0
	ns.show_stats = 1
	root.add_child(ns)
	ns.frame_captured.connect(_on_frame)
	writer = NeuralSSFrameWriter.new(args.get("out", "/tmp/known_geometry"))
	if not writer.open({"scene": "known_geometry", "scenario": scenario, "scale": scale,
			"fps": 30, "warmup": warmup}):
		push_error("known_geometry: " + writer.last_error)
		quit(3)
	TestWorld.add_driver(self, _drive)


func _drive() -> void:
	ticks += 1
	if ticks > frames_wanted + warmup + 90:
		print("KNOWN_GEOMETRY_TIMEOUT written=%d" % seq)
		quit(4)
		return
	if scenario == "nocamera" or RenderingServer.get_rendering_device() == null:
		if ticks >= frames_wanted + warmup:
			print("KNOWN_GEOMETRY_DONE written=%d active=%s" % [seq, ns.active])
			quit(0)
		return
	if box == null:
		return
	var k := ns.frame_index  # the index the frame rendered now will carry
	ns.scene_time = k / 30.0
	box.position = BOX_START + BOX_STEP * k * speed
	if scenario == "rotate":
		camera.transform = Transform3D(Basis(Vector3.UP, deg_to_rad(YAW_DEG * k * speed)), Vector3.ZERO)
	else:
		camera.position = Vector3(CAM_STEP * k * speed, 0.0, 0.0)
	if scenario == "resize" and k == warmup + RESIZE_AT:
		root.size = Vector2i(low.x * 2, low.y) * scale


func _on_frame(frame: NeuralSSFrame) -> void:
	if frame.index < warmup or seq >= frames_wanted:
		return
	if not writer.write(frame, seq):
		push_error("known_geometry: " + writer.last_error)
		quit(3)
		return
	seq += 1
	if seq == frames_wanted:
		print("KNOWN_GEOMETRY_DONE written=%d" % seq)
		quit(0)


func _material(c: Color) -> StandardMaterial3D:
	return TestWorld.checker(c, 0.35, 8.0, true)
