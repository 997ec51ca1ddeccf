class_name NeuralSSGpuRunner
extends RefCounted
## Runs an NSS GPU program (`<model>.nssgpu.json` + `.nssgpu.bin`, written by tools/export_onnx.py
## beside the .onnx) with RenderingDevice compute shaders on the capture's own textures: colour,
## depth and motion never leave the GPU, the history lives in GPU buffers, the output is an RGBA32F
## texture ([member output_rid]; [method get_texture] wraps it as a Texture2DRD to present).
##
## Threads: [method load_program] on any thread (file reading, weight packing); [method run] on the
## rendering thread, inside a render callback (NeuralSSCaptureEffect calls it right after its copy),
## where it records one compute list: one dispatch per op with a barrier after each.
## The reference of every op is the numpy interpreter nss_runtime.gpu_program; docs/runtime.md.

const FORMAT := "nss-gpu-program"
const VERSION := 1
const OCB := 2  # conv2d: output vec4 groups (8 channels) per thread
const PX := 4  # conv2d: pixels per thread (register blocking: each weight read serves PX pixels)
const PUSH_BYTES := 96

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
## Per-kernel GPU times: capture RenderingDevice timestamps around every dispatch (slower).
var profile: bool = false
## op label -> GPU milliseconds of the last profiled frame; "total" = first to last timestamp.
var kernel_ms: Dictionary = {}
## Texture/buffer reads back to the CPU made by this runner (only with a record callback set).
var readbacks: int = 0
## When valid, called (render thread) with (PackedByteArray RGBA32F, frame index, w, h) per frame:
## recording for tools and tests only (it reads the output back).
var record_callback: Callable
## Convolution kernel: "direct" (neural_ss_conv.glsl: all output channels per invocation) or "tiled" (the
## old shared-memory kernel; kept for comparison while the runtime is rebuilt).
var conv_impl: String = "direct"
## Pixels per invocation (x, y) and work group size of the direct convolution (chosen by measurement).
var conv_block := Vector2i(2, 2)
var conv_group := Vector2i(8, 8)

var _prog: Dictionary = {}
var _tensors: Dictionary = {}
var _ops: Array = []
var _packed := PackedFloat32Array()  # all conv weights, GPU layout
var _rd: RenderingDevice
var _shaders: Dictionary = {}  # key -> {"shader": RID, "pipeline": RID}
var _bufs: Dictionary = {}  # tensor name -> storage buffer RID
var _wbuf: RID
var _dummy: RID
var _size := Vector2i.ZERO
var _steps: Array = []  # {"pipeline", "set", "push", "groups", "label"}
var _input_shader: Dictionary = {}
var _output_shader: Dictionary = {}
var _history_pairs: Array = []
var _texture: Texture2DRD
var _failed_gpu := false
var _ts_pending := false
var _act_param: Dictionary = {}


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
	if prog.get("format", "") != FORMAT or int(prog.get("version", 0)) != VERSION:
		error = "%s: format %s version %s; expected %s version %d" % [json_path, prog.get("format"),
				prog.get("version"), FORMAT, VERSION]
		return false
	var wfile := json_path.get_base_dir().path_join(str(prog["weights"]["file"]))
	var raw := FileAccess.get_file_as_bytes(wfile)
	var count := int(prog["weights"]["count"])
	if raw.size() != count * 4:
		error = "%s: %d bytes; expected weights.count %d x 4 (float32)" % [wfile, raw.size(), count]
		return false
	var w := raw.to_float32_array()
	_prog = prog
	_tensors = prog["tensors"]
	_ops = prog["ops"]
	model_name = str(prog.get("name", json_path.get_file()))
	preset = str(prog.get("preset", ""))
	scale = int(prog["scale"])
	multiple = int(prog.get("multiple", 1))
	op_count = _ops.size()
	wants_jitter = bool(prog.get("jitter", false))
	_act_param = {"inv_reinhard": float(prog.get("colour_transform_max", 0.999)),
			"depth_norm": float(prog.get("depth_ref", 10.0))}
	for op: Dictionary in _ops:
		if not _kernel_for(op).is_empty():
			continue
		error = "%s: op %s is not implemented by this GPU runtime" % [json_path, op.get("op")]
		return false
	_pack_weights(w)
	for h: Dictionary in prog["history"]:
		_history_pairs.append([str(h["from"]), str(h["name"])])
	return true


