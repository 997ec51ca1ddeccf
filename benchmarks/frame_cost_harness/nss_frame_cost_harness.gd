extends "res://nss_compare/nss_compare_harness.gd"
## Harness of benchmarks/bench_frame_cost.py: the compare harness (tools/compare_harness/, which sets up
## ONE method on the root viewport or the addon's NeuralSSViewport exactly as tools/compare_upscalers.py
## does) with its frame grabs replaced by timing. Nothing is read back from the GPU in the timed frames.
##
## Per frame (frame_post_draw of each iteration after the warm-up):
##   wall_ms    time since the previous frame_post_draw (Time.get_ticks_usec)
##   gpu_ms     sum over the root viewport and every SubViewport of the tree of
##              RenderingServer.viewport_get_measured_render_time_gpu (GPU timestamps Godot takes
##              around each viewport's render; compositor effects run inside them)
##   cpu_ms     the same for viewport_get_measured_render_time_cpu
##   kernel_ms  neural with --nss-gpu-profile: the GPU runtime's per-dispatch timestamps (its kernel_ms)
## The tool's user arguments are the compare harness's; the addon's own (--nss-*) pass through to it.
## Writes timing.json into --cmp-out and prints CMP_DONE (the compare harness's _finish).

var _t_prev: int = 0
var _vps: Array[RID] = []
var _vp_names: Array[String] = []
var _rows: Array = []
var _warm_rows: Array = []  # the warm-up frames (not timed; shows when the frame time settles)
var _fresh: int = 0  # measured frames that showed the upscaled image (neural)
var _kernels: Array = []  # per measured frame: the runner's kernel_ms (neural, --nss-gpu-profile)


func _ready() -> void:
	super()
	if method.is_empty() or _failed:
		return
	Engine.max_fps = 0
	DisplayServer.window_set_vsync_mode(DisplayServer.VSYNC_DISABLED)


# Every viewport that renders: the root and all SubViewports (the addon's low-res and present ones, the
# scene's own render-to-texture). Called at the start and again when the measured frames begin.
func _collect_viewports() -> void:
	_vps.clear()
	_vp_names.clear()
	var all: Array[Node] = [get_tree().root]
	all.append_array(get_tree().root.find_children("*", "SubViewport", true, false))
	for v: Node in all:
		var rid := (v as Viewport).get_viewport_rid()
		RenderingServer.viewport_set_measure_render_time(rid, true)
		_vps.append(rid)
		_vp_names.append(str(v.name))


# --cmp-addon-mode bilinear: the addon's node in its BILINEAR mode (its own low-res render, capture, no
# network, no present pass) instead of NEURAL.
func _start() -> bool:
	if not super():
		return false
	if _ns != null and _user_args().get("cmp-addon-mode", "neural") == "bilinear":
		_ns.set("mode", 1)  # NeuralSSViewport.Mode.BILINEAR
	return true


func _backend() -> Node:
	return _ns.get_node_or_null("NeuralSSGpuBackend") if _ns != null else null


func _on_post_draw() -> void:
	if _failed or _iter < 1:
		return
	var k := _iter - 1  # the iteration just drawn
	var now := Time.get_ticks_usec()
	var wall := (now - _t_prev) / 1000.0 if _t_prev > 0 else 0.0
	_t_prev = now
	if k == 1 or k == warmup:
		_collect_viewports()
	if k > warmup + frames:
		_finish_timing()
		return
	var gpu := 0.0
	var cpu := 0.0
	var per_vp := {}
	for i in _vps.size():
		var g := RenderingServer.viewport_get_measured_render_time_gpu(_vps[i])
		gpu += g
		cpu += RenderingServer.viewport_get_measured_render_time_cpu(_vps[i])
		per_vp[_vp_names[i]] = g
	if k <= warmup:
		if k > 1:
			_warm_rows.append({"iteration": k, "wall_ms": wall, "gpu_ms": gpu})
		return
	_rows.append({"iteration": k, "wall_ms": wall, "gpu_ms": gpu, "cpu_ms": cpu, "viewport_gpu_ms": per_vp})
	if _ns != null and int(_ns.get("mode")) == 2 and bool(_ns.call("neural_is_fresh")):
		_fresh += 1
	var b := _backend()
	if b != null and b.get("runner") != null:
		var km: Dictionary = (b.get("runner") as Object).get("kernel_ms")
		if not km.is_empty():
			_kernels.append(km.duplicate())
	if k == warmup + frames:
		_finish_timing()


func _finish_timing() -> void:
	if _failed:
		return
	var out := {"method": method, "frames": _rows, "window": [get_window().size.x, get_window().size.y],
			"adapter": RenderingServer.get_video_adapter_name(), "engine": Engine.get_version_info()["string"],
			"render_size": [0, 0], "fresh_frames": _fresh, "warmup_frames": _warm_rows, "kernel_ms": _kernels}
	var root := get_tree().root
	var rs := Vector2(root.get_visible_rect().size) * (root.scaling_3d_scale if method != "native" else 1.0)
	out["render_size"] = [roundi(rs.x), roundi(rs.y)]
	if _ns != null:
		var low: Vector2i = _ns.call("get_low_res_size")
		out["render_size"] = [low.x, low.y]
		var b := _backend()
		out["runtime"] = str((_ns.get("stats") as Dictionary).get("runtime", ""))
		if b != null and b.get("runner") != null:
			var r: Object = b.get("runner")
			out["network_frames_run"] = int(r.get("frames_run"))  # runner.run calls: 0 when the network is skipped
			out["network_ops"] = int(r.get("op_count"))
			out["model"] = str(r.get("model_name"))
		else:
			out["network_frames_run"] = 0
	var f := FileAccess.open(out_dir.path_join("timing.json.tmp"), FileAccess.WRITE)
	if f == null:
		_error("cannot write %s" % out_dir.path_join("timing.json.tmp"))
		return
	f.store_string(JSON.stringify(out))
	f.close()
	DirAccess.rename_absolute(out_dir.path_join("timing.json.tmp"), out_dir.path_join("timing.json"))
	_finish()
