class_name NeuralSSPythonBackend
extends NeuralSSBackend
## Feeds a NeuralSSViewport's NEURAL mode from the Python runtime (ONNX Runtime in a helper process):
## captured frames go to a [NeuralSSRuntimeClient], upscaled frames come back into the viewport's
## NEURAL mode, per-stage timings go to its overlay. It starts the runtime the first time NEURAL mode is
## shown. Settings: neural_ss/model_path and neural_ss/python/... (NeuralSSSettings, each with its
## command-line option); the token of a runtime already running: NeuralSSSettings.runtime_token().

const PROVIDERS := {
	"cpu": "CPUExecutionProvider",
	"cuda": "CUDAExecutionProvider,CPUExecutionProvider",
	"tensorrt": "TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
	"auto": "auto",
}

var client: NeuralSSRuntimeClient
var _present_ms: float = 0.0
var _capture_ms: float = 0.0
var _frame_capture_ms: float = 0.0
var _frame_present_ms: float = 0.0
var _scale_warned := false


func _init() -> void:
	name = "NeuralSSPythonBackend"


func _ready() -> void:
	client = NeuralSSRuntimeClient.new()
	client.name = "RuntimeClient"
	client.port = int(NeuralSSSettings.get_value("python/port"))
	client.token = NeuralSSSettings.runtime_token()
	client.command = str(NeuralSSSettings.get_value("python/command"))
	client.model_path = str(NeuralSSSettings.get_value("model_path"))
	var prov := str(NeuralSSSettings.get_value("python/execution_provider"))
	client.providers = PROVIDERS.get(prov, prov)
	client.budget_ms = float(NeuralSSSettings.get_value("python/budget_ms"))
	client.max_in_flight = clampi(int(NeuralSSSettings.get_value("python/in_flight")), 1, 4)
	if hooks != null:
		client.lockstep = hooks.lockstep
		client.f32_output = hooks.record_f32
	add_child(client)
	client.upscaled.connect(_on_upscaled)
	client.state_changed.connect(_on_client_state)
	viewport.frame_captured.connect(_on_frame)


func model_scale() -> int:
	return int(client.model_info.get("scale", 0)) if client != null and client.is_ready() else 0


func model_wants_jitter() -> bool:
	return client != null and bool(client.model_info.get("jitter", false))


func _process(_delta: float) -> void:
	if client == null:
		return
	var neural := viewport.mode == NeuralSSViewport.Mode.NEURAL
	if neural and client.state == NeuralSSRuntimeClient.State.OFF:
		client.start()
	if client.state == NeuralSSRuntimeClient.State.OFF:
		return
	if hooks != null:
		# per frame: what it shows (a fault test checks the sequence for holes) and what the bridge cost
		# the game thread since the previous line (capture readout, client work, texture upload)
		hooks.record_presented("%d %s %s %.3f %.3f %.3f %.3f" % [viewport.frame_index,
				"neural" if viewport.neural_is_fresh() else "bilinear",
				NeuralSSRuntimeClient.State.keys()[client.state], _frame_capture_ms, client.game_thread_ms,
				_frame_present_ms, float(viewport.stats.get("frame", 0.0))])
	viewport.set_stage_ms("bridge", client.game_thread_ms)
	client.game_thread_ms = 0.0
	_frame_capture_ms = 0.0
	_frame_present_ms = 0.0
	var s: Dictionary = client.stats
	viewport.set_stage_ms("capture", _capture_ms)
	for stage: String in ["transfer", "inference"]:
		if s.has(stage):
			viewport.set_stage_ms(stage, float(s[stage]))
	viewport.set_stage_ms("present", _present_ms)
	var info := client.model_info
	viewport.stats["runtime"] = "%s (%s) %s, %.1f upscaled fps" % [info.get("name", "-"),
			str(info.get("provider", "-")).trim_suffix("ExecutionProvider"),
			NeuralSSRuntimeClient.State.keys()[client.state].to_lower(), float(s.get("upscaled_fps", 0.0))]


# A model trained on jittered frames (metadata "jitter": true, e.g. accum) gets them: the node's raw
# sub-pixel jitter for the model (NeuralSSViewport.jitter_for_model, NEURAL mode only) follows the
# connected model; the game's own `jitter` setting is left alone.
func _on_client_state(state: NeuralSSRuntimeClient.State, _message: String) -> void:
	if state == NeuralSSRuntimeClient.State.READY:
		viewport.jitter_for_model = model_wants_jitter()


func _on_frame(frame: NeuralSSFrame) -> void:
	_capture_ms = frame.capture_ms
	_frame_capture_ms += frame.capture_ms
	if viewport.mode != NeuralSSViewport.Mode.NEURAL:
		return
	if client.is_ready():
		var node_scale := viewport.get_scale()
		if model_scale() != node_scale:
			if not _scale_warned:
				_scale_warned = true
				push_warning(("neural_ss: BILINEAR fallback: model %s upscales x%d but the node renders at 1/%d "
						+ "(neural_ss/scale_factor or the node's scale_factor): use a x%d model or scale %d")
						% [client.model_info.get("name", "?"), model_scale(), node_scale, node_scale, model_scale()])
			return
	client.submit(frame)


func _on_upscaled(image: Image, frame_index: int) -> void:
	var t0 := Time.get_ticks_usec()
	viewport.set_upscaled_image(image)
	_present_ms = (Time.get_ticks_usec() - t0) / 1000.0
	_frame_present_ms += _present_ms
	if hooks != null and hooks.recording:
		var s := client.stats
		hooks.record_frame(image.get_data(), frame_index, image.get_width(), image.get_height(),
				"rgbaf" if image.get_format() == Image.FORMAT_RGBAF else "rgbah", {
			"capture_ms": _capture_ms, "transfer_ms": s.get("transfer", 0.0), "inference_ms": s.get("inference", 0.0),
			"runtime_ms": s.get("runtime", 0.0), "present_ms": _present_ms, "latency_ms": s.get("latency", 0.0),
			"frame_ms": float(viewport.stats.get("frame", 0.0)),
			"model": client.model_info.get("name", ""), "provider": client.model_info.get("provider", ""),
		})
