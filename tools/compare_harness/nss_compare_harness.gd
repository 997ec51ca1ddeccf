extends Node
## Harness of tools/compare_upscalers.py. The tool copies the user's project to a temporary
## directory, adds this script there as an autoload and runs the user's scene unchanged; the user's
## files on disk are never edited. Per run it sets up ONE method on the root viewport (or the
## addon's NeuralSSViewport), drives the camera when asked, and grabs what the player sees (the
## root viewport's image in RenderingServer.frame_post_draw) for the frames to compare.
##
## User arguments after "--" (all given by the tool):
##   --cmp-method native|bilinear|fsr1|fsr2|taa|neural
##   --cmp-out DIR  --cmp-frames N  --cmp-warmup K  --cmp-scale S  --cmp-size WxH (the output size)
##   --cmp-time-scale X  --cmp-camera scene|path:NODE[:SPEED]|anim:NODE:ANIM|replay:FILE
##   --cmp-scene res://S.tscn (for messages)
## Prints CMP_INFO {json}, CMP_DONE, or one CMP_ERROR line (exit 3) when the scene cannot run.

const METHODS := ["native", "bilinear", "fsr1", "fsr2", "taa", "neural"]
const SPARE_FRAMES := 200  # frames the neural path may lag behind before the run gives up

var method: String = ""
var out_dir: String = ""
var frames: int = 0
var warmup: int = 0
var scale: int = 2
var out_size := Vector2i.ZERO
var scene_path: String = ""
var camera_spec: String = "scene"
var jitter: bool = false  # the model wants raw sub-pixel jitter (its metadata says "jitter": true)
var keep_ui: bool = false  # keep the scene's 2D (HUD, labels) in the grabs

var _iter: int = 0  # _process calls so far (iteration k renders scene state k)
var _grabbed: int = 0
var _index: FileAccess
var _camera: Camera3D
var _driver: Callable
var _ns: Node  # the addon's NeuralSSViewport (neural only)
var _client: Node  # its runtime client (the node with the "upscaled" signal)
var _ns_frame_to_iter: Dictionary = {}  # NeuralSSViewport.frame_index -> iteration it was rendered in
var _last_upscaled: int = -1  # NeuralSSViewport frame index of the newest upscaled image received
var _done_content: Dictionary = {}
var _failed: bool = false
var _replay: Array = []
var _anim: AnimationPlayer
var _anim_name: String = ""
var _follow: PathFollow3D
var _path_speed: float = 1.0
var _scene_t: float = 0.0
var _cam_log: Array = []  # camera transform (12 numbers) per iteration


func _ready() -> void:
	var args := _user_args()
	if not args.has("cmp-method"):
		set_process(false)  # not run by the tool: do nothing
		return
	process_priority = -100000  # before the scene's scripts and the addon (camera driving)
	method = args["cmp-method"]
	out_dir = args.get("cmp-out", "")
	frames = int(args.get("cmp-frames", "0"))
	warmup = int(args.get("cmp-warmup", "0"))
	scale = int(args.get("cmp-scale", "2"))
	scene_path = args.get("cmp-scene", "")
	camera_spec = args.get("cmp-camera", "scene")
	jitter = args.get("cmp-jitter", "0") == "1"
	keep_ui = args.get("cmp-keep-ui", "0") == "1"
	var sz: PackedStringArray = String(args.get("cmp-size", "")).split("x")
	if not METHODS.has(method) or frames <= 0 or sz.size() != 2 or out_dir.is_empty():
		_error("bad harness arguments %s" % [args])
		return
	out_size = Vector2i(int(sz[0]), int(sz[1]))
	if RenderingServer.get_rendering_device() == null:
		_error("no RenderingDevice: the project uses the Compatibility renderer (or --headless); "
				+ "Godot's FSR2/TAA and the addon need Forward+ (rendering/renderer/rendering_method)")
		return
	DirAccess.make_dir_recursive_absolute(out_dir)
	_index = FileAccess.open(out_dir.path_join("index.jsonl"), FileAccess.WRITE)
	if _index == null:
		_error("cannot write %s (%s)" % [out_dir, error_string(FileAccess.get_open_error())])
		return
	Engine.time_scale = float(args.get("cmp-time-scale", "1"))
	# The addon's node in the user's scene (if any) stays inert except in the neural run.
	ProjectSettings.set_setting("neural_ss/enabled", method == "neural")
	ProjectSettings.set_setting("neural_ss/show_stats_overlay", false)
	_setup_root()
	RenderingServer.frame_post_draw.connect(_on_post_draw)


