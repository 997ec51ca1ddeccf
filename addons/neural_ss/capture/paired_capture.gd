class_name NeuralSSPairedCapture
extends Node
## Paired training-data capture from a game scene: for every frame, the low-res frame exactly as
## the game renders it (a NeuralSSViewport and its capture effect, TAA jitter when asked) AND a
## supersampled high-res target of the same instant (a second SubViewport, same World3D and
## camera, rendered in the same engine frame at scale * ss times the low-res size with MSAA,
## captured through the same compute capture, colour before tone mapping). The converter
## (`python -m nss_train.sources.godot_pairs`, which runs this scene) box-downsamples the target by ss.
##
## Run it as the main scene of the project that holds the level:
##   godot --fixed-fps 30 --path P res://addons/neural_ss/capture/paired_capture.tscn -- \
##       --scene res://level.tscn --out DIR --seq-ids 0,1 --frames 32 --stride 200 --warmup 8 \
##       --low 160x90 --scale 2 --ss 2 --msaa 4 --fixed-fps 30 [--taa] [--camera MODE] [--seed N]
##       [--jitter [--jitter-samples 8]] [--skip-ahead]
## --jitter: raw sub-pixel jitter (NeuralSSViewport.jitter, Halton(2,3)), recorded per frame.
## --pre-frames N: the target viewport starts N frames before each sequence (default 3).
## --skip-ahead: start the frame counter at the first sequence's warm-up instead of 0 (for scenes
## whose content is a function of the frame index alone, e.g. res://worldgen/world.tscn).
## Sequence k covers the frames [warmup + k * stride, warmup + k * stride + frames) and is
## written to DIR/seq_0000k/raw/ (NeuralSSFrameWriter layout with the .target.f32 buffers).
##
## Scene time is frame-locked: Godot's own --fixed-fps makes every _process delta 1 / fps, and
## --fixed-fps after `--` is given to scenes that read it (the demo: t = frame / fps), so a
## capture is repeatable and a resumed one sees the same instants. Camera MODE:
##   scene                 the scene moves its camera itself (default)
##   path:NODE[:SPEED]     follow the Path3D at NODE (relative to the scene root), SPEED units/s
##   anim:NODE:ANIMATION   drive the AnimationPlayer at NODE manually (seek to t every frame)
##   replay:FILE           camera transforms recorded with --record FILE (one per frame)
## --record FILE (no --out): play the scene normally and record the current camera every frame,
## e.g. a play session through a level, for a later `--camera replay:FILE` capture.
## Prints PAIRED_CAPTURE_DONE when every sequence is written; exits 2 with a one-line
## "paired_capture: ERROR: ..." on bad arguments.

const RECORD_FORMAT := "nss_camera_record/1"
const MSAA := {0: Viewport.MSAA_DISABLED, 2: Viewport.MSAA_2X, 4: Viewport.MSAA_4X, 8: Viewport.MSAA_8X}
const PRE_FRAMES := 3  # target viewport renders a few frames early: per-viewport temporal state settles

var args: Dictionary = {}
var ns: NeuralSSViewport
var scene_root: Node
var low := Vector2i(160, 90)
var scale: int = 2
var ss: int = 2
var fps: float = 30.0
var time_scale: float = 1.0
var frames: int = 0
var warmup: int = 8
var stride: int = 0
var seq_ids: Array[int] = []
var camera_mode: String = "scene"
var pre_frames: int = PRE_FRAMES  # --pre-frames N: 0 for scenes without per-viewport temporal effects

var _tsub: SubViewport
var _tcam: Camera3D
var _effect: NeuralSSCaptureEffect
var _writers: Dictionary = {}  # seq id -> NeuralSSFrameWriter
var _written: Dictionary = {}  # seq id -> frames written
var _lows: Dictionary = {}  # frame index -> NeuralSSFrame
var _targets: Dictionary = {}  # frame index -> NeuralSSFrame
var _last_frame: int = 0
var _follow: PathFollow3D
var _path_speed: float = 1.0
var _anim: AnimationPlayer
var _replay: Array = []
var _record_path: String = ""
var _record: Array = []
var _failed: bool = false
var _pending: Array = []  # [frame index, scene time] of the target to render this frame, set in _process
var _times := {"low": 0.0, "target": 0.0, "n": 0}  # measured render times (ms) of written frames


