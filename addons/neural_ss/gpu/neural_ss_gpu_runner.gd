class_name NeuralSSGpuRunner
extends RefCounted
## Runs an NSS GPU program (`<model>.nssgpu.json` + `.nssgpu.bin`, format version 2, written by
## tools/export_onnx.py beside the .onnx) with RenderingDevice compute shaders on the capture's own
## textures: colour, depth and motion never leave the GPU, the history lives in two GPU buffers used in
## turn, the output is an RGBA32F texture ([member output_rid]; [method get_texture] wraps it as a
## Texture2DRD to present).
##
## One dispatch per op of the program, and the program is a few fused passes (accum: accum_prepare,
## conv2d e1 with its pool, conv2d e2, conv2d e3, conv2d d1 reading the upsample + concat in place,
## accum_output); their GLSL lives in this folder's .glsl files, compiled at run time with per-layer
## #defines (docs/runtime.md, "The kernels").
##
## Threads: [method load_program] on any thread (file reading, weight packing); [method run] on the
## rendering thread, inside a render callback (NeuralSSCaptureEffect calls it right after its copy),
## where it records one compute list with a barrier after each dispatch.
## The reference of every op is the numpy interpreter nss_runtime.gpu_program.

const FORMAT := "nss-gpu-program"
const VERSION := 2
const OPS := ["accum_prepare", "conv2d", "accum_output"]

## Set when the program could not be loaded or the GPU could not run it (one line).
var error: String = ""
var model_name: String = ""
var preset: String = ""
var scale: int = 0
var multiple: int = 1
var op_count: int = 0
## The model wants a jittered low-res render (program field "jitter"; temporal presets).
var wants_jitter: bool = false
## Frames run since load (the owner presents the output when this grows).
var frames_run: int = 0
## Index (NeuralSSFrame.index) of the frame whose result is in the output texture.
var last_frame_index: int = -1
## RD texture with the latest result (RGBA32F linear, s x the low-res size).
var output_rid: RID
## CPU milliseconds of the last run() (recording the commands).
var last_cpu_ms: float = 0.0
## Per-pass GPU times: capture RenderingDevice timestamps around every dispatch (slower).
var profile: bool = false
## pass label -> GPU milliseconds of the last profiled frame; "total" = first to last timestamp.
var kernel_ms: Dictionary = {}
## Texture/buffer reads back to the CPU made by this runner (only with a record callback set).
var readbacks: int = 0
## When valid, called (render thread) with (PackedByteArray RGBA32F, frame index, w, h) per frame:
## recording for tools and tests only (it reads the output back).
var record_callback: Callable
## Pixels per invocation (x, y) and work group size of the convolutions (chosen by measurement,
## benchmarks/results/gpu_runtime.md); a conv with a fused pool uses (x rounded up to even) x 2 pixels.
var conv_block := Vector2i(4, 1)
var conv_group := Vector2i(8, 8)
## Output vec4 groups per invocation of the convolutions (the rest over work group z). Measured on
## llvmpipe (320x180, min over frames): 4 x 1 pixels with all groups beat 1 x 1 with 2 or 4 groups.
var conv_groups_per_invocation: int = 8
## Work group size of the per-pixel passes (accum_prepare, accum_output).
var pixel_group := Vector2i(8, 8)

var _prog: Dictionary = {}
var _tensors: Dictionary = {}
var _ops: Array = []
var _packed := PackedFloat32Array()  # conv and head weights, GPU layout (vec4 units: _woff, _boff)
var _rd: RenderingDevice
var _shaders: Dictionary = {}  # key -> {"shader": RID, "pipeline": RID}
var _bufs: Dictionary = {}  # tensor name -> storage buffer RID
var _hist: Array[RID] = []  # the two history buffers, read/written in turn
var _hist_name: String = ""
var _hist_next: String = ""
var _wbufs: Dictionary = {}  # op index -> uniform buffer with that layer's weights + bias
var _dummy: RID
var _size := Vector2i.ZERO
var _passes: Array = []  # per op: {"op", "shader", "label", "groups", and for convs "set", "push"}
var _texture: Texture2DRD
var _failed_gpu := false
var _ts_pending := false


