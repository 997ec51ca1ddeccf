extends Node3D
## The demo: a scene full of what upscalers get wrong (thin wires and fence posts, foliage cards,
## fine textures, specular highlights, small text, moving objects, a camera on a path), shown
## through a NeuralSSViewport.
##
## Keys: 1 native, 2 bilinear (the addon's), 3 neural, 4 Godot's own bilinear 3D scaling, 5 Godot's
##       own FSR 2.2 (both at 1/scale: what Godot ships, next to the addon), M next mode, Tab stats
##       overlay, C camera cut, Space pause the camera. The label at the top names the mode shown.
## Command line (user args after `--`):
##   --low WxH            low-res size (default 640x360); the window is low * scale
##   --scale S            upscaling factor (default: project setting neural_ss/scale_factor)
##   --mode native|bilinear|neural|godot_bilinear|godot_fsr2
##   --fixed-fps F        scene time = frame / F (deterministic; default 30 when capturing)
##   --time-scale X       scene time runs X times faster (larger motion per frame)
##   --capture DIR --frames N [--warmup K]   write N captured frames (raw, see
##                        addons/neural_ss/neural_ss_frame_writer.gd), then quit;
##                        convert with `python -m nss_train.sources.godot_raw DIR`
##   --screenshot PATH    save the presented window after --warmup frames, then quit
##   --bench PATH --frames N   alternate blocks of frames with capture on / off, write timings
##   --quit-after-frames N

const PATH_PERIOD := 40.0  # seconds for one loop of the camera path
## Godot's own upscalers (root viewport scaling_3d_mode at 1/scale; the NeuralSSViewport is removed).
const GODOT_MODES := {
	"godot_bilinear": [Viewport.SCALING_3D_MODE_BILINEAR, "Godot bilinear"],
	"godot_fsr2": [Viewport.SCALING_3D_MODE_FSR2, "Godot FSR2"],
}

var ns: NeuralSSViewport
var args: Dictionary = {}
var fixed_fps: float = 0.0
var time_scale: float = 1.0
var scene_t: float = 0.0
var paused: bool = false
var follow: PathFollow3D
var camera: Camera3D
var movers: Array[Node3D] = []
var ticks: int = 0
var warmup: int = 3
var frames_wanted: int = 0
var writer: NeuralSSFrameWriter
var written: int = 0
var bench: Dictionary = {}
var godot_mode: String = ""  # a GODOT_MODES key while Godot's own upscaler is shown, else ""
var mode_label: Label
var _scale: int = 2


func _ready() -> void:
	args = NeuralSSSettings.user_args()
	var low := Vector2i(640, 360)
	if args.has("low"):
		var p: PackedStringArray = String(args["low"]).split("x")
		if p.size() != 2 or int(p[0]) < 8 or int(p[1]) < 8:
			_fail("--low %s: expected WxH, e.g. 320x180" % args["low"])
			return
		low = Vector2i(int(p[0]), int(p[1]))
	warmup = int(args.get("warmup", "3"))
	frames_wanted = int(args.get("frames", "0"))
	time_scale = float(args.get("time-scale", "1"))
	fixed_fps = float(args.get("fixed-fps", "30" if args.has("capture") or args.has("bench") else "0"))

	_build_world()
	_build_mode_label()
	_add_ns()
	_scale = ns.get_scale()
	# F5 shows the neural upscale; captures and benchmarks default to the plain path they measure.
	var default_mode := "bilinear" if (args.has("capture") or args.has("bench")) else "neural"
	var mode_name: String = args.get("mode", default_mode)
	var m := NeuralSSViewport.MODE_NAMES.find(mode_name)
	if m < 0 and not GODOT_MODES.has(mode_name):
		_fail("--mode %s: expected one of %s or %s" % [mode_name, NeuralSSViewport.MODE_NAMES, GODOT_MODES.keys()])
		return
	if m >= 0:
		ns.mode = m as NeuralSSViewport.Mode
	elif args.has("capture") or args.has("bench"):
		_fail("--mode %s: --capture and --bench measure the addon's node; use native, bilinear or neural" % mode_name)
		return
	if args.has("low") or args.has("scale") or args.has("capture") or args.has("bench"):
		get_window().size = low * _scale
	if GODOT_MODES.has(mode_name):
		_set_godot_mode(mode_name)
	_update_mode_label()
	if args.has("capture"):
		if frames_wanted <= 0:
			_fail("--capture needs --frames N (N > 0)")
			return
		writer = NeuralSSFrameWriter.new(args["capture"])
		if not writer.open({"scene": "godot_project/demo.tscn", "scale": ns.get_scale(), "fps": fixed_fps,
				"warmup": warmup}):
			_fail("--capture: " + writer.last_error)
			return
		ns.frame_captured.connect(_on_capture)
	if args.has("bench"):
		Engine.max_fps = 0
		DisplayServer.window_set_vsync_mode(DisplayServer.VSYNC_DISABLED)
		bench = {"block": int(args.get("block", "10")), "on": [], "off": [], "callback_ms": [],
				"delivered": 0}
		ns.frame_captured.connect(func(_f: NeuralSSFrame) -> void: bench["delivered"] += 1)