func _ready() -> void:
	process_priority = 990  # drives the camera (path/anim/replay modes) after the game's own scripts
	args = NeuralSSSettings.user_args()
	if not _configure():
		return
	var packed := load(args["scene"]) as PackedScene
	if packed == null:
		_fail("--scene %s: not a loadable scene (.tscn/.scn) in this project" % args["scene"])
		return
	scene_root = packed.instantiate()
	add_child(scene_root)
	if _record_path != "":
		return  # record mode: the game runs as usual
	ns = _find_viewport(scene_root)
	if ns == null:
		ns = NeuralSSViewport.new()
		ns.name = "NeuralSSCapture"
		ns.scale_factor = scale
		ns.show_stats = 0
		add_child(ns)
	elif ns.get_scale() != scale:
		_fail("--scale %d: the scene's NeuralSSViewport uses scale %d (set --scale to match)" % [scale, ns.get_scale()])
		return
	ns.use_taa = args.has("taa")
	ns.jitter = args.has("jitter")
	ns.jitter_samples = int(args.get("jitter-samples", "8"))
	if args.has("skip-ahead"):
		var first := seq_ids.min() as int
		ns.frame_index = maxi(0, first * stride)  # = the first sequence's start - warmup
	ns.mode = NeuralSSViewport.Mode.BILINEAR  # capture happens in BILINEAR and NEURAL, never NATIVE
	get_window().size = low * scale
	if not _setup_camera_mode():
		return
	if not _open_writers():
		return
	ns.frame_captured.connect(_on_low_frame)
	_setup_target()
	RenderingServer.frame_pre_draw.connect(_on_frame_pre_draw)


func _configure() -> bool:
	if not args.has("scene"):
		return _fail("--scene res://PATH.tscn is required")
	if args.has("record"):
		_record_path = args["record"]
		return true
	for key: String in ["out", "frames"]:
		if not args.has(key):
			return _fail("--%s is required (see the header of paired_capture.gd)" % key)
	var p: PackedStringArray = String(args.get("low", "160x90")).split("x")
	if p.size() != 2 or not p[0].is_valid_int() or not p[1].is_valid_int() or int(p[0]) < 8 or int(p[1]) < 8:
		return _fail("--low %s: expected WxH with both >= 8, e.g. 160x90" % args.get("low"))
	low = Vector2i(int(p[0]), int(p[1]))
	scale = int(args.get("scale", "2"))
	ss = int(args.get("ss", "2"))
	fps = float(args.get("fixed-fps", "30"))
	time_scale = float(args.get("time-scale", "1"))
	frames = int(args["frames"])
	warmup = int(args.get("warmup", "8"))
	stride = int(args.get("stride", str(frames)))
	if scale < 1 or ss < 1 or ss > 8 or fps <= 0.0 or frames < 1 or warmup < 1 or stride < frames:
		return _fail("bad numbers: scale %d (>= 1), ss %d (1..8), fixed-fps %s (> 0), frames %d (>= 1), warmup %d "
				% [scale, ss, fps, frames, warmup] + "(>= 1), stride %d (>= frames)" % stride)
	for s: String in String(args.get("seq-ids", "0")).split(","):
		if not s.is_valid_int() or int(s) < 0:
			return _fail("--seq-ids %s: expected comma-separated sequence numbers >= 0" % args["seq-ids"])
		seq_ids.append(int(s))
	for k in seq_ids:
		_last_frame = maxi(_last_frame, warmup + k * stride + frames - 1)
	var msaa := int(args.get("msaa", "4"))
	if not MSAA.has(msaa):
		return _fail("--msaa %d: expected 0, 2, 4 or 8" % msaa)
	seed(int(args.get("seed", "0")))
	if args.has("pause-physics"):
		PhysicsServer3D.set_active(false)
	camera_mode = args.get("camera", "scene")
	pre_frames = clampi(int(args.get("pre-frames", str(PRE_FRAMES))), 0, 60)
	return true


