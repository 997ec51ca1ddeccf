class_name TestWorld
extends RefCounted
## Scene set-up the tests/godot scripts share: window size from the user args, a world's environment,
## camera and sun, checkered quads, and the driver node that moves things before each frame renders.


## Calls `drive` first thing every process frame (before the scene's own nodes), see add_driver
class Driver:
	extends Node
	var drive: Callable

	func _process(_delta: float) -> void:
		drive.call()


## --low WxH from the user args, else `low`
static func low_size(args: Dictionary, low: Vector2i) -> Vector2i:
	if not args.has("low"):
		return low
	var p: PackedStringArray = String(args["low"]).split("x")
	return Vector2i(int(p[0]), int(p[1]))


## A WorldEnvironment in `world`: plain `background` colour, linear tonemapping; returns its Environment
static func environment(world: Node3D, background: Color) -> Environment:
	var env := Environment.new()
	env.background_mode = Environment.BG_COLOR
	env.background_color = background
	env.tonemap_mode = Environment.TONE_MAPPER_LINEAR
	var we := WorldEnvironment.new()
	we.environment = env
	world.add_child(we)
	return env


## A directional light in `world`, from above and to the side
static func sun(world: Node3D) -> DirectionalLight3D:
	var light := DirectionalLight3D.new()
	light.rotation_degrees = Vector3(-50, 30, 0)
	world.add_child(light)
	return light


## The current camera of `world`: at the origin looking down -Z, fov 60, depth range 0.05 .. 100
static func camera(world: Node3D) -> Camera3D:
	var cam := Camera3D.new()
	cam.fov = 60.0
	cam.near = 0.05
	cam.far = 100.0
	world.add_child(cam)
	cam.current = true
	return cam


## A quad of `size` (facing +Z, towards the camera) centred at `centre` in `parent`
static func quad(parent: Node3D, centre: Vector3, size: Vector2, material: Material) -> MeshInstance3D:
	var m := MeshInstance3D.new()
	var q := QuadMesh.new()
	q.size = size
	m.mesh = q
	m.material_override = material
	m.position = centre
	parent.add_child(m)
	return m


## 4-texel checkers of `c` and `c * dark` (a 64x64 texture, no mipmaps) repeated `repeat` times
static func checker(c: Color, dark: float, repeat: float, unshaded: bool) -> StandardMaterial3D:
	var img := Image.create(64, 64, false, Image.FORMAT_RGB8)
	for y in 64:
		for x in 64:
			var on := ((x / 4) + (y / 4)) % 2 == 0
			img.set_pixel(x, y, c if on else c * dark)
	var mat := StandardMaterial3D.new()
	if unshaded:
		mat.shading_mode = BaseMaterial3D.SHADING_MODE_UNSHADED
	mat.albedo_texture = ImageTexture.create_from_image(img)
	mat.uv1_scale = Vector3(repeat, repeat, 1)
	return mat


## Adds a Driver calling `drive` to the tree's root
static func add_driver(tree: SceneTree, drive: Callable) -> void:
	var d := Driver.new()
	d.drive = drive
	d.process_priority = -100
	tree.root.add_child(d)