func _setup_root() -> void:
	var root := get_tree().root
	# The UI is laid out at the output size in every run (the native run renders at ref-ss x the
	# output size: its 2D is scaled, not re-laid out), so 2D looks the same for every method.
	root.content_scale_mode = Window.CONTENT_SCALE_MODE_CANVAS_ITEMS
	root.content_scale_aspect = Window.CONTENT_SCALE_ASPECT_KEEP
	root.content_scale_size = out_size
	root.msaa_3d = Viewport.MSAA_DISABLED
	root.screen_space_aa = Viewport.SCREEN_SPACE_AA_DISABLED
	root.use_taa = method == "taa"
	root.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR
	root.scaling_3d_scale = 1.0
	match method:
		"bilinear", "taa":
			root.scaling_3d_scale = 1.0 / scale
		"fsr1":
			root.scaling_3d_mode = Viewport.SCALING_3D_MODE_FSR
			root.scaling_3d_scale = 1.0 / scale
		"fsr2":
			root.scaling_3d_mode = Viewport.SCALING_3D_MODE_FSR2
			root.scaling_3d_scale = 1.0 / scale


func _process(delta: float) -> void:
	if _failed:
		return
	var k := _iter
	_iter += 1
	_scene_t += delta  # delta is 1/fixed-fps x Engine.time_scale
	if k == 0:
		return  # the scene's _ready may create its camera / nodes deferred
	if k == 1 and not _start():
		return
	if _driver.is_valid():
		_driver.call(k)
	if _ns != null:
		_ns_frame_to_iter[int(_ns.get("frame_index"))] = k
	if k > warmup + frames + SPARE_FRAMES:
		_error("only %d of %d frames were grabbed after %d frames (%s)" % [_grabbed, frames, k,
				"no upscaled frames arrived from the runtime" if method == "neural" else "?"])


