extends SceneTree
## NeuralSSViewport's raw sub-pixel jitter (`jitter = true`) against known geometry
## (tests/test_jitter.py runs it under Xvfb + lavapipe):
## camera at the origin looking down -Z (fov 60); an unshaded wall at depth WALL_DEPTH filling the
## view whose colour is an exact linear function of the world position it shows
## (r = 0.5 + RAMP_X * x, g = 0.5 + RAMP_Y * y), so every pixel's colour says where its sample
## lies; a box at depth BOX_DEPTH moving by BOX_STEP per frame. The camera stands still for the
## first STILL frames, then moves +x by CAM_STEP per frame.
##
## User args: --out DIR --frames N --low WxH --scale S --warmup K --jitter 0|1 --samples N
## Prints "JITTER_GEOMETRY_DONE written=N" when finished.

const WALL_DEPTH := 6.0
const RAMP_X := 0.08
const RAMP_Y := 0.12
const BOX_DEPTH := 3.75
const BOX_STEP := Vector3(0.02, 0.01, 0.0)
const BOX_START := Vector3(-0.6, -0.3, -4.0)
const CAM_STEP := 0.03
const STILL := 5

const RAMP_SHADER := """
shader_type spatial;
render_mode unshaded, cull_disabled;
uniform float ramp_x;
uniform float ramp_y;
varying vec3 world_pos;
void vertex() {
	world_pos = (MODEL_MATRIX * vec4(VERTEX, 1.0)).xyz;
}
void fragment() {
	ALBEDO = vec3(0.5 + ramp_x * world_pos.x, 0.5 + ramp_y * world_pos.y, 0.25);
}
"""

var ns: NeuralSSViewport
var writer: NeuralSSFrameWriter
var args: Dictionary
var frames_wanted: int
var warmup: int
var camera: Camera3D
var box: MeshInstance3D
var seq: int = 0
var ticks: int = 0
var low := Vector2i(64, 36)
var scale: int = 2


func _initialize() -> void:
	args = TestArgs.parse()
	frames_wanted = int(args.get("frames", "10"))
	warmup = int(args.get("warmup", "3"))
	scale = int(args.get("scale", "2"))
	low = TestWorld.low_size(args, low)
	root.size = low * scale
	var world := Node3D.new()
	root.add_child(world)

	TestWorld.environment(world, Color(0.2, 0.3, 0.5))

	var shader := Shader.new()
	shader.code = RAMP_SHADER
	var ramp := ShaderMaterial.new()
	ramp.shader = shader
	ramp.set_shader_parameter("ramp_x", RAMP_X)
	ramp.set_shader_parameter("ramp_y", RAMP_Y)
	TestWorld.quad(world, Vector3(0.0, 0.0, -WALL_DEPTH), Vector2(40.0, 24.0), ramp)

	box = MeshInstance3D.new()
	var bm := BoxMesh.new()
	bm.size = Vector3(0.5, 0.5, 0.5)
	box.mesh = bm
	var bmat := StandardMaterial3D.new()
	bmat.shading_mode = BaseMaterial3D.SHADING_MODE_UNSHADED
	bmat.albedo_color = Color(0.9, 0.9, 0.9)
	box.material_override = bmat
	box.position = BOX_START
	world.add_child(box)

	camera = TestWorld.camera(world)

	ns = NeuralSSViewport.new()
	ns.scale_factor = scale
	ns.jitter = args.get("jitter", "1") == "1"
	ns.jitter_samples = int(args.get("samples", "8"))
	ns.show_stats = 0
	root.add_child(ns)
	ns.frame_captured.connect(_on_frame)
	writer = NeuralSSFrameWriter.new(args.get("out", "/tmp/jitter_geometry"))
	if not writer.open({"scene": "jitter_geometry", "scale": scale, "fps": 30, "warmup": warmup,
			"jitter_samples": ns.jitter_samples}):
		push_error("jitter_geometry: " + writer.last_error)
		quit(3)
	TestWorld.add_driver(self, _drive)


func _drive() -> void:
	ticks += 1
	if ticks > frames_wanted + warmup + 90:
		print("JITTER_GEOMETRY_TIMEOUT written=%d" % seq)
		quit(4)
		return
	if RenderingServer.get_rendering_device() == null:
		print("JITTER_GEOMETRY_NO_RD")
		quit(5)
		return
	var k := ns.frame_index  # the index the frame rendered now will carry
	ns.scene_time = k / 30.0
	box.position = BOX_START + BOX_STEP * k
	var moving := maxi(0, k - warmup - STILL + 1)
	camera.position = Vector3(CAM_STEP * moving, 0.0, 0.0)


func _on_frame(frame: NeuralSSFrame) -> void:
	if frame.index < warmup or seq >= frames_wanted:
		return
	if not writer.write(frame, seq):
		push_error("jitter_geometry: " + writer.last_error)
		quit(3)
		return
	seq += 1
	if seq == frames_wanted:
		print("JITTER_GEOMETRY_DONE written=%d" % seq)
		quit(0)