## Reads and checks the program; false (and [member error]) when it is unusable.
func load_program(json_path: String) -> bool:
	if not FileAccess.file_exists(json_path):
		error = "%s: no GPU program (export the model with tools/export_onnx.py)" % json_path
		return false
	var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(json_path))
	if not parsed is Dictionary:
		error = "%s: not a JSON object" % json_path
		return false
	var prog: Dictionary = parsed
	for op: Dictionary in prog.get("ops", []):
		if not str(op.get("op", "")) in OPS:
			error = ("%s: op %s (preset %s) is not run by the GPU runtime (it runs the fused accum passes %s); "
					+ "use neural_ss/runtime = python for this model") % [json_path, op.get("op"),
					prog.get("preset"), OPS]
			return false
	if prog.get("format", "") != FORMAT or int(prog.get("version", 0)) != VERSION:
		error = "%s: format %s version %s; expected %s version %d (re-export it with tools/export_onnx.py)" % [
				json_path, prog.get("format"), prog.get("version"), FORMAT, VERSION]
		return false
	if int(prog.get("scale", 0)) < 1 or int(prog.get("scale", 0)) > 4:
		error = "%s: scale %s; the GPU runtime runs scales 1-4" % [json_path, prog.get("scale")]
		return false
	var hist: Array = prog.get("history", [])
	if hist.size() != 1 or _find_writer(prog["ops"], str(hist[0]["from"])).is_empty():
		error = "%s: history %s; expected one tensor written by accum_output" % [json_path, hist]
		return false
	var wfile := json_path.get_base_dir().path_join(str(prog["weights"]["file"]))
	var raw := FileAccess.get_file_as_bytes(wfile)
	var count := int(prog["weights"]["count"])
	if raw.size() != count * 4:
		error = "%s: %d bytes; expected weights.count %d x 4 (float32)" % [wfile, raw.size(), count]
		return false
	_prog = prog
	_tensors = prog["tensors"]
	_ops = prog["ops"]
	model_name = str(prog.get("name", json_path.get_file()))
	preset = str(prog.get("preset", ""))
	scale = int(prog["scale"])
	multiple = int(prog.get("multiple", 1))
	op_count = _ops.size()
	wants_jitter = bool(prog.get("jitter", false))
	_hist_name = str(hist[0]["name"])
	_hist_next = str(hist[0]["from"])
	_pack_weights(raw.to_float32_array())
	return true


func _find_writer(ops: Array, tensor: String) -> Dictionary:
	for op: Dictionary in ops:
		if str(op.get("hist_out", "")) == tensor:
			return op
	return {}


func _c4(name: String) -> int:
	return ceili(int(_tensors[name]["c"]) / 4.0)


# Input slots of a conv (vec4 groups of its inputs in turn, 4 lanes each) -> source channel or -1 (a zero
# padding lane). accum_output's head reads [decoder groups, (jitter x, jitter y, 0, 0)].
func _slots(op: Dictionary) -> PackedInt32Array:
	var parts: Array = []
	if op["op"] == "conv2d":
		for t: String in op["in"]:
			parts.append(int(_tensors[t]["c"]))
	else:
		parts = [int(_tensors[str(op["in"][0])]["c"]), 2]
	var out := PackedInt32Array()
	var base := 0
	for c: int in parts:
		for i in ceili(c / 4.0) * 4:
			out.append(base + i if i < c else -1)
		base += c
	return out


# OIHW float32 -> per conv: [out group][tap][in slot group][lane j] vec4 of 4 output channels, then the
# bias vec4s (the layout neural_ss_conv.glsl and neural_ss_accum_output.glsl read).
func _pack_weights(src: PackedFloat32Array) -> void:
	var total := 0
	for op: Dictionary in _ops:
		if not op["op"] in ["conv2d", "accum_output"]:
			continue
		var slots := _slots(op)
		var cin := slots.size()
		var kk := int(op.get("k", 1)) * int(op.get("k", 1))
		var cout := int(op["cout"]) if op["op"] == "conv2d" else int(op["w"][1]) / (int(_tensors[str(op["in"][0])]["c"]) + 2)
		op["_cout"] = cout
		op["_woff"] = total / 4
		total += ceili(cout / 4.0) * kk * cin * 4
		op["_boff"] = total / 4 if op["b"] != null else -1
		if op["b"] != null:
			total += ceili(cout / 4.0) * 4
		op["_wend"] = total / 4
	_packed.resize(total)
	_packed.fill(0.0)
	for op: Dictionary in _ops:
		if not op["op"] in ["conv2d", "accum_output"]:
			continue
		var slots := _slots(op)
		var cin4 := slots.size() / 4
		var cin := 0
		for sl: int in slots:
			cin = maxi(cin, sl + 1)
		var cout := int(op["_cout"])
		var kk := int(op.get("k", 1)) * int(op.get("k", 1))
		var w0 := int(op["w"][0])
		var base := int(op["_woff"]) * 4
		for o in cout:
			for si in slots.size():
				var i := slots[si]
				if i < 0:
					continue
				var sbase := w0 + (o * cin + i) * kk
				for t in kk:
					_packed[base + (((o / 4) * kk + t) * cin4 + si / 4) * 16 + (si % 4) * 4 + o % 4] = src[sbase + t]
		if op["b"] != null:
			var b0 := int(op["b"][0])
			var bbase := int(op["_boff"]) * 4
			for o in cout:
				_packed[bbase + o] = src[b0 + o]


