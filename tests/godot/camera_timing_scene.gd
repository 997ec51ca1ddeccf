extends Node3D
## A scene whose camera is moved by game code at a chosen time of the frame (tests/test_camera_timing.py
## runs it through tools/compare_upscalers.py): the low-res camera of NeuralSSViewport must render what
## the game camera shows in the same frame, whatever moves it and when.
##
## timing (set in the .tscn the test writes):
##   priority_0       the camera moved in _process at process_priority 0
##   priority_100000  ... at process_priority 100000 (after NeuralSSViewport's own _process)
##   deferred         ... in a call_deferred from _process (runs after every _process of the frame)
##   tween            ... by a Tween (linear, SPEED units per second; stepped after every _process)
##   physics          ... in _physics_process at 10 ticks per second with physics interpolation on (set
##                    in project.godot): what is rendered is the interpolated transform, not
##                    global_transform
## The camera pans along x at SPEED units per second of scene time (frame n = n / 30 s under --fixed-fps
## 30) past a checkered wall and an irregular row of boxes (no two frames alike). Under physics
## interpolation Godot draws one tick behind the newest tick (measured on 4.6 with --fixed-fps 30:
## fractions 0, 1/3, 2/3), so the physics case places the camera one tick ahead: every case draws the same
## camera path and the same pictures.

const SPEED := 3.0  # units per second: about 4.6 output pixels per frame at 320x180
const TICKS := 10  # physics ticks per second (physics case): 3 frames per tick at 30 fps
const FPS := 30.0

@export var timing: String = "priority_0"

var _cam: Camera3D
var _frame: int = 0
var _tick: int = 0


class Mover:
	extends Node
	var scene: Node3D

	func _process(_delta: float) -> void:
		scene.call("_on_process")


func _ready() -> void:
	TestWorld.environment(self, Color(0.25, 0.3, 0.35))
	TestWorld.sun(self)
	_cam = TestWorld.camera(self)
	var wall := TestWorld.checker(Color(0.9, 0.75, 0.4), 0.25, 1.0, false)  # 16 checkers per repeat
	wall.uv1_scale = Vector3(20.0, 2.0, 1.0)  # checkers of 0.19 x 0.19 units
	TestWorld.quad(self, Vector3(0, 0, -3), Vector2(60.0, 6.0), wall)
	for i in 30:  # boxes of several sizes and colours at irregular spacing in front of the wall
		var b := MeshInstance3D.new()
		var box := BoxMesh.new()
		box.size = Vector3(0.1 + 0.03 * (i % 3), 0.3 + 0.15 * (i % 4), 0.12)
		b.mesh = box
		var mat := StandardMaterial3D.new()
		mat.albedo_color = Color.from_hsv(fmod(i * 0.37, 1.0), 0.7, 0.9)
		b.material_override = mat
		b.position = Vector3(-5.0 + 0.41 * i + 0.07 * (i % 5), -0.7 + 0.1 * (i % 2), -1.8)
		b.rotation = Vector3(0.0, 0.6 + 0.2 * i, 0.0)
		add_child(b)
	var mover := Mover.new()
	mover.scene = self
	match timing:
		"priority_0":
			mover.process_priority = 0
		"priority_100000":
			mover.process_priority = 100000
		"deferred":
			mover.process_priority = 0
		"tween":
			# a Tween moves the camera: Godot steps tweens after every node's _process of the frame
			mover.process_mode = Node.PROCESS_MODE_DISABLED
			create_tween().tween_property(_cam, "position:x", -2.0 + SPEED * 60.0, 60.0)
		"physics":
			# the project's physics/common/physics_interpolation must be on (switching it on at run time
			# leaves Godot 4.6 rendering the camera at the newest tick) and physics_ticks_per_second TICKS
			if not get_tree().physics_interpolation or Engine.physics_ticks_per_second != TICKS:
				push_error("camera_timing_scene: physics needs physics/common/physics_interpolation=true and "
						+ "physics/common/physics_ticks_per_second=%d in project.godot" % TICKS)
			mover.process_mode = Node.PROCESS_MODE_DISABLED
			set_physics_process(true)
		_:
			push_error("camera_timing_scene: timing '%s': expected priority_0, priority_100000, deferred, tween or physics"
					% timing)
	add_child(mover)
	_place(0.0)
	if timing == "physics":
		_cam.reset_physics_interpolation()
	else:
		set_physics_process(false)


func _on_process() -> void:
	_frame += 1
	if timing == "deferred":
		_place.call_deferred(_frame / FPS)
	else:
		_place(_frame / FPS)


func _physics_process(_delta: float) -> void:
	_tick += 1
	_place((_tick + 1) / float(TICKS))  # drawn one tick later (see above)


func _place(t: float) -> void:
	_cam.position = Vector3(-2.0 + SPEED * t, 0.0, 0.0)