func _kernel_for(op: Dictionary) -> String:
	match str(op["op"]):
		"map":
			return "map"
		"concat", "slice":
			return "concat"
		"add", "mul", "blend", "where_reset":
			return "binary"
		"gather_nearest", "fold_onehot", "fold_warp", "depth_to_space", "space_to_depth", "upsample2", \
				"up_folded_jittered", "broadcast", "dilate_motion", "warp_history", "neigh_stats3x3", \
				"softmax_groups", "apply_kernel3x3", "clamp_box", "alpha_prior":
			return str(op["op"])
		"conv2d":
			return "conv2d"
		"maxpool2", "avgpool2":
			return "pool2"
		"sample_weight":
			return "sample_weight"
		"alpha_weighted", "total_weight":
			return "weighted"
	return ""


# OIHW float32 -> per conv: [og][tap][ci][lane j] vec4 of 4 output channels, then the bias vec4s.
func _pack_weights(src: PackedFloat32Array) -> void:
	var total := 0
	for op: Dictionary in _ops:
		if op["op"] != "conv2d":
			continue
		var cout4 := ceili(int(op["cout"]) / 4.0)
		var cin4 := ceili(int(op["cin"]) / 4.0)
		var kk := int(op["k"]) * int(op["k"])
		op["_woff"] = total / 4
		total += cout4 * kk * cin4 * 16
		op["_boff"] = total / 4 if op["b"] != null else -1
		if op["b"] != null:
			total += cout4 * 4
	_packed.resize(total)
	_packed.fill(0.0)
	for op: Dictionary in _ops:
		if op["op"] != "conv2d":
			continue
		var cout := int(op["cout"])
		var cin := int(op["cin"])
		var kk := int(op["k"]) * int(op["k"])
		var cin4 := ceili(cin / 4.0)
		var w0 := int(op["w"][0])
		var base := int(op["_woff"]) * 4
		for o in cout:
			var og := o / 4
			var r := o % 4
			for i in cin:
				var ci := i / 4
				var j := i % 4
				var sbase := w0 + (o * cin + i) * kk
				for t in kk:
					_packed[base + (((og * kk + t) * cin4 + ci) * 4 + j) * 4 + r] = src[sbase + t]
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


func _c4(name: String) -> int:
	return ceili(int(_tensors[name]["c"]) / 4.0)


func _shader(key: String, kernel: String, defines: Dictionary = {}) -> Dictionary:
	if _shaders.has(key):
		return _shaders[key]
	var src := RDShaderSource.new()
	src.language = RenderingDevice.SHADER_LANGUAGE_GLSL
	src.source_compute = NeuralSSGpuKernels.source(kernel, defines)
	var spirv := _rd.shader_compile_spirv_from_source(src)
	if spirv.compile_error_compute != "":
		error = "GPU kernel %s failed to compile: %s" % [key, spirv.compile_error_compute.strip_edges().left(300)]
		_shaders[key] = {}
		return {}
	var sh := _rd.shader_create_from_spirv(spirv, "nss_" + key)
	var entry := {"shader": sh, "pipeline": _rd.compute_pipeline_create(sh)}
	_shaders[key] = entry
	return entry


func _file_shader(key: String, file: String, defines: Dictionary) -> Dictionary:
	if _shaders.has(key):
		return _shaders[key]
	var path := (get_script() as Script).resource_path.get_base_dir().path_join(file)
	var text := FileAccess.get_file_as_string(path)
	if text.is_empty():
		error = "GPU runtime: %s missing or empty (the addon must ship its .glsl kernels)" % path
		_shaders[key] = {}
		return {}
	var defs := ""
	for d: String in defines:
		defs += "#define %s %s\n" % [d, str(defines[d])]
	var src := RDShaderSource.new()
	src.language = RenderingDevice.SHADER_LANGUAGE_GLSL
	src.source_compute = text.replace("#version 450\n", "#version 450\n" + defs)
	var spirv := _rd.shader_compile_spirv_from_source(src)
	if spirv.compile_error_compute != "":
		error = "GPU kernel %s failed to compile: %s" % [file, spirv.compile_error_compute.strip_edges().left(300)]
		_shaders[key] = {}
		return {}
	var sh := _rd.shader_create_from_spirv(spirv, "nss_" + file.get_basename())
	var entry := {"shader": sh, "pipeline": _rd.compute_pipeline_create(sh)}
	_shaders[key] = entry
	return entry