## The output as a Texture2DRD (main thread; null before the first frame). Valid across resizes.
func get_texture() -> Texture2DRD:
	if not output_rid.is_valid():
		return null
	if _texture == null:
		_texture = Texture2DRD.new()
	if _texture.texture_rd_rid != output_rid:
		_texture.texture_rd_rid = output_rid
	return _texture


func _res_size(res: String, size: Vector2i) -> Vector2i:
	match res:
		"half":
			return size / 2
		"high":
			return size * scale
		"one":
			return Vector2i.ONE
	return size


func _shader(file: String, defines: Dictionary) -> Dictionary:
	var key := file
	for d: String in defines:
		key += " %s=%s" % [d, defines[d]]
	if _shaders.has(key):
		return _shaders[key]
	var path := (get_script() as Script).resource_path.get_base_dir().path_join(file)
	var text := FileAccess.get_file_as_string(path)
	if text.is_empty():
		error = "GPU runtime: %s missing or empty (the addon ships its .glsl kernels; exported games must include *.glsl)" % path
		_shaders[key] = {}
		return {}
	var defs := ""
	for d: String in defines:
		defs += "#define %s %s\n" % [d, str(defines[d])]
	var src := RDShaderSource.new()
	src.language = RenderingDevice.SHADER_LANGUAGE_GLSL
	src.source_compute = text.replace("#version 450\n", "#version 450\n" + defs)  # #version stays first
	var spirv := _rd.shader_compile_spirv_from_source(src)
	if spirv.compile_error_compute != "":
		error = "GPU kernel %s failed to compile: %s" % [file, spirv.compile_error_compute.strip_edges().left(300)]
		_shaders[key] = {}
		return {}
	var sh := _rd.shader_create_from_spirv(spirv, "nss_" + file.get_basename())
	var entry := {"shader": sh, "pipeline": _rd.compute_pipeline_create(sh)}
	_shaders[key] = entry
	return entry


# [weights offset, bias offset (-1: none)] inside the op's own weight buffer, and its size in vec4s
func _woffs(op: Dictionary) -> Array:
	var w0 := int(op["_woff"])
	return [0, int(op["_boff"]) - w0 if int(op["_boff"]) >= 0 else -1, int(op["_wend"]) - w0]


func _uniform(type: RenderingDevice.UniformType, rid: RID, binding: int) -> RDUniform:
	var u := RDUniform.new()
	u.uniform_type = type
	u.binding = binding
	u.add_id(rid)
	return u


func _storage(rid: RID, binding: int) -> RDUniform:
	return _uniform(RenderingDevice.UNIFORM_TYPE_STORAGE_BUFFER, rid, binding)


func _ubo(rid: RID, binding: int) -> RDUniform:
	return _uniform(RenderingDevice.UNIFORM_TYPE_UNIFORM_BUFFER, rid, binding)


func _image(rid: RID, binding: int) -> RDUniform:
	return _uniform(RenderingDevice.UNIFORM_TYPE_IMAGE, rid, binding)


func _free_sized() -> void:
	for ps: Dictionary in _passes:
		if ps.has("set") and ps["set"].is_valid():
			_rd.free_rid(ps["set"])
	_passes.clear()
	for n: String in _bufs:
		_rd.free_rid(_bufs[n])
	_bufs.clear()
	for rid: RID in _hist:
		_rd.free_rid(rid)
	_hist.clear()
	if output_rid.is_valid():
		_rd.free_rid(output_rid)
	output_rid = RID()
	_size = Vector2i.ZERO


