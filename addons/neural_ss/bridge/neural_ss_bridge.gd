class_name NeuralSSBridge
extends Node
## Joins a NeuralSSViewport to the NSS runtime: captured frames go to a [NeuralSSRuntimeClient],
## upscaled frames come back into the viewport's NEURAL mode, per-stage timings go to its overlay.
##
## Add it as a child of a NeuralSSViewport (the viewport does so itself). It starts the runtime
## the first time NEURAL mode is shown. Settings (Project Settings, overridable per run with user
## arguments after [code]--[/code]):
##   neural_ss/model_path          --nss-model=PATH        model for a runtime this game starts
##   neural_ss/runtime_command     --nss-runtime-command=  Python with numpy + onnxruntime
##   neural_ss/execution_provider  --nss-provider=         cpu, cuda or tensorrt
##   neural_ss/runtime_port        --nss-runtime-port=     > 0: use a runtime already running there
##   neural_ss/runtime_token       --nss-runtime-token=    its token
##   neural_ss/runtime_budget_ms   --nss-budget-ms=        older results are not shown (bilinear is)
##   neural_ss/runtime_in_flight   --nss-in-flight=        frames sent ahead of their results (1 or 2)
##                                 --nss-lockstep          wait for every result (recording/tests only)
##                                 --nss-record=DIR        write every upscaled frame + per-frame timings
##                                 --nss-stop-file=PATH    quit the game when PATH appears (tests, tools)
## (both --key=value and --key value are accepted)

const PROVIDERS := {
	"cpu": "CPUExecutionProvider",
	"cuda": "CUDAExecutionProvider,CPUExecutionProvider",
	"tensorrt": "TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
	"auto": "auto",
}

var client: NeuralSSRuntimeClient
var viewport: Node  # NeuralSSViewport (untyped so this file does not depend on its load order)
var _present_ms: float = 0.0
var _capture_ms: float = 0.0
var _frame_capture_ms: float = 0.0
var _frame_present_ms: float = 0.0
var _record_dir: String = ""
var _record_log: FileAccess
var _record_frames: FileAccess
var _stop_file: String = ""
var _scale_warned := false


func _ready() -> void:
	viewport = get_parent()
	if not viewport.has_signal("frame_captured") or not viewport.has_method("set_upscaled_image"):
		push_warning("neural_ss: NeuralSSBridge must be a child of a NeuralSSViewport; bridge off")
		set_process(false)
		return
	var opts := user_options()
	client = NeuralSSRuntimeClient.new()
	client.name = "RuntimeClient"
	client.port = int(opts.get("nss-runtime-port", setting("runtime_port")))
	client.token = str(opts.get("nss-runtime-token", setting("runtime_token")))
	client.command = str(opts.get("nss-runtime-command", setting("runtime_command")))
	client.model_path = str(opts.get("nss-model", setting("model_path")))
	var prov := str(opts.get("nss-provider", setting("execution_provider")))
	client.providers = PROVIDERS.get(prov, prov)
	client.budget_ms = float(opts.get("nss-budget-ms", setting("runtime_budget_ms")))
	client.max_in_flight = clampi(int(opts.get("nss-in-flight", setting("runtime_in_flight"))), 1, 4)
	client.lockstep = opts.has("nss-lockstep")
	_stop_file = str(opts.get("nss-stop-file", ""))
	if opts.has("nss-record"):
		_record_dir = str(opts["nss-record"])
		client.f32_output = opts.has("nss-record-f32")
		DirAccess.make_dir_recursive_absolute(_record_dir)
		_record_log = FileAccess.open(_record_dir.path_join("timings.jsonl"), FileAccess.WRITE)
		_record_frames = FileAccess.open(_record_dir.path_join("presented.log"), FileAccess.WRITE)
		if _record_log == null or _record_frames == null:
			push_error("neural_ss: --nss-record %s: cannot write there (%s)" % [_record_dir,
					error_string(FileAccess.get_open_error())])
			_record_dir = ""
			_record_log = null
			_record_frames = null
	add_child(client)
	client.upscaled.connect(_on_upscaled)
	client.state_changed.connect(_on_client_state)
	viewport.frame_captured.connect(_on_frame)


## A Project Setting under neural_ss/ (NeuralSSSettings holds the one table of defaults).
static func setting(name: String) -> Variant:
	return NeuralSSSettings.get_value(name)


## The bridge's own user arguments after "--" (those starting with --nss-).
static func user_options() -> Dictionary:
	var opts := {}
	var args := NeuralSSSettings.user_args()
	for key: String in args:
		if key.begins_with("nss-"):
			opts[key] = args[key]
	return opts