func _storage(rid: RID, binding: int) -> RDUniform:
	var u := RDUniform.new()
	u.uniform_type = RenderingDevice.UNIFORM_TYPE_STORAGE_BUFFER
	u.binding = binding
	u.add_id(rid)
	return u


func _image(rid: RID, binding: int) -> RDUniform:
	var u := RDUniform.new()
	u.uniform_type = RenderingDevice.UNIFORM_TYPE_IMAGE
	u.binding = binding
	u.add_id(rid)
	return u


func _push(o: Array, a: Array, i1: Array, i2: Array, f0: Array, f1: Array = [0.0, 0.0, 0.0, 0.0]) -> PackedByteArray:
	var ints := PackedInt32Array(o + a + i1 + i2)
	var b := ints.to_byte_array()
	b.append_array(PackedFloat32Array(f0 + f1).to_byte_array())
	return b


func _dims(name: String) -> Array:
	var sz := _res_size(str(_tensors[name]["res"]), _size)
	return [sz.x, sz.y, _c4(name), int(_tensors[name]["c"])]


func _act(op: Dictionary) -> Array:
	var a := str(op.get("act", "none"))
	return [float(NeuralSSGpuKernels.ACTS.find(a)), float(op.get("mul", 1.0)), float(op.get("add", 0.0)),
			float(_act_param.get(a, 0.0))]


func _free_sized() -> void:
	for st: Dictionary in _steps:
		if st["set"].is_valid():
			_rd.free_rid(st["set"])
	_steps.clear()
	for n: String in _bufs:
		_rd.free_rid(_bufs[n])
	_bufs.clear()
	if output_rid.is_valid():
		_rd.free_rid(output_rid)
	output_rid = RID()
	_size = Vector2i.ZERO


## Frees every GPU resource (rendering thread).
func free_gpu() -> void:
	if _rd == null:
		return
	_free_sized()
	for rid: RID in [_wbuf, _dummy]:
		if rid.is_valid():
			_rd.free_rid(rid)
	_wbuf = RID()
	_dummy = RID()
	for k: String in _shaders:
		var e: Dictionary = _shaders[k]
		if not e.is_empty():
			_rd.free_rid(e["shader"])  # frees its pipeline too
	_shaders.clear()


func _setup(size: Vector2i) -> bool:
	_free_sized()
	_size = size
	if not _wbuf.is_valid():
		var wb := _packed.to_byte_array()
		if wb.is_empty():
			wb.resize(16)
		_wbuf = _rd.storage_buffer_create(wb.size(), wb)
		var z := PackedByteArray()
		z.resize(16)
		_dummy = _rd.storage_buffer_create(16, z)
	for name: String in _tensors:
		var sz := _res_size(str(_tensors[name]["res"]), size)
		var n := _c4(name) * sz.x * sz.y * 16
		var zeros := PackedByteArray()
		zeros.resize(n)  # zero-filled: history starts at zero, padding lanes are zero
		_bufs[name] = _rd.storage_buffer_create(n, zeros)
	var tf := RDTextureFormat.new()
	tf.format = RenderingDevice.DATA_FORMAT_R32G32B32A32_SFLOAT
	tf.width = size.x * scale
	tf.height = size.y * scale
	tf.usage_bits = (RenderingDevice.TEXTURE_USAGE_STORAGE_BIT | RenderingDevice.TEXTURE_USAGE_SAMPLING_BIT
			| RenderingDevice.TEXTURE_USAGE_CAN_COPY_FROM_BIT)
	output_rid = _rd.texture_create(tf, RDTextureView.new())
	_input_shader = _shader("input", "input")
	_output_shader = _shader("output", "output")
	if _input_shader.is_empty() or _output_shader.is_empty():
		return false
	for i in _ops.size():
		if not _add_op_steps(_ops[i], i):
			return false
	for pair: Array in _history_pairs:  # history := its next value (sources are never history tensors)
		var copy := {"op": "concat", "in": [pair[0]], "out": pair[1]}
		if not _add_op_steps(copy, -1):
			return false
	return true


