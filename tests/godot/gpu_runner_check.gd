extends SceneTree
## Runs NeuralSSGpuRunner on frames given as files (tests/test_gpu_runtime.py, benchmarks/bench_gpu_runtime.py)
## and writes its outputs, so Python can compare them with ONNX Runtime on exactly the same inputs.
##   -- --program P.nssgpu.json --inputs DIR --out DIR [--repeat R] [--profile]
## DIR/frames.json: {"w", "h", "frames": [{"jitter": [x, y], "cut": bool}]}; DIR/%03d.rgbd (float32 h*w*4:
## linear rgb + view depth), DIR/%03d.motion (float32 h*w*2). Writes OUT/%03d.rgba (float32, s*h*s*w*4) and
## OUT/result.json (per-kernel GPU ms with --profile, CPU ms per run). --repeat R runs the sequence R
## times (timing; outputs of the last pass are written).

var _args := {}
var _runner: NeuralSSGpuRunner
var _frames: Array = []
var _size := Vector2i.ZERO
var _rgbd: Array[RID] = []
var _motion: Array[RID] = []
var _rd: RenderingDevice
var _i := 0
var _pass := 0
var _repeat := 1
var _cpu_ms: Array = []
var _kernel: Array = []
var _wall_ms: Array = []
var _t_frame := 0


func _initialize() -> void:
	_args = NeuralSSSettings.user_args()
	_rd = RenderingServer.get_rendering_device()
	if _rd == null:
		_fail("no RenderingDevice (run with a real renderer, not --headless)")
		return
	_runner = NeuralSSGpuRunner.new()
	if not _runner.load_program(str(_args.get("program", ""))):
		_fail(_runner.error)
		return
	_runner.profile = _args.has("profile")
	if _args.has("conv-block"):
		var b: PackedStringArray = str(_args["conv-block"]).split("x")
		_runner.conv_block = Vector2i(int(b[0]), int(b[1]))
	if _args.has("conv-split"):
		_runner.conv_groups_per_invocation = int(_args["conv-split"])
	if _args.has("conv-group"):
		var g: PackedStringArray = str(_args["conv-group"]).split("x")
		_runner.conv_group = Vector2i(int(g[0]), int(g[1]))
	_repeat = int(_args.get("repeat", "1"))
	var inp := str(_args.get("inputs", ""))
	var meta: Variant = JSON.parse_string(FileAccess.get_file_as_string(inp.path_join("frames.json")))
	if not meta is Dictionary:
		_fail("%s/frames.json unreadable" % inp)
		return
	_size = Vector2i(int(meta["w"]), int(meta["h"]))
	_frames = meta["frames"]
	RenderingServer.call_on_render_thread(_make_textures.bind(inp))


func _make_textures(inp: String) -> void:
	for i in _frames.size():
		_rgbd.append(_texture(RenderingDevice.DATA_FORMAT_R32G32B32A32_SFLOAT,
				FileAccess.get_file_as_bytes(inp.path_join("%03d.rgbd" % i))))
		_motion.append(_texture(RenderingDevice.DATA_FORMAT_R32G32_SFLOAT,
				FileAccess.get_file_as_bytes(inp.path_join("%03d.motion" % i))))


func _texture(fmt: RenderingDevice.DataFormat, data: PackedByteArray) -> RID:
	var tf := RDTextureFormat.new()
	tf.format = fmt
	tf.width = _size.x
	tf.height = _size.y
	tf.usage_bits = (RenderingDevice.TEXTURE_USAGE_STORAGE_BIT | RenderingDevice.TEXTURE_USAGE_SAMPLING_BIT
			| RenderingDevice.TEXTURE_USAGE_CAN_UPDATE_BIT)
	return _rd.texture_create(tf, RDTextureView.new(), [data])


# One frame of the sequence per engine frame (so timestamps of frame i are read in frame i + 1).
func _process(_delta: float) -> bool:
	if _runner == null or _rgbd.size() < _frames.size() or _frames.is_empty():
		return false
	if _pass >= _repeat:
		return false
	RenderingServer.call_on_render_thread(_run_one.bind(_i, _pass == _repeat - 1))
	_i += 1
	if _i >= _frames.size():
		_i = 0
		_pass += 1
		if _pass >= _repeat:
			RenderingServer.call_on_render_thread(_finish)
	return false


func _run_one(i: int, write: bool) -> void:
	var f: Dictionary = _frames[i]
	var j: Array = f["jitter"]
	var t0 := Time.get_ticks_usec()
	if not _runner.run(_rd, _rgbd[i], _motion[i], _size, Vector2(j[0], j[1]), bool(f["cut"]), i):
		_fail(_runner.error)
		return
	_cpu_ms.append(_runner.last_cpu_ms)
	if _runner.profile and not _runner.kernel_ms.is_empty():
		_kernel.append(_runner.kernel_ms.duplicate())
	if write:
		var data := _rd.texture_get_data(_runner.output_rid, 0)  # the check's own readback
		var fa := FileAccess.open(str(_args["out"]).path_join("%03d.rgba" % i), FileAccess.WRITE)
		fa.store_buffer(data)
		fa.close()
	_wall_ms.append((Time.get_ticks_usec() - t0) / 1000.0)


func _finish() -> void:
	var res := {"frames": _frames.size(), "repeat": _repeat, "cpu_ms": _cpu_ms, "wall_ms": _wall_ms,
			"kernel_ms": _kernel, "ops": _runner.op_count, "model": _runner.model_name,
			"adapter": RenderingServer.get_video_adapter_name(), "engine": Engine.get_version_info()["string"]}
	var fa := FileAccess.open(str(_args["out"]).path_join("result.json"), FileAccess.WRITE)
	fa.store_string(JSON.stringify(res))
	fa.close()
	for rid: RID in _rgbd + _motion:
		_rd.free_rid(rid)
	_runner.free_gpu()
	print("GPU_RUNNER_DONE frames=%d" % _frames.size())
	quit.call_deferred(0)


func _fail(msg: String) -> void:
	printerr("gpu_runner_check: ERROR: " + msg)
	push_error("gpu_runner_check: " + msg)
	quit.call_deferred(3)