func _setup_camera_mode() -> bool:
	var parts := camera_mode.split(":")
	match parts[0]:
		"scene":
			return true
		"path":
			if parts.size() < 2:
				return _fail("--camera %s: expected path:NODE[:SPEED]" % camera_mode)
			var path := scene_root.get_node_or_null(NodePath(parts[1])) as Path3D
			if path == null:
				return _fail("--camera %s: no Path3D at %s in %s" % [camera_mode, parts[1], args["scene"]])
			_path_speed = float(parts[2]) if parts.size() > 2 else 1.0
			_follow = PathFollow3D.new()
			_follow.rotation_mode = PathFollow3D.ROTATION_ORIENTED
			_follow.loop = true
			path.add_child(_follow)
			return true
		"anim":
			if parts.size() < 3:
				return _fail("--camera %s: expected anim:NODE:ANIMATION" % camera_mode)
			_anim = scene_root.get_node_or_null(NodePath(parts[1])) as AnimationPlayer
			if _anim == null:
				return _fail("--camera %s: no AnimationPlayer at %s in %s" % [camera_mode, parts[1], args["scene"]])
			if not _anim.has_animation(parts[2]):
				return _fail("--camera %s: the AnimationPlayer has no animation %s (has %s)"
						% [camera_mode, parts[2], _anim.get_animation_list()])
			_anim.callback_mode_process = AnimationMixer.ANIMATION_CALLBACK_MODE_PROCESS_MANUAL
			_anim.play(parts[2])
			return true
		"replay":
			var file := camera_mode.substr(7)
			var text := FileAccess.get_file_as_string(file)
			var d: Variant = JSON.parse_string(text) if text != "" else null
			if not (d is Dictionary and d.get("format") == RECORD_FORMAT and d.get("frames") is Array
					and not d["frames"].is_empty()):
				return _fail("--camera replay:%s: not a camera record (expected JSON with format %s and frames)"
						% [file, RECORD_FORMAT])
			_replay = d["frames"]
			return true
	return _fail("--camera %s: expected scene, path:NODE[:SPEED], anim:NODE:ANIMATION or replay:FILE" % camera_mode)


func _open_writers() -> bool:
	for k in seq_ids:
		var w := NeuralSSFrameWriter.new(String(args["out"]).path_join("seq_%05d" % k))
		var info := {
			"scene": args["scene"], "project": ProjectSettings.globalize_path("res://"), "scale": scale,
			"fps": fps, "time_scale": time_scale, "warmup": warmup, "start_frame": warmup + k * stride,
			"sequence": k, "target_ss": ss, "msaa": int(args.get("msaa", "4")), "taa": args.has("taa"),
			"camera": camera_mode, "seed": int(args.get("seed", "0")), "low": [low.x, low.y],
			"jitter": args.has("jitter"), "jitter_samples": int(args.get("jitter-samples", "8")) if args.has("jitter") else 0,
			"renderer": RenderingServer.get_video_adapter_name(), "paired": true,
		}
		if not w.open(info):
			return _fail("--out: " + w.last_error)
		_writers[k] = w
		_written[k] = 0
	return true


func _setup_target() -> void:
	_tsub = SubViewport.new()
	_tsub.name = "NeuralSSTarget"
	_tsub.world_3d = get_viewport().find_world_3d()
	_tsub.size = low * scale * ss
	_tsub.render_target_update_mode = SubViewport.UPDATE_DISABLED
	_tsub.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR
	_tsub.scaling_3d_scale = 1.0
	_tsub.msaa_3d = MSAA[int(args.get("msaa", "4"))]
	_tsub.screen_space_aa = Viewport.SCREEN_SPACE_AA_DISABLED
	_tsub.use_taa = false
	_tsub.audio_listener_enable_3d = false
	_tsub.handle_input_locally = false
	_tcam = Camera3D.new()
	_tcam.physics_interpolation_mode = Node.PHYSICS_INTERPOLATION_MODE_OFF  # given the drawn transform
	_tsub.add_child(_tcam)
	add_child(_tsub)
	_effect = NeuralSSCaptureEffect.new()
	_effect.on_frame = _on_target_frame
	var comp := Compositor.new()
	var effects: Array[CompositorEffect] = [_effect]
	comp.compositor_effects = effects
	_tcam.compositor = comp