func _step(key: String, kernel: String, defines: Dictionary, bindings: Array, push: PackedByteArray,
		groups: Vector3i, label: String) -> bool:
	var sh := _shader(key, kernel, defines)
	if sh.is_empty():
		return false
	var uniforms: Array[RDUniform] = []
	for i in bindings.size():
		uniforms.append(_storage(bindings[i], i))
	var uset := _rd.uniform_set_create(uniforms, sh["shader"], 0)
	if not uset.is_valid():
		error = "GPU runtime: uniform set for %s failed" % label
		return false
	_steps.append({"pipeline": sh["pipeline"], "set": uset, "push": push, "groups": groups, "label": label})
	return true


func _groups(d: Array, z: int) -> Vector3i:
	return Vector3i(ceili(d[0] / 8.0), ceili(d[1] / 8.0), z)


func _add_op_steps(op: Dictionary, index: int) -> bool:
	var kind := str(op["op"])
	var ins: Array = op["in"]
	var out := str(op["out"])
	var od := _dims(out)
	var ad := _dims(str(ins[0])) if str(ins[0]) != "" else od
	var label := "%02d %s %s" % [index, kind, out] if index >= 0 else "history %s" % out
	var f0 := _act(op)
	var z0 := [0, 0, 0, 0]
	match kind:
		"map", "maxpool2", "avgpool2", "depth_to_space", "space_to_depth", "upsample2":
			var kernel := _kernel_for(op)
			var i1 := [0, 0, 0, 0]
			if kind == "avgpool2":
				i1[0] = 1
			elif kind == "upsample2":
				i1[0] = 1 if str(op["mode"]) == "nearest" else 0
			elif kind in ["depth_to_space", "space_to_depth"]:
				i1[0] = int(op["s"])
			return _step(kernel, kernel, {}, [_bufs[out], _bufs[ins[0]]], _push(od, ad, i1, z0, f0),
					_groups(od, od[2]), label)
		"concat", "slice":
			# one copy per input into its channel range of the output (no limit on the number of inputs)
			var off := 0
			for k in ins.size():
				var start := int(op.get("start", 0)) if kind == "slice" else 0
				var count := int(op.get("count", 0)) if kind == "slice" else int(_tensors[ins[k]]["c"])
				var kd := _dims(str(ins[k]))
				if not _step("copy_channels", "copy_channels", {}, [_bufs[out], _bufs[ins[k]]],
						_push(od, kd, [off, start, count, 0], z0, f0), _groups(od, ceili(count / 4.0)),
						"%s[%d]" % [label, k] if ins.size() > 1 else label):
					return false
				off += count
			return true
		"add", "mul", "blend", "where_reset":
			var mode: int = {"add": 0, "mul": 1, "blend": 2, "where_reset": 3}[kind]
			var b := [_bufs[out]]
			var i1 := [mode, 0, 0, 0]
			var i2 := [0, 0, 0, 0]
			if kind == "where_reset":
				var zero_a := str(ins[1]) == ""
				i1[1] = 1 if zero_a else 0
				b.append_array([_dummy if zero_a else _bufs[ins[1]], _bufs[ins[2]], _bufs[ins[0]]])
				ad = od
			elif kind == "blend":
				b.append_array([_bufs[ins[0]], _bufs[ins[1]], _bufs[ins[2]]])
			else:
				b.append_array([_bufs[ins[0]], _bufs[ins[1]], _dummy])
				i2[0] = int(_tensors[ins[1]]["c"])
			return _step("binary", "binary", {}, b, _push(od, ad, i1, i2, f0), _groups(od, od[2]), label)
		"gather_nearest":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]], _push(od, ad, z0, z0, f0),
					_groups(od, od[2]), label)
		"fold_onehot":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]],
					_push(od, ad, [int(op["s"]), 0, 0, 0], z0, f0), _groups(od, od[2]), label)
		"fold_warp":
			var n := int(op["frames"])
			var s := int(op["s"])
			if (s * s) % 4 != 0:
				error = "GPU runtime: fold_warp needs s*s a multiple of 4 (s = %d)" % s
				return false
			for k in n:
				var c := int(_tensors[ins[k]]["c"])
				var bb := [_bufs[out], _bufs[ins[k]], _bufs[ins[n + k]], _bufs[ins[2 * n + k]], _bufs[ins[3 * n]]]
				if not _step(kind, kind, {}, bb, _push(od, ad, [s, k, n, c], z0, f0),
						_groups(od, c * s * s / 4), "%s[%d]" % [label, k]):
					return false
			return true
		"up_folded_jittered", "apply_kernel3x3":
			var i1 := [int(op["s"]) if kind == "up_folded_jittered" else int(op["s"]) * int(op["s"]), 0, 0, 0]
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]], _push(od, ad, i1, z0, f0),
					_groups(od, od[2]), label)
		"broadcast":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]]], _push(od, ad, z0, z0, f0),
					_groups(od, od[2]), label)
		"dilate_motion":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]], _push(od, ad, z0, z0, f0),
					_groups(od, 1), label)
		"warp_history":
			var i1 := [int(op["s"]), 0 if str(op["mode"]) == "bicubic" else 1, int(_tensors[ins[0]]["c"]), 0]
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]], _push(od, ad, i1, z0, f0),
					_groups(od, od[2]), label)
		"neigh_stats3x3":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]]],
					_push(od, ad, [int(_tensors[ins[0]]["c"]), 0, 0, 0], z0, f0, [float(op["eps"]), 0.0, 0.0, 0.0]),
					_groups(od, od[2]), label)
		"softmax_groups":
			var n := int(_tensors[ins[0]]["c"]) / int(op["groups"])
			if n > 32:
				error = "GPU runtime: softmax over groups of %d channels (at most 32) in %s" % [n, out]
				return false
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]]], _push(od, ad, [n, 0, 0, 0], z0, f0),
					_groups(od, int(op["groups"])), label)
		"clamp_box":
			var c := int(_tensors[ins[1]]["c"]) / 2
			var i1 := [int(_tensors[ins[0]]["c"]) / c, c, 0, 0]
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]], _bufs[ins[2]]],
					_push(od, ad, i1, z0, f0), _groups(od, od[2]), label)
		"alpha_prior":
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]], _bufs[ins[1]], _bufs[ins[2]]],
					_push(od, ad, z0, z0, f0, [float(op["hi"]), 0.0, 0.0, 0.0]), _groups(od, od[2]), label)
		"sample_weight":
			var norm := float(op["norm"])
			return _step(kind, kind, {}, [_bufs[out], _bufs[ins[0]]], _push(od, ad, [int(op["s"]), 0, 0, 0], z0, f0,
					[float(op["sigma"]), norm, 0.0, 0.0]), Vector3i(1, 1, od[2]), label)
		"alpha_weighted", "total_weight":
			var b := [_bufs[out], _bufs[ins[0]], _bufs[ins[1]]]
			if kind == "alpha_weighted":
				b.append_array([_bufs[ins[2]], _bufs[ins[3]]])
			else:
				b.append_array([_dummy, _bufs[ins[1]]])
			var mode := 0 if kind == "alpha_weighted" else 1
			return _step("weighted", "weighted", {}, b, _push(od, ad, [mode, 0, 0, 0], z0, f0,
					[float(op["cap"]), 0.0, 0.0, 0.0]), _groups(od, od[2]), label)
		"conv2d":
			var k := int(op["k"])
			var act_s := str(op.get("act", "none"))
			if conv_impl == "direct" and act_s in ["none", "relu"] and not op.has("mul") and not op.has("add"):
				var cin4 := ceili(int(op["cin"]) / 4.0)
				var defs := {"K": k, "CIN4": cin4, "CA4": cin4, "UP_A": 0, "POOL": 0,
						"REPLICATE": 1 if str(op["pad"]) == "replicate" else 0, "BX": conv_block.x,
						"BY": conv_block.y, "COUT4": od[2], "ACT": 1 if act_s == "relu" else 0,
						"LX": conv_group.x, "LY": conv_group.y}
				var dkey := "conv_direct"
				for d: String in defs:
					dkey += "_%s%s" % [d, defs[d]]
				var sh := _file_shader(dkey, "neural_ss_conv.glsl", defs)
				if sh.is_empty():
					return false
				var pc := PackedInt32Array([od[0], od[1], ad[0], ad[1], int(op["_woff"]), int(op["_boff"]), 0,
						0]).to_byte_array()
				var uniforms: Array[RDUniform] = []
				var bl := [_bufs[out], _bufs[ins[0]], _dummy, _wbuf, _dummy]
				for bi in bl.size():
					uniforms.append(_storage(bl[bi], bi))
				var uset := _rd.uniform_set_create(uniforms, sh["shader"], 0)
				var cg := Vector3i(ceili(od[0] / float(conv_block.x * conv_group.x)),
						ceili(od[1] / float(conv_block.y * conv_group.y)), 1)
				_steps.append({"pipeline": sh["pipeline"], "set": uset, "push": pc, "groups": cg, "label": label})
				return true
			var key := "conv2d_k%d" % k
			var i1 := [int(op["_woff"]), int(op["_boff"]), 1 if str(op["pad"]) == "replicate" else 0, 0]
			var groups := Vector3i(ceili(od[0] / (8.0 * PX)), ceili(od[1] / 8.0), ceili(od[2] / float(OCB)))
			return _step(key, "conv2d", {"K": k, "OCB": OCB, "PX": PX}, [_bufs[out], _bufs[ins[0]], _wbuf],
					_push(od, ad, i1, z0, f0), groups, label)
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
	_rd.buffer_update(_bufs["jitter"], 0, 16, PackedFloat32Array([jitter.x, jitter.y, 0.0, 0.0]).to_byte_array())
	_rd.buffer_update(_bufs["reset"], 0, 16, PackedFloat32Array([1.0 if reset else 0.0, 0.0, 0.0, 0.0]).to_byte_array())
	var low := [size.x, size.y, 1, 4]
	var in_u: Array[RDUniform] = [_image(rgbd_tex, 0), _image(motion_tex, 1), _storage(_bufs["colour"], 2),
			_storage(_bufs["depth"], 3), _storage(_bufs["motion"], 4)]
	var in_set := UniformSetCacheRD.get_cache(_input_shader["shader"], 0, in_u)
	var hd := _dims(str(_prog["output"]))
	var out_u: Array[RDUniform] = [_image(output_rid, 0), _storage(_bufs[str(_prog["output"])], 1)]
	var out_set := UniformSetCacheRD.get_cache(_output_shader["shader"], 0, out_u)
	var zero := [0, 0, 0, 0]
	var none := [0.0, 1.0, 0.0, 0.0]
	var all_steps: Array = [{"pipeline": _input_shader["pipeline"], "set": in_set, "label": "input",
			"push": _push(low, low, zero, zero, none), "groups": _groups(low, 1)}]
	all_steps.append_array(_steps)
	all_steps.append({"pipeline": _output_shader["pipeline"], "set": out_set, "label": "output",
			"push": _push(hd, hd, zero, zero, none), "groups": _groups(hd, 1)})
	if profile:
		_rd.capture_timestamp("nss:begin")
		for st: Dictionary in all_steps:
			var cl := _rd.compute_list_begin()
			_dispatch(cl, st)
			_rd.compute_list_end()
			_rd.capture_timestamp("nss:" + str(st["label"]))
		_ts_pending = true
	else:
		var cl := _rd.compute_list_begin()
		for st: Dictionary in all_steps:
			_dispatch(cl, st)
			_rd.compute_list_add_barrier(cl)
		_rd.compute_list_end()
	frames_run += 1
	last_frame_index = frame_index
	if record_callback.is_valid():
		readbacks += 1
		_rd.texture_get_data_async(output_rid, 0, record_callback.bind(frame_index, hd[0], hd[1]))
	last_cpu_ms = (Time.get_ticks_usec() - t0) / 1000.0
	return true


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