## Frees every GPU resource (rendering thread).
func free_gpu() -> void:
	if _rd == null:
		return
	_free_sized()
	for rid: RID in _wbufs.values() + [_dummy]:
		if rid.is_valid():
			_rd.free_rid(rid)
	_wbufs.clear()
	_dummy = RID()
	for k: String in _shaders:
		var e: Dictionary = _shaders[k]
		if not e.is_empty():
			_rd.free_rid(e["shader"])  # frees its pipeline too
	_shaders.clear()


func _zero_buffer(bytes: int) -> RID:
	var zeros := PackedByteArray()
	zeros.resize(bytes)  # zero-filled: history starts at zero, padding lanes are zero
	return _rd.storage_buffer_create(bytes, zeros)


func _setup(size: Vector2i) -> bool:
	_free_sized()
	_size = size
	if not _dummy.is_valid():
		_dummy = _zero_buffer(16)
		for i in _ops.size():
			var op: Dictionary = _ops[i]
			if op.has("_woff"):
				var wb := _packed.slice(int(op["_woff"]) * 4, int(op["_wend"]) * 4).to_byte_array()
				_wbufs[i] = _rd.uniform_buffer_create(wb.size(), wb)
	var skip := ["colour", "depth", "motion", "jitter", "reset", str(_prog["output"]), _hist_name, _hist_next]
	for name: String in _tensors:
		if name in skip:
			continue
		var sz := _res_size(str(_tensors[name]["res"]), size)
		_bufs[name] = _zero_buffer(_c4(name) * sz.x * sz.y * 16)
	var hsz := _res_size(str(_tensors[_hist_name]["res"]), size)
	for i in 2:
		_hist.append(_zero_buffer(_c4(_hist_name) * hsz.x * hsz.y * 16))
	var tf := RDTextureFormat.new()
	tf.format = RenderingDevice.DATA_FORMAT_R32G32B32A32_SFLOAT
	tf.width = size.x * scale
	tf.height = size.y * scale
	tf.usage_bits = (RenderingDevice.TEXTURE_USAGE_STORAGE_BIT | RenderingDevice.TEXTURE_USAGE_SAMPLING_BIT
			| RenderingDevice.TEXTURE_USAGE_CAN_COPY_FROM_BIT)
	output_rid = _rd.texture_create(tf, RDTextureView.new())
	for i in _ops.size():
		if not _add_pass(_ops[i], i):
			return false
	return true


func _groups(size: Vector2i, block: Vector2i, group: Vector2i) -> Vector3i:
	return Vector3i(ceili(size.x / float(block.x * group.x)), ceili(size.y / float(block.y * group.y)), 1)