func _start() -> bool:
	var scene := get_tree().current_scene
	if scene == null:
		_error("the scene did not load (see the errors above)")
		return false
	var vp := get_viewport()
	_camera = vp.get_camera_3d()
	var parts := camera_spec.split(":")
	match parts[0]:
		"scene":
			if _camera == null:
				_error("%s has no current Camera3D (3D scene with a camera needed; or drive one with "
						% scene_path + "--camera path:NODE, anim:NODE:ANIM or replay:FILE)")
				return false
		"path":
			if parts.size() < 2:
				_error("--camera %s: expected path:NODE[:SPEED]" % camera_spec)
				return false
			var n := scene.get_node_or_null(NodePath(parts[1]))
			if n is PathFollow3D:
				_follow = n
			elif n is Path3D:
				_follow = PathFollow3D.new()
				_follow.loop = true
				n.add_child(_follow)
			else:
				_error("--camera %s: node %s of %s is %s, expected a Path3D or PathFollow3D" % [camera_spec,
						parts[1], scene_path, "missing" if n == null else n.get_class()])
				return false
			_path_speed = float(parts[2]) if parts.size() > 2 else 1.0
			_ensure_camera(scene)
			_driver = _drive_path
		"anim":
			if parts.size() != 3:
				_error("--camera %s: expected anim:NODE:ANIM" % camera_spec)
				return false
			var a := scene.get_node_or_null(NodePath(parts[1])) as AnimationPlayer
			if a == null or not a.has_animation(parts[2]):
				_error("--camera %s: %s" % [camera_spec, "no AnimationPlayer %s in %s" % [parts[1], scene_path]
						if a == null else "AnimationPlayer %s has no animation %s (has %s)" % [parts[1],
						parts[2], a.get_animation_list()]])
				return false
			_anim = a
			_anim_name = parts[2]
			_anim.play(_anim_name)
			_anim.pause()
			if _camera == null:
				_error("--camera %s: after playing it there is no current Camera3D in %s" % [camera_spec, scene_path])
				return false
			_driver = _drive_anim
		"replay":
			var file := camera_spec.substr(7)
			var txt := FileAccess.get_file_as_string(file)
			var data: Variant = JSON.parse_string(txt) if not txt.is_empty() else null
			if not (data is Dictionary) or not ((data as Dictionary).get("transforms") is Array) \
					or ((data as Dictionary)["transforms"] as Array).is_empty():
				_error("--camera replay:%s: expected JSON {\"transforms\": [[12 numbers: basis x, y, z columns, "
						% file + "origin], ...]} with one transform per frame")
				return false
			_replay = data["transforms"]
			_ensure_camera(scene)
			_driver = _drive_replay
		_:
			_error("--camera %s: expected scene, path:NODE[:SPEED], anim:NODE:ANIM or replay:FILE" % camera_spec)
			return false
	if method == "neural":
		_ns = _find_ns(get_tree().root)
		if _ns == null:
			_ns = NeuralSSViewport.new()
			_ns.name = "NeuralSS"
			scene.add_child(_ns)  # the addon's node, added the way a user adds it
		_ns.set("scale_factor", scale)
		_ns.set("show_stats", 0)
		_ns.set("mode", NeuralSSViewport.Mode.NEURAL)
		if jitter and "jitter" in _ns:
			_ns.set("jitter", true)
		for n: Node in _ns.find_children("*", "", true, false):
			if n.has_signal("upscaled"):
				n.connect("upscaled", _on_upscaled)
				_client = n
	var hidden := 0 if keep_ui else _hide_ui(scene)
	var info := {
		"ui_items_hidden": hidden,
		"engine": Engine.get_version_info()["string"], "adapter": RenderingServer.get_video_adapter_name(),
		"method": method, "window": [get_window().size.x, get_window().size.y],
		"viewport": [int(get_viewport().get_visible_rect().size.x), int(get_viewport().get_visible_rect().size.y)],
		"scaling_3d_mode": get_tree().root.scaling_3d_mode, "scaling_3d_scale": get_tree().root.scaling_3d_scale,
		"use_taa": get_tree().root.use_taa, "camera": str(_camera.get_path()) if _camera != null else "",
		"time_scale": Engine.time_scale, "physics_ticks": Engine.physics_ticks_per_second,
	}
	print("CMP_INFO " + JSON.stringify(info))
	return true


# path: and replay: drive a camera of the harness (the scene's scripts may move their own camera every
# frame); it copies the lens and environment of the scene's camera when there is one.
# The scene's own 2D on screen (HUD, labels, debug text) is hidden: it is not upscaled by any method, and
# in the reference run it is drawn at ref-ss x the size, which would count as every method's error.
# The addon's node and anything inside SubViewports (render-to-texture in the 3D world) are left alone.
func _hide_ui(n: Node) -> int:
	var count := 0
	for c: Node in n.get_children():
		if c == _ns or c is SubViewport or (c.get_script() != null
				and (c.get_script() as Script).get_global_name() == "NeuralSSViewport"):
			continue
		if c is CanvasLayer:
			(c as CanvasLayer).visible = false
			count += 1
		elif c is CanvasItem and not (n is CanvasItem):
			(c as CanvasItem).visible = false
			count += 1
		else:
			count += _hide_ui(c)
	return count


func _ensure_camera(scene: Node) -> void:
	var src := _camera
	_camera = Camera3D.new()
	_camera.name = "NSSCompareCamera"
	if src != null:
		for p: String in ["projection", "fov", "size", "near", "far", "keep_aspect", "h_offset", "v_offset",
				"cull_mask", "environment", "attributes", "compositor"]:
			_camera.set(p, src.get(p))
	scene.add_child(_camera)
	_camera.current = true


func _drive_path(_k: int) -> void:
	_follow.progress = _path_speed * _scene_t
	_camera.global_transform = _follow.global_transform


func _drive_anim(_k: int) -> void:
	_anim.seek(_scene_t, true)