func _fail(msg: String) -> void:
	push_error("demo: " + msg)
	printerr("demo: ERROR: " + msg)
	get_tree().quit(2)


func _process(delta: float) -> void:
	ticks += 1
	if fixed_fps > 0.0:
		scene_t = time_scale * (ns.frame_index if ns != null else ticks - 1) / fixed_fps
	elif not paused:
		scene_t += delta * time_scale
	_animate(scene_t)
	if ns != null:
		ns.scene_time = scene_t
	if args.has("bench"):
		_bench_step()
	if args.has("screenshot") and ticks == warmup + 2:
		_screenshot(args["screenshot"])
	if args.has("quit-after-frames") and ticks >= int(args["quit-after-frames"]):
		print("DEMO_DONE frames=%d" % ticks)
		get_tree().quit(0)
	if args.has("capture") and ticks > frames_wanted + warmup + 120:
		_fail("--capture: only %d of %d frames arrived (no RenderingDevice? see warnings)" % [written, frames_wanted])


func _unhandled_input(event: InputEvent) -> void:
	var k := event as InputEventKey
	if k == null or not k.pressed or k.echo:
		return
	match k.keycode:
		KEY_1:
			_set_addon_mode(NeuralSSViewport.Mode.NATIVE)
		KEY_2:
			_set_addon_mode(NeuralSSViewport.Mode.BILINEAR)
		KEY_3:
			_set_addon_mode(NeuralSSViewport.Mode.NEURAL)
		KEY_4:
			_set_godot_mode("godot_bilinear")
		KEY_5:
			_set_godot_mode("godot_fsr2")
		KEY_M:
			if ns != null:
				ns.cycle_mode()
			else:
				_set_addon_mode(NeuralSSViewport.Mode.NATIVE)
		KEY_TAB:
			if ns != null:
				ns.show_stats = 0 if ns.show_stats == 1 else 1
		KEY_C:
			if ns != null:
				ns.mark_camera_cut()
			scene_t += PATH_PERIOD * 0.37  # jump along the path: a real cut
		KEY_SPACE:
			paused = not paused
	_update_mode_label()


func _add_ns() -> void:
	ns = NeuralSSViewport.new()
	ns.name = "NeuralSS"
	if args.has("scale"):
		ns.scale_factor = int(args["scale"])
	ns.show_stats = 1
	add_child(ns)


## The addon's modes: the NeuralSSViewport renders the world (Godot's own scaling off).
func _set_addon_mode(m: NeuralSSViewport.Mode) -> void:
	if ns == null:
		var vp := get_viewport()
		vp.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR
		vp.scaling_3d_scale = 1.0
		godot_mode = ""
		_add_ns()
	ns.mode = m


## Godot's own upscaler on the root viewport at 1/scale, exactly as Godot ships it (its own mip bias,
## FSR2's own sharpness); the addon's node is removed meanwhile (it would render the world itself).
func _set_godot_mode(name: String) -> void:
	if ns != null:
		ns.queue_free()  # its _exit_tree gives the 3D world back to the root viewport
		remove_child(ns)
		ns = null
	var vp := get_viewport()
	vp.scaling_3d_mode = GODOT_MODES[name][0]
	vp.scaling_3d_scale = 1.0 / _scale
	godot_mode = name


func _build_mode_label() -> void:
	var layer := CanvasLayer.new()
	layer.layer = 100
	mode_label = Label.new()
	mode_label.set_anchors_and_offsets_preset(Control.PRESET_BOTTOM_LEFT)
	mode_label.grow_vertical = Control.GROW_DIRECTION_BEGIN
	mode_label.offset_left = 8.0
	mode_label.offset_bottom = -6.0
	mode_label.add_theme_color_override("font_color", Color(1.0, 1.0, 0.3))
	mode_label.add_theme_color_override("font_outline_color", Color.BLACK)
	mode_label.add_theme_constant_override("outline_size", 4)
	layer.add_child(mode_label)
	add_child(layer)