func _process(_delta: float) -> void:
	if _failed:
		return
	if _record_path != "":
		_record_frame()
		return
	var f := ns.frame_index  # the index NeuralSSViewport gives the frame rendered now
	var t := time_scale * f / fps
	_drive_camera(f, t)
	var src := get_viewport().get_camera_3d()
	var want := _wanted(f, pre_frames) >= 0
	_measure(f)
	_tsub.render_target_update_mode = SubViewport.UPDATE_ALWAYS if want and src != null else SubViewport.UPDATE_DISABLED
	# the target camera copies the game camera as late as NeuralSSViewport's low-res camera does (in
	# frame_pre_draw, after the game's own scripts and deferred calls moved it): the same instant
	_pending = [f, t] if want and src != null else []
	if f > _last_frame + 120:
		var missing := []
		for k in seq_ids:
			if _written[k] < frames:
				missing.append("seq %d: %d/%d" % [k, _written[k], frames])
		_fail("frames never arrived (%s): no RenderingDevice (--headless or Compatibility renderer)?"
				% ", ".join(missing))


## Sequence id whose frames (plus `pre` frames before) include frame index f, or -1.
func _wanted(f: int, pre: int = 0) -> int:
	for k in seq_ids:
		var start := warmup + k * stride
		if f >= start - pre and f < start + frames:
			return k
	return -1


func _drive_camera(f: int, t: float) -> void:
	var cam := get_viewport().get_camera_3d()
	if _follow != null and cam != null:
		_follow.progress = _path_speed * t
		cam.global_transform = _follow.global_transform
	elif _anim != null:
		_anim.seek(fmod(t, _anim.current_animation_length), true)
	elif not _replay.is_empty() and cam != null:
		var r: Dictionary = _replay[mini(f, _replay.size() - 1)]
		var x: Array = r["xform"]
		cam.global_transform = Transform3D(Basis(Vector3(x[0], x[1], x[2]), Vector3(x[3], x[4], x[5]),
				Vector3(x[6], x[7], x[8])), Vector3(x[9], x[10], x[11]))
		if r.has("fov"):
			cam.fov = r["fov"]


func _on_frame_pre_draw() -> void:
	var src := get_viewport().get_camera_3d()
	if _pending.is_empty() or src == null or _failed:
		return
	_sync_target(src, int(_pending[0]), float(_pending[1]))
	_pending = []


func _sync_target(src: Camera3D, f: int, t: float) -> void:
	_tcam.global_transform = NeuralSSViewport.rendered_transform(src)
	_tcam.projection = src.projection
	_tcam.fov = src.fov
	_tcam.size = src.size
	_tcam.near = src.near
	_tcam.far = src.far
	_tcam.keep_aspect = src.keep_aspect
	_tcam.h_offset = src.h_offset
	_tcam.v_offset = src.v_offset
	_tcam.frustum_offset = src.frustum_offset
	_tcam.cull_mask = src.cull_mask
	_tcam.environment = src.environment
	_tcam.attributes = src.attributes
	_tcam.current = true
	# The effect's parameter block (see NeuralSSCaptureEffect): no previous frame (the target's
	# motion is not used), identity rotation.
	var pr := _tcam.get_camera_projection()
	var pv := Vector4(pr.x.x, pr.y.y, pr.z.x, pr.z.y)
	var ortho := 1.0 if _tcam.projection == Camera3D.PROJECTION_ORTHOGONAL else 0.0
	var p := PackedFloat32Array([
		0.0, 0.0, _tcam.near, _tcam.far, pv.x, pv.y, pv.z, pv.w, pv.x, pv.y, pv.z, pv.w,
		1.0, 0.0, 0.0, ortho, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0,
	])
	_effect.set_frame_params(p, {"index": f, "cut": true, "time": t, "fov_y_deg": _tcam.fov})


func _on_low_frame(frame: NeuralSSFrame) -> void:
	if _wanted(frame.index) < 0:
		return
	_lows[frame.index] = frame
	_try_write(frame.index)