func _add_pass(op: Dictionary, index: int) -> bool:
	var kind := str(op["op"])
	var ins: Array = op["in"]
	var out := str(op["out"])
	var label := "%d %s %s" % [index, kind, out]
	var low := _size
	match kind:
		"accum_prepare":
			var sh := _shader("neural_ss_accum_prepare.glsl", {"S": int(op["s"]),
					"BICUBIC": 1 if str(op["mode"]) == "bicubic" else 0, "DILATE": 1 if bool(op["dilate"]) else 0,
					"LX": pixel_group.x, "LY": pixel_group.y})
			if sh.is_empty():
				return false
			_passes.append({"op": op, "shader": sh, "label": label,
					"groups": _groups(low, Vector2i.ONE, pixel_group)})
			return true
		"accum_output":
			var nr := int(op["n_resid"])
			var sh := _shader("neural_ss_accum_output.glsl", {"S": int(op["s"]), "DEC4": _c4(str(ins[0])),
					"HEAD4": ceili(int(op["_cout"]) / 4.0), "NRESID": nr, "NSHARP": int(op["n_sharp"]),
					"WEIGHTED": 1 if bool(op["weighted"]) else 0, "LX": pixel_group.x, "LY": pixel_group.y,
					"NW": _woffs(op)[2]})
			if sh.is_empty():
				return false
			_passes.append({"op": op, "shader": sh, "label": label, "wbuf": _wbufs[index],
					"groups": _groups(low, Vector2i.ONE, pixel_group)})
			return true
		"conv2d":
			var act := str(op.get("act", "none"))
			if not act in ["none", "relu"] or op.has("mul") or op.has("add"):
				error = "GPU runtime: conv2d %s with act %s / mul / add (the kernel fuses none or relu)" % [out, act]
				return false
			var pool := str(op.get("pool", ""))
			var ups: Array = op.get("up", [0, 0])
			var od := _res_size(str(_tensors[out]["res"]), low)
			var ad := _res_size(str(_tensors[str(ins[0])]["res"]), low)
			var block := Vector2i(maxi(2, conv_block.x + conv_block.x % 2), 2) if pool != "" else conv_block
			var slots := _slots(op)
			var split := 1
			while _c4(out) / split > conv_groups_per_invocation and _c4(out) % (split * 2) == 0:
				split *= 2
			var defs := {"K": int(op["k"]), "CIN4": slots.size() / 4, "CA4": _c4(str(ins[0])), "OSPLIT": split,
					"UP_A": int(ups[0]), "POOL": 1 if pool != "" else 0,
					"REPLICATE": 1 if str(op["pad"]) == "replicate" else 0, "BX": block.x, "BY": block.y,
					"COUT4": _c4(out), "ACT": 1 if act == "relu" else 0, "LX": conv_group.x, "LY": conv_group.y,
					"NW": _woffs(op)[2]}
			if ins.size() > 1 and int(ups[1]) != 0:
				error = "GPU runtime: conv2d %s: only its first input may be upsampled" % out
				return false
			var sh := _shader("neural_ss_conv.glsl", defs)
			if sh.is_empty():
				return false
			var bl := [_bufs[out], _bufs[ins[0]], _bufs[ins[1]] if ins.size() > 1 else _dummy, _wbufs[index],
					_bufs[pool] if pool != "" else _dummy]
			var uniforms: Array[RDUniform] = []
			for bi in bl.size():
				uniforms.append(_ubo(bl[bi], bi) if bi == 3 else _storage(bl[bi], bi))
			var uset := _rd.uniform_set_create(uniforms, sh["shader"], 0)
			if not uset.is_valid():
				error = "GPU runtime: uniform set for %s failed" % label
				return false
			var wo := _woffs(op)
			var push := PackedInt32Array([od.x, od.y, ad.x, ad.y, wo[0], wo[1], 0, 0])
			_passes.append({"op": op, "shader": sh, "label": label, "set": uset,
					"push": push.to_byte_array(), "groups": _groups(od, block, conv_group) + Vector3i(0, 0, split - 1)})
			return true
	error = "GPU runtime: op %s not implemented" % kind
	return false