func _process(_delta: float) -> void:
	if client == null:
		return
	if not _stop_file.is_empty() and FileAccess.file_exists(_stop_file):
		print("neural_ss: stop file %s found; quitting" % _stop_file)
		_stop_file = ""
		get_tree().quit(0)
	var neural := int(viewport.get("mode")) == 2  # NeuralSSViewport.Mode.NEURAL
	if neural and client.state == NeuralSSRuntimeClient.State.OFF:
		client.start()
	if client.state == NeuralSSRuntimeClient.State.OFF:
		return
	if _record_frames != null:
		# per frame: what it shows (a fault test checks the sequence for holes) and what the bridge cost
		# the game thread since the previous line (capture readout, client work, texture upload)
		_record_frames.store_line("%d %s %s %.3f %.3f %.3f %.3f" % [int(viewport.get("frame_index")),
				"neural" if bool(viewport.call("neural_is_fresh")) else "bilinear",
				NeuralSSRuntimeClient.State.keys()[client.state], _frame_capture_ms, client.game_thread_ms,
				_frame_present_ms, float((viewport.get("stats") as Dictionary).get("frame", 0.0))])
		_record_frames.flush()
	viewport.call("set_stage_ms", "bridge", client.game_thread_ms)
	client.game_thread_ms = 0.0
	_frame_capture_ms = 0.0
	_frame_present_ms = 0.0
	var s: Dictionary = client.stats
	viewport.call("set_stage_ms", "capture", _capture_ms)
	for stage: String in ["transfer", "inference"]:
		if s.has(stage):
			viewport.call("set_stage_ms", stage, float(s[stage]))
	viewport.call("set_stage_ms", "present", _present_ms)
	var info := client.model_info
	var label := "%s (%s) %s, %.1f upscaled fps" % [info.get("name", "-"),
			str(info.get("provider", "-")).trim_suffix("ExecutionProvider"),
			NeuralSSRuntimeClient.State.keys()[client.state].to_lower(), float(s.get("upscaled_fps", 0.0))]
	(viewport.get("stats") as Dictionary)["runtime"] = label  # text, not ms: the overlay prints it as is


# A model trained on jittered frames (metadata "jitter": true, e.g. accum) gets them: the node's raw
# sub-pixel jitter for the model (NeuralSSViewport.jitter_for_model, NEURAL mode only) follows the
# connected model; the game's own `jitter` setting is left alone.
func _on_client_state(state: NeuralSSRuntimeClient.State, _message: String) -> void:
	if state != NeuralSSRuntimeClient.State.READY or not "jitter_for_model" in viewport:
		return
	viewport.set("jitter_for_model", bool(client.model_info.get("jitter", false)))


func _on_frame(frame: NeuralSSFrame) -> void:
	_capture_ms = frame.capture_ms
	_frame_capture_ms += frame.capture_ms
	if int(viewport.get("mode")) != 2:
		return
	if client.is_ready():
		var model_scale := int(client.model_info.get("scale", 0))
		var node_scale := int(viewport.call("get_scale"))
		if model_scale != node_scale:
			if not _scale_warned:
				_scale_warned = true
				push_warning(("neural_ss: BILINEAR fallback: model %s upscales x%d but the node renders at 1/%d "
						+ "(neural_ss/scale_factor or the node's scale_factor): use a x%d model or scale %d")
						% [client.model_info.get("name", "?"), model_scale, node_scale, node_scale, model_scale])
			return
	client.submit(frame)


func _on_upscaled(image: Image, frame_index: int) -> void:
	var t0 := Time.get_ticks_usec()
	viewport.call("set_upscaled_image", image)
	_present_ms = (Time.get_ticks_usec() - t0) / 1000.0
	_frame_present_ms += _present_ms
	if not _record_dir.is_empty():
		_record(image, frame_index)


# Recording (tools/run_demo.py, tests): raw pixels written to a temp name then renamed, so a
# frame file that exists is complete; one JSON line of timings per upscaled frame.
func _record(image: Image, frame_index: int) -> void:
	var path := _record_dir.path_join("neural_%05d.rgba" % frame_index)
	var f := FileAccess.open(path + ".tmp", FileAccess.WRITE)
	if f == null:
		push_error("neural_ss: cannot write %s.tmp (%s)" % [path, error_string(FileAccess.get_open_error())])
		_record_dir = ""
		return
	f.store_buffer(image.get_data())
	f.close()
	DirAccess.rename_absolute(path + ".tmp", path)
	var s := client.stats
	_record_log.store_line(JSON.stringify({
		"frame": frame_index, "t_ms": Time.get_ticks_usec() / 1000.0, "w": image.get_width(), "h": image.get_height(),
		"format": "rgbaf" if image.get_format() == Image.FORMAT_RGBAF else "rgbah",
		"capture_ms": _capture_ms, "transfer_ms": s.get("transfer", 0.0), "inference_ms": s.get("inference", 0.0),
		"runtime_ms": s.get("runtime", 0.0), "present_ms": _present_ms, "latency_ms": s.get("latency", 0.0),
		"frame_ms": float((viewport.get("stats") as Dictionary).get("frame", 0.0)),
		"model": client.model_info.get("name", ""), "provider": client.model_info.get("provider", ""),
	}))
	_record_log.flush()