func _on_target_frame(frame: NeuralSSFrame) -> void:
	if _wanted(frame.index) < 0:
		return
	_targets[frame.index] = frame
	_try_write(frame.index)


func _try_write(idx: int) -> void:
	if _failed or not (_lows.has(idx) and _targets.has(idx)):
		return
	var lo: NeuralSSFrame = _lows[idx]
	var hi: NeuralSSFrame = _targets[idx]
	_lows.erase(idx)
	_targets.erase(idx)
	if lo.size != low:
		_fail("frame %d: low-res frame is %dx%d, expected %dx%d (was the window resized?)"
				% [idx, lo.size.x, lo.size.y, low.x, low.y])
		return
	if hi.size != low * scale * ss:
		_fail("frame %d: target is %dx%d, expected %dx%d" % [idx, hi.size.x, hi.size.y,
				low.x * scale * ss, low.y * scale * ss])
		return
	var k := _wanted(idx)
	var w: NeuralSSFrameWriter = _writers[k]
	if not w.write(lo, idx - (warmup + k * stride), hi):
		_fail("--out: " + w.last_error)
		return
	_written[k] += 1
	for j in seq_ids:
		if _written[j] < frames:
			return
	var n := maxf(1.0, _times["n"])
	print("PAIRED_CAPTURE_DONE sequences=%d frames=%d out=%s low_ms=%.2f target_ms=%.2f" % [seq_ids.size(), frames,
			args["out"], _times["low"] / n, _times["target"] / n])
	get_tree().quit(0)


## Renders times of the low-res and the target viewport (RenderingServer's per-viewport measure,
## GPU side; under lavapipe the GPU is the CPU), summed over the frames of the sequences.
func _measure(f: int) -> void:
	var lo := ns.get_node_or_null("NeuralSSLowRes") as SubViewport
	if lo == null or _tsub == null:
		return
	for vp: Viewport in [lo, _tsub]:
		RenderingServer.viewport_set_measure_render_time(vp.get_viewport_rid(), true)
	if _wanted(f - 1) >= 0:  # the previous frame's times are final now
		_times["low"] += RenderingServer.viewport_get_measured_render_time_gpu(lo.get_viewport_rid())
		_times["target"] += RenderingServer.viewport_get_measured_render_time_gpu(_tsub.get_viewport_rid())
		_times["n"] += 1


func _record_frame() -> void:
	var cam := get_viewport().get_camera_3d()
	if cam == null:
		return
	var b := cam.global_transform.basis
	var o := cam.global_transform.origin
	_record.append({"xform": [b.x.x, b.x.y, b.x.z, b.y.x, b.y.y, b.y.z, b.z.x, b.z.y, b.z.z, o.x, o.y, o.z],
			"fov": cam.fov})
	if _record.size() % 60 == 0 or args.has("record-frames") and _record.size() >= int(args["record-frames"]):
		_save_record()
	if args.has("record-frames") and _record.size() >= int(args["record-frames"]):
		print("PAIRED_RECORD_DONE frames=%d file=%s" % [_record.size(), _record_path])
		get_tree().quit(0)


func _save_record() -> void:
	var tmp := _record_path + ".tmp"
	var f := FileAccess.open(tmp, FileAccess.WRITE)
	if f == null:
		_fail("--record %s: cannot write (%s)" % [_record_path, error_string(FileAccess.get_open_error())])
		return
	f.store_string(JSON.stringify({"format": RECORD_FORMAT, "scene": args["scene"], "frames": _record}))
	f.close()
	DirAccess.rename_absolute(tmp, _record_path)


func _notification(what: int) -> void:
	if what == NOTIFICATION_WM_CLOSE_REQUEST and _record_path != "" and not _record.is_empty():
		_save_record()


func _find_viewport(n: Node) -> NeuralSSViewport:
	if n is NeuralSSViewport:
		return n
	for c in n.get_children():
		var v := _find_viewport(c)
		if v != null:
			return v
	return null


func _fail(msg: String) -> bool:
	_failed = true
	push_error("paired_capture: " + msg)
	printerr("paired_capture: ERROR: " + msg)
	get_tree().quit(2)
	return false