func _update_mode_label() -> void:
	if mode_label == null:
		return
	var shown: String
	if ns != null:
		shown = ["native", "addon bilinear", "neural"][ns.mode]
	else:
		shown = GODOT_MODES[godot_mode][1]
	var text := "%s   [1 native  2 addon bilinear  3 neural  4 Godot bilinear  5 Godot FSR2]" % shown
	if text != mode_label.text:
		print("DEMO_MODE %s" % shown)
	mode_label.text = text
	# captures, benchmarks and screenshots record the picture without the label
	mode_label.visible = not (args.has("capture") or args.has("bench") or args.has("screenshot"))


func _on_capture(frame: NeuralSSFrame) -> void:
	if frame.index < warmup or written >= frames_wanted:
		return
	if not writer.write(frame, written):
		_fail("--capture: " + writer.last_error)
		return
	written += 1
	if written == frames_wanted:
		print("DEMO_CAPTURE_DONE written=%d dir=%s" % [written, args["capture"]])
		get_tree().quit(0)


func _screenshot(path: String) -> void:
	var img := get_viewport().get_texture().get_image()
	var err := img.save_png(path)
	if err != OK:
		_fail("--screenshot %s: %s" % [path, error_string(err)])
		return
	print("DEMO_SCREENSHOT %s %dx%d" % [path, img.get_width(), img.get_height()])
	get_tree().quit(0)


# Blocks of frames alternate capture on / off (frame i captures when (i / block) is even); the
# first two blocks are warm-up, and the first frame of each block (pipeline transition) is skipped.
func _bench_step() -> void:
	var block: int = bench["block"]
	var now := Time.get_ticks_usec()
	var i := ticks - 1  # this frame
	if bench.has("t_prev"):
		var j := i - 1  # the frame whose render just finished
		if j >= 2 * block and j % block >= 1:
			(bench["on"] if (j / block) % 2 == 0 else bench["off"]).append((now - int(bench["t_prev"])) / 1000.0)
			if (j / block) % 2 == 0 and ns.stats.has("capture_cpu"):
				bench["callback_ms"].append(ns.stats["capture_cpu"])
	bench["t_prev"] = now
	ns.capture_enabled = (i / block) % 2 == 0
	if i >= frames_wanted + 2 * block:
		var out := {
			"low_res": [ns.get_low_res_size().x, ns.get_low_res_size().y], "scale": ns.get_scale(),
			"block": block,
			"frame_ms_capture_on": bench["on"], "frame_ms_capture_off": bench["off"],
			"callback_cpu_ms": bench["callback_ms"], "frames_delivered": bench["delivered"],
			"renderer": RenderingServer.get_video_adapter_name(),
			"engine": Engine.get_version_info()["string"],
		}
		var f := FileAccess.open(args["bench"], FileAccess.WRITE)
		if f == null:
			_fail("--bench %s: cannot write" % args["bench"])
			return
		f.store_string(JSON.stringify(out))
		f.close()
		print("DEMO_BENCH_DONE %s" % args["bench"])
		get_tree().quit(0)


# --- the scene -------------------------------------------------------------------------------

func _animate(t: float) -> void:
	follow.progress_ratio = fposmod(t / PATH_PERIOD, 1.0)
	camera.global_transform = follow.global_transform
	camera.look_at(Vector3(0.0, 1.2, 0.0) + Vector3(sin(t * 0.3), 0.0, cos(t * 0.2)) * 2.0)
	for i in movers.size():
		var n := movers[i]
		match i:
			0:  # sphere sliding along x
				n.position = Vector3(3.0 * sin(t * 0.8), 0.6, 2.5)
			1:  # spinning, bobbing cube
				n.rotation = Vector3(t * 0.7, t * 1.1, 0.0)
				n.position = Vector3(-3.0, 1.0 + 0.4 * sin(t * 1.5), -1.0)
			2:  # torus orbiting
				n.position = Vector3(2.0 * cos(t * 0.5), 1.5, -3.0 + 2.0 * sin(t * 0.5))
				n.rotation = Vector3(t, 0.0, t * 0.5)


