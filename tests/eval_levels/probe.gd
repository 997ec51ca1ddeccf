extends SceneTree
## Runs evaluation levels one after the other for a few frames each and reports what
## tests/test_eval_levels.py checks. The test copies it into a temporary copy of eval_levels/ as
## res://_probe.gd and runs `godot --path COPY --fixed-fps 30 -s res://_probe.gd -- ARGS`.
##
## User args: --scenes=res://a.tscn,res://b.tscn --frames=N --size=WxH
##            [--shots=DIR --shot-frames=a,b,c]
## Prints per scene: PROBE_SCENE <path>, PROBE_CAMERA <node path> current=<bool> (or
## PROBE_CAMERA none), PROBE_ENV tonemap=<mode> glow=<bool> fog=<bool>, PROBE_FRAME_MS and
## PROBE_CPU_MS (wall and process CPU ms per frame after frame 2; lavapipe renders on the CPU),
## PROBE_FIRST_FRAME_MS wall=<ms> cpu=<ms> (loading, building and drawing the first frame);
## at the end PROBE_DONE scenes=<n>. Saves DIR/<scene name>_<k>.png for each k in --shot-frames
## (0-based drawn frame of that scene).

var _args: Dictionary = {}
var _scenes: PackedStringArray = PackedStringArray()
var _scene_i: int = -1
var _frames: int = 0
var _drawn: int = 0
var _shots: PackedInt32Array = PackedInt32Array()
var _t_after_2: int = 0
var _cpu_after_2: float = 0.0
var _finished: bool = false
var _t_load: int = 0
var _cpu_load: float = 0.0


func _initialize() -> void:
	for a in OS.get_cmdline_user_args():
		if a.begins_with("--") and a.contains("="):
			_args[a.substr(2, a.find("=") - 2)] = a.substr(a.find("=") + 1)
	var size: PackedStringArray = String(_args.get("size", "160x90")).split("x")
	root.size = Vector2i(int(size[0]), int(size[1]))
	DisplayServer.window_set_size(root.size)
	_frames = int(_args.get("frames", "4"))
	for s in String(_args.get("shot-frames", "")).split(",", false):
		_shots.append(int(s))
	_scenes = String(_args.get("scenes", "")).split(",", false)
	RenderingServer.frame_post_draw.connect(_on_drawn)
	_next_scene()


func _next_scene() -> void:
	_scene_i += 1
	_drawn = 0
	if _scene_i >= _scenes.size():
		_finished = true
		print("PROBE_DONE scenes=%d" % _scenes.size())
		quit(0)
		return
	print("PROBE_SCENE %s" % _scenes[_scene_i])
	_t_load = Time.get_ticks_usec()
	_cpu_load = _cpu_seconds()
	var err := change_scene_to_file(_scenes[_scene_i])
	if err != OK:
		printerr("PROBE_ERROR cannot load scene %s: %s" % [_scenes[_scene_i], error_string(err)])
		_finished = true
		quit(3)


func _on_drawn() -> void:
	if _finished or current_scene == null or current_scene.scene_file_path != _scenes[_scene_i]:
		return
	if _drawn == 0:
		print("PROBE_FIRST_FRAME_MS wall=%.0f cpu=%.0f" % [(Time.get_ticks_usec() - _t_load) / 1000.0,
				(_cpu_seconds() - _cpu_load) * 1000.0])
		var cam := root.get_camera_3d()
		if cam == null:
			print("PROBE_CAMERA none")
		else:
			print("PROBE_CAMERA %s current=%s" % [current_scene.get_path_to(cam), cam.current])
		var env: Environment = null
		for we in current_scene.find_children("*", "WorldEnvironment", true, false):
			env = (we as WorldEnvironment).environment
		if env != null:
			print("PROBE_ENV tonemap=%d glow=%s fog=%s" % [env.tonemap_mode, env.glow_enabled, env.fog_enabled])
	if _drawn == 2:
		_t_after_2 = Time.get_ticks_usec()
		_cpu_after_2 = _cpu_seconds()
	if _shots.has(_drawn) and _args.has("shots"):
		var img := root.get_texture().get_image()
		var name := _scenes[_scene_i].get_file().get_basename()
		img.save_png(String(_args["shots"]).path_join("%s_%d.png" % [name, _drawn]))
		print("PROBE_SHOT %s %d t=%s" % [name, _drawn, current_scene.get("scene_time")])
	_drawn += 1
	if _drawn >= _frames:
		if _frames > 3:
			print("PROBE_FRAME_MS %.1f" % ((Time.get_ticks_usec() - _t_after_2) / 1000.0 / (_frames - 3)))
			print("PROBE_CPU_MS %.1f" % ((_cpu_seconds() - _cpu_after_2) * 1000.0 / (_frames - 3)))
		_next_scene()


## CPU seconds used by this process so far (all threads), from /proc/self/stat; -1 without /proc.
func _cpu_seconds() -> float:
	var f := FileAccess.open("/proc/self/stat", FileAccess.READ)
	if f == null:
		return -1.0
	var rest := f.get_line().get_slice(")", 1).split(" ", false)
	if rest.size() < 13:
		return -1.0
	return (int(rest[11]) + int(rest[12])) / 100.0