## Runs one frame (rendering thread). rgbd_tex: RGBA32F (linear rgb, view depth), motion_tex:
## RG32F (low-res px), both low-res storage textures (NeuralSSCaptureEffect's). False on failure.
func run(rd: RenderingDevice, rgbd_tex: RID, motion_tex: RID, size: Vector2i, jitter: Vector2, cut: bool,
		frame_index: int = 0) -> bool:
	if _failed_gpu or _prog.is_empty():
		return false
	var t0 := Time.get_ticks_usec()
	if _rd == null:
		_rd = rd
	if size.x % multiple != 0 or size.y % multiple != 0 or size.x < multiple or size.y < multiple:
		error = "low-res size %dx%d: width and height must be multiples of %d for %s" % [size.x, size.y,
				multiple, model_name]
		_failed_gpu = true
		return false
	var reset := cut or frames_run == 0
	if size != _size:
		if not _setup(size):
			_failed_gpu = true
			push_error("neural_ss: " + error)
			return false
		reset = true
	if profile:
		_read_timestamps()
	var h_read: RID = _hist[frames_run % 2]
	var h_write: RID = _hist[(frames_run + 1) % 2]
	var steps: Array = []
	for ps: Dictionary in _passes:
		var op: Dictionary = ps["op"]
		var sh: Dictionary = ps["shader"]
		var st := {"pipeline": sh["pipeline"], "groups": ps["groups"], "label": ps["label"]}
		match str(op["op"]):
			"conv2d":
				st["set"] = ps["set"]
				st["push"] = ps["push"]
			"accum_prepare":
				var u: Array[RDUniform] = [_image(rgbd_tex, 0), _image(motion_tex, 1), _storage(h_read, 2),
						_storage(_bufs[str(op["out"])], 3)]
				st["set"] = UniformSetCacheRD.get_cache(sh["shader"], 0, u)
				var b := PackedInt32Array([size.x, size.y, 0, 0]).to_byte_array()
				b.append_array(PackedFloat32Array([jitter.x, jitter.y, 1.0 if reset else 0.0, float(op["eps"]),
						float(_prog.get("depth_ref", 10.0)), 0.0, 0.0, 0.0]).to_byte_array())
				st["push"] = b
			"accum_output":
				var ins: Array = op["in"]
				var u: Array[RDUniform] = [_storage(_bufs[str(ins[0])], 0), _storage(_bufs[str(ins[1])], 1),
						_ubo(ps["wbuf"], 2), _storage(h_write, 3), _image(output_rid, 4)]
				st["set"] = UniformSetCacheRD.get_cache(sh["shader"], 0, u)
				var wo := _woffs(op)
				var b := PackedInt32Array([size.x, size.y, wo[0], wo[1]]).to_byte_array()
				b.append_array(PackedFloat32Array([jitter.x, jitter.y, float(_prog.get("colour_transform_max", 0.999)),
						0.0, float(op["sigma"]), float(op["norm"]), float(op["cap"]), float(op["hi"])]
						+ _sample_weights(op, jitter)).to_byte_array())
				st["push"] = b
		steps.append(st)
	if profile:
		_rd.capture_timestamp("nss:begin")
		for st: Dictionary in steps:
			var cl := _rd.compute_list_begin()
			_dispatch(cl, st)
			_rd.compute_list_end()
			_rd.capture_timestamp("nss:" + str(st["label"]))
		_ts_pending = true
	else:
		var cl := _rd.compute_list_begin()
		for st: Dictionary in steps:
			_dispatch(cl, st)
			_rd.compute_list_add_barrier(cl)
		_rd.compute_list_end()
	frames_run += 1
	last_frame_index = frame_index
	if record_callback.is_valid():
		readbacks += 1
		_rd.texture_get_data_async(output_rid, 0, record_callback.bind(frame_index, size.x * scale, size.y * scale))
	last_cpu_ms = (Time.get_ticks_usec() - t0) / 1000.0
	return true


# accum_output's per-frame sample weight of each output sub-pixel (gpu_program.sample_weight / norm): the
# same for every pixel, so computed here once per frame instead of 9 exp per output pixel. 16 floats (s <= 4).
func _sample_weights(op: Dictionary, jitter: Vector2) -> Array:
	var out := []
	out.resize(16)
	out.fill(1.0)
	var s := int(op["s"])
	if not bool(op["weighted"]):
		return out
	var sig := float(op["sigma"])
	for q in s * s:
		var tot := 0.0
		for t in 9:
			var dx := float(t % 3 - 1) + 0.5 - (float(q % s) + 0.5) / s + jitter.x
			var dy := float(t / 3 - 1) + 0.5 - (float(q / s) + 0.5) / s + jitter.y
			tot += exp(-(dx * dx + dy * dy) / (2.0 * sig * sig))
		out[q] = tot / float(op["norm"])
	return out


func _dispatch(cl: int, st: Dictionary) -> void:
	_rd.compute_list_bind_compute_pipeline(cl, st["pipeline"])
	_rd.compute_list_bind_uniform_set(cl, st["set"], 0)
	var push: PackedByteArray = st["push"]
	_rd.compute_list_set_push_constant(cl, push, push.size())
	var g: Vector3i = st["groups"]
	_rd.compute_list_dispatch(cl, maxi(g.x, 1), maxi(g.y, 1), maxi(g.z, 1))


# Timestamps captured in an earlier frame (RenderingDevice reports the previous frame's).
func _read_timestamps() -> void:
	if not _ts_pending:
		return
	var n := _rd.get_captured_timestamps_count()
	var prev := -1
	var first := -1
	var got := {}
	for i in n:
		var name := _rd.get_captured_timestamp_name(i)
		if not name.begins_with("nss:"):
			continue
		var t := _rd.get_captured_timestamp_gpu_time(i)
		if name == "nss:begin":
			first = t
		elif prev >= 0:
			var key := name.substr(4)
			got[key] = float(got.get(key, 0.0)) + (t - prev) / 1.0e6
		prev = t
	if first >= 0 and prev > first:
		got["total"] = (prev - first) / 1.0e6
		kernel_ms = got