func _build_world() -> void:
	var env := Environment.new()
	var sky_mat := ProceduralSkyMaterial.new()
	var sky := Sky.new()
	sky.sky_material = sky_mat
	env.background_mode = Environment.BG_SKY
	env.sky = sky
	env.ambient_light_source = Environment.AMBIENT_SOURCE_SKY
	env.tonemap_mode = Environment.TONE_MAPPER_LINEAR  # the NEURAL presentation matches it
	var we := WorldEnvironment.new()
	we.environment = env
	add_child(we)

	var sun := DirectionalLight3D.new()
	sun.rotation_degrees = Vector3(-50.0, 30.0, 0.0)
	sun.shadow_enabled = true
	sun.directional_shadow_max_distance = 30.0
	add_child(sun)

	# Ground with a fine brick/line texture (moire and shimmering when undersampled).
	var ground := MeshInstance3D.new()
	var pm := PlaneMesh.new()
	pm.size = Vector2(60.0, 60.0)
	ground.mesh = pm
	var gm := StandardMaterial3D.new()
	gm.albedo_texture = _fine_texture()
	gm.uv1_scale = Vector3(30.0, 30.0, 1.0)
	gm.texture_filter = BaseMaterial3D.TEXTURE_FILTER_LINEAR_WITH_MIPMAPS_ANISOTROPIC
	gm.roughness = 0.8
	ground.material_override = gm
	add_child(ground)

	# Fence: thin posts and rails.
	var post_mat := _mat(Color(0.85, 0.85, 0.8), 0.5, 0.0)
	for i in 41:
		_box(Vector3(-10.0 + i * 0.5, 0.6, -6.0), Vector3(0.04, 1.2, 0.04), post_mat)
	for y: float in [0.3, 0.7, 1.1]:
		_box(Vector3(0.0, y, -6.0), Vector3(20.0, 0.03, 0.03), post_mat)
	# Power line: two poles and thin sagging wires.
	var pole_mat := _mat(Color(0.35, 0.25, 0.15), 0.9, 0.0)
	_box(Vector3(-8.0, 2.5, -9.0), Vector3(0.15, 5.0, 0.15), pole_mat)
	_box(Vector3(8.0, 2.5, -9.0), Vector3(0.15, 5.0, 0.15), pole_mat)
	var wire_mat := _mat(Color(0.05, 0.05, 0.05), 0.4, 0.5)
	for w in 3:
		for s in 16:
			var x0 := -8.0 + s * 1.0
			var sag := func(x: float) -> float: return 4.8 - w * 0.3 - 0.8 * (1.0 - pow(x / 8.0, 2.0))
			var a := Vector3(x0, sag.call(x0), -9.0)
			var b := Vector3(x0 + 1.0, sag.call(x0 + 1.0), -9.0)
			var seg := _box((a + b) * 0.5, Vector3(a.distance_to(b), 0.015, 0.015), wire_mat)
			seg.rotation.z = atan2(b.y - a.y, b.x - a.x)
	# Foliage cards: alpha-scissor grass quads.
	var leaf_mat := StandardMaterial3D.new()
	leaf_mat.albedo_texture = _grass_texture()
	leaf_mat.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA_SCISSOR
	leaf_mat.alpha_scissor_threshold = 0.5
	leaf_mat.cull_mode = BaseMaterial3D.CULL_DISABLED
	var rng := RandomNumberGenerator.new()
	rng.seed = 7  # the scene is the same every run
	var card := QuadMesh.new()
	card.size = Vector2(1.0, 0.8)
	var mm := MultiMesh.new()
	mm.transform_format = MultiMesh.TRANSFORM_3D
	mm.mesh = card
	mm.instance_count = 160
	for i in mm.instance_count:
		var pos := Vector3(rng.randf_range(-9.0, 9.0), 0.4, rng.randf_range(-5.5, -1.0))
		mm.set_instance_transform(i, Transform3D(Basis(Vector3.UP, rng.randf() * TAU), pos))
	var mmi := MultiMeshInstance3D.new()
	mmi.multimesh = mm
	mmi.material_override = leaf_mat
	add_child(mmi)
	# Specular: glossy metal spheres.
	for i in 5:
		var sp := MeshInstance3D.new()
		var sm := SphereMesh.new()
		sm.radius = 0.35
		sm.height = 0.7
		sp.mesh = sm
		sp.material_override = _mat(Color.from_hsv(i / 5.0, 0.5, 0.9), 0.05 + i * 0.08, 1.0)
		sp.position = Vector3(-4.0 + i * 2.0, 0.35, 0.5)
		add_child(sp)
	# Small text.
	var text := Label3D.new()
	text.text = "NEURAL SUPERSAMPLING  0123456789\nthin lines, small text, fine detail"
	text.font_size = 18
	text.pixel_size = 0.004
	text.position = Vector3(0.0, 2.2, -5.9)
	text.modulate = Color(0.1, 0.1, 0.1)
	text.outline_size = 0
	add_child(text)
	var board := _box(Vector3(0.0, 2.2, -5.95), Vector3(3.2, 0.6, 0.05), _mat(Color(0.95, 0.95, 0.9), 0.9, 0.0))
	board.name = "Sign"
	# Moving objects.
	var ball := MeshInstance3D.new()
	var bm := SphereMesh.new()
	ball.mesh = bm
	ball.material_override = _mat(Color(0.9, 0.2, 0.2), 0.15, 0.3)
	add_child(ball)
	movers.append(ball)
	var cube := MeshInstance3D.new()
	cube.mesh = BoxMesh.new()
	cube.material_override = _mat(Color(0.2, 0.4, 0.9), 0.3, 0.0)
	add_child(cube)
	movers.append(cube)
	var torus := MeshInstance3D.new()
	var tm := TorusMesh.new()
	tm.inner_radius = 0.3
	tm.outer_radius = 0.5
	torus.mesh = tm
	torus.material_override = _mat(Color(0.9, 0.8, 0.2), 0.1, 1.0)
	add_child(torus)
	movers.append(torus)

	# Camera on a closed path around the scene.
	var curve := Curve3D.new()
	for p: Vector3 in [Vector3(0, 1.6, 9), Vector3(7, 2.2, 6), Vector3(8, 1.4, -1), Vector3(3, 1.8, 4),
			Vector3(-5, 1.3, 5), Vector3(-8, 2.4, 0), Vector3(-4, 1.7, 7)]:
		curve.add_point(p)
	curve.add_point(Vector3(0, 1.6, 9))
	var path := Path3D.new()
	path.curve = curve
	add_child(path)
	follow = PathFollow3D.new()
	follow.rotation_mode = PathFollow3D.ROTATION_NONE
	follow.loop = true
	path.add_child(follow)
	camera = Camera3D.new()
	camera.fov = 65.0
	camera.near = 0.05
	camera.far = 200.0
	add_child(camera)
	camera.current = true
	_animate(0.0)