func _drive_replay(k: int) -> void:
	var t: Array = _replay[mini(k, _replay.size() - 1)]
	if t.size() != 12:
		_error("--camera %s: transform %d has %d numbers, expected 12" % [camera_spec, k, t.size()])
		return
	_camera.global_transform = Transform3D(Vector3(t[0], t[1], t[2]), Vector3(t[3], t[4], t[5]),
			Vector3(t[6], t[7], t[8]), Vector3(t[9], t[10], t[11]))


func _find_ns(n: Node) -> Node:
	if n.get_script() != null and (n.get_script() as Script).get_global_name() == "NeuralSSViewport":
		return n
	for c: Node in n.get_children():
		var f := _find_ns(c)
		if f != null:
			return f
	return null


func _on_upscaled(_image: Image, frame_index: int) -> void:
	_last_upscaled = frame_index


func _on_post_draw() -> void:
	if _failed or _iter < 1:
		return
	var k := _iter - 1  # the iteration just drawn
	var cam := _camera if _camera != null else get_viewport().get_camera_3d()
	var x := cam.global_transform if cam != null else Transform3D()
	var xs := [x.basis.x.x, x.basis.x.y, x.basis.x.z, x.basis.y.x, x.basis.y.y, x.basis.y.z,
			x.basis.z.x, x.basis.z.y, x.basis.z.z, x.origin.x, x.origin.y, x.origin.z]
	while _cam_log.size() <= k:
		_cam_log.append(xs)  # the camera of every iteration: a --camera replay: file
	if k < 1:
		return
	var content := k
	if method == "neural":
		# what NEURAL shows is the newest upscaled image: the frame it upscales is its content
		if _ns == null or not bool(_ns.call("neural_is_fresh")) or not _ns_frame_to_iter.has(_last_upscaled):
			return
		content = int(_ns_frame_to_iter[_last_upscaled])
	if content >= warmup + frames:
		_finish()  # past the last frame (the neural path skipped it)
		return
	if content < warmup or _done_content.has(content):
		return
	_done_content[content] = true
	var img := get_viewport().get_texture().get_image()
	if img.get_format() != Image.FORMAT_RGB8:
		img.convert(Image.FORMAT_RGB8)
	var name := "grab_%05d.rgb" % content
	var f := FileAccess.open(out_dir.path_join(name), FileAccess.WRITE)
	if f == null:
		_error("cannot write %s" % out_dir.path_join(name))
		return
	f.store_buffer(img.get_data())
	f.close()
	var row := {"content": content, "iteration": k, "file": name, "w": img.get_width(), "h": img.get_height(),
			"camera": xs}
	if _ns != null:
		row["low_res"] = [(_ns.call("get_low_res_size") as Vector2i).x, (_ns.call("get_low_res_size") as Vector2i).y]
	_index.store_line(JSON.stringify(row))
	_index.flush()
	_grabbed += 1
	# The neural path can skip a frame (two upscaled frames arriving within one game frame: its capture
	# is read back asynchronously); the tool compares the first frames that every method showed.
	if content == warmup + frames - 1:  # (a skipped last frame ends the run above)
		_finish()


func _finish() -> void:
	if _index != null:
		_index.close()
		var cf := FileAccess.open(out_dir.path_join("camera.json"), FileAccess.WRITE)
		if cf != null:
			cf.store_string(JSON.stringify({"fps": Engine.get_frames_per_second(), "time_scale": Engine.time_scale,
					"note": "camera transform of every frame (basis x, y, z columns, origin), frame 0 first",
					"transforms": _cam_log}))
			cf.close()
		if _client != null:
			print("CMP_MODEL " + JSON.stringify(_client.get("model_info")))
		print("CMP_DONE %s %d of %d frames" % [method, _grabbed, frames])
		_index = null
		_failed = true  # nothing more to do
		get_tree().quit(0)


func _error(msg: String) -> void:
	_failed = true
	printerr("CMP_ERROR " + msg)
	print("CMP_ERROR " + msg)
	get_tree().quit(3)


# The harness's own user arguments (--cmp-*), parsed by the addon's one user-argument parser.
static func _user_args() -> Dictionary:
	var out := {}
	var all := NeuralSSSettings.user_args()
	for k: String in all:
		if k.begins_with("cmp-"):
			out[k] = all[k]
	return out