func _box(pos: Vector3, size: Vector3, mat: Material) -> MeshInstance3D:
	var m := MeshInstance3D.new()
	var b := BoxMesh.new()
	b.size = size
	m.mesh = b
	m.material_override = mat
	m.position = pos
	add_child(m)
	return m


func _mat(c: Color, roughness: float, metallic: float) -> StandardMaterial3D:
	var m := StandardMaterial3D.new()
	m.albedo_color = c
	m.roughness = roughness
	m.metallic = metallic
	m.metallic_specular = 0.8
	return m


func _fine_texture() -> ImageTexture:
	var n := 128
	var img := Image.create(n, n, false, Image.FORMAT_RGB8)
	for y in n:
		for x in n:
			var mortar := y % 16 < 1 or (x + (16 if (y / 16) % 2 == 1 else 0)) % 32 < 1
			var v := 0.25 if mortar else 0.55 + 0.1 * sin(x * 0.9) * cos(y * 1.3)
			img.set_pixel(x, y, Color(v * 1.1, v * 0.8, v * 0.6))
	img.generate_mipmaps()
	return ImageTexture.create_from_image(img)


func _grass_texture() -> ImageTexture:
	var w := 64
	var h := 48
	var img := Image.create(w, h, false, Image.FORMAT_RGBA8)
	img.fill(Color(0, 0, 0, 0))
	var rng := RandomNumberGenerator.new()
	rng.seed = 3
	for blade in 14:
		var x0 := rng.randf_range(4.0, w - 4.0)
		var lean := rng.randf_range(-10.0, 10.0)
		var top := rng.randf_range(0.2, 0.6) * h
		for y in range(int(top), h):
			var f := (h - y) / float(h - top)
			var xc := int(x0 + lean * f * f)
			for x in range(xc - 1, xc + 2):  # blades 3 texels wide, thinning is left to the distance
				if x >= 0 and x < w:
					img.set_pixel(x, y, Color(0.2, 0.5 + 0.3 * f, 0.15, 1.0))
	img.generate_mipmaps()
	return ImageTexture.create_from_image(img)
