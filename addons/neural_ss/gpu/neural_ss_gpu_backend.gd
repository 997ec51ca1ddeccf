class_name NeuralSSGpuBackend
extends NeuralSSBackend
## Feeds a NeuralSSViewport's NEURAL mode from the GPU runtime (NeuralSSGpuRunner): the network runs as
## compute shaders inside the capture's render callback on the captured textures, and its output
## texture is presented as is (Texture2DRD). No process is started and nothing is read back to the CPU
## (unless something asks for pixels: a frame_captured listener, --nss-record).
## NeuralSSViewport.choose_backend() creates it (see there for when the GPU runtime is chosen).

## The runner, or null in the BILINEAR fallback.
var runner: NeuralSSGpuRunner
## The line NeuralSSViewport.choose_backend() printed.
var choice: String = ""
var _effect: NeuralSSCaptureEffect
var _shown: int = 0
var _failed: bool = false
var _skip_tex: Texture2DRD  # --nss-gpu-skip-network: the capture's texture, presented instead


## The GPU program beside an exported model: res://m/x.onnx -> res://m/x.nssgpu.json
static func program_path(model_path: String) -> String:
	return NeuralSSSettings.gpu_program_path(model_path)


## A runner with the model's GPU program loaded, or one whose [member NeuralSSGpuRunner.error] says why
## it cannot run (no RenderingDevice is checked by the caller).
static func load_runner(model_path: String) -> NeuralSSGpuRunner:
	var r := NeuralSSGpuRunner.new()
	r.load_program(program_path(model_path))
	return r


func _init(with_runner: NeuralSSGpuRunner = null, line: String = "") -> void:
	name = "NeuralSSGpuBackend"
	runner = with_runner
	choice = line


func _ready() -> void:
	if runner == null:
		return
	runner.profile = hooks != null and hooks.gpu_profile
	if runner.wants_jitter:
		viewport.jitter_for_model = true  # a temporal model accumulates jittered samples (NEURAL mode)


func model_scale() -> int:
	return runner.scale if runner != null else 0


func model_wants_jitter() -> bool:
	return runner != null and runner.wants_jitter


func attach_capture(effect: NeuralSSCaptureEffect) -> void:
	_effect = effect
	_configure_effect()


func _exit_tree() -> void:
	if _effect != null:
		_effect.gpu_runner = null
	if runner != null:
		var r := runner
		RenderingServer.call_on_render_thread(r.free_gpu)


func _recording() -> bool:
	return hooks != null and hooks.recording


# GPU mode: the network runs in the capture callback only while NEURAL is shown; frames are read back
# only for listeners that want pixels (frame_captured connections) or recording.
func _configure_effect() -> void:
	if _effect == null:
		return
	var neural := viewport.mode == NeuralSSViewport.Mode.NEURAL
	_effect.gpu_runner = runner if (neural and runner != null and not _failed and not _skip_network()) else null
	_effect.readback = _recording() or not viewport.get_signal_connection_list("frame_captured").is_empty()
	if runner != null:
		runner.record_callback = _on_record if _recording() else Callable()


func _process(_delta: float) -> void:
	if runner == null:
		viewport.stats["runtime"] = "bilinear (no GPU runtime)"
		return
	# a runner that loaded its program reports an error only when the GPU refused to run it
	if not _failed and not runner.error.is_empty() and runner.frames_run == 0 and _effect != null \
			and _effect.gpu_runner != null:
		_failed = true
		push_warning("neural_ss: BILINEAR fallback: the GPU runtime failed: " + runner.error)
	_configure_effect()
	if _failed:
		viewport.stats["runtime"] = "bilinear (GPU runtime failed)"
		return
	if _skip_network():
		_present_capture()
		viewport.stats["runtime"] = "GPU %s: network skipped (--nss-gpu-skip-network)" % runner.model_name
		return
	if runner.frames_run > _shown:
		_shown = runner.frames_run
		viewport.set_upscaled_texture(runner.get_texture())
	viewport.stats["runtime"] = "GPU %s (%d ops)" % [runner.model_name, runner.op_count]
	viewport.set_stage_ms("gpu_record_cpu", runner.last_cpu_ms)
	if runner.profile and runner.kernel_ms.has("total"):
		viewport.set_stage_ms("gpu_network", float(runner.kernel_ms["total"]))


func _skip_network() -> bool:
	return hooks != null and hooks.gpu_skip_network


# --nss-gpu-skip-network: the capture's own low-res colour is presented (the present pass samples it
# bilinearly to the output size): the frame costs capture + present, no network.
func _present_capture() -> void:
	var rid := _effect.get_colour_depth_texture() if _effect != null else RID()
	if not rid.is_valid():
		return
	if _skip_tex == null:
		_skip_tex = Texture2DRD.new()
	if _skip_tex.texture_rd_rid != rid:
		_skip_tex.texture_rd_rid = rid
	viewport.set_upscaled_texture(_skip_tex)


# Rendering thread (texture_get_data_async callback): one upscaled frame, RGBA32F.
func _on_record(data: PackedByteArray, frame_index: int, w: int, h: int) -> void:
	if hooks == null:
		return
	hooks.record_frame(data, frame_index, w, h, "rgbaf", {
		"capture_ms": float(viewport.stats.get("capture_cpu", 0.0)), "transfer_ms": 0.0,
		"inference_ms": float(runner.kernel_ms.get("total", 0.0)), "runtime_ms": runner.last_cpu_ms,
		"present_ms": 0.0, "frame_ms": float(viewport.stats.get("frame", 0.0)), "model": runner.model_name,
		"provider": "gpu: " + RenderingServer.get_video_adapter_name(),
	})
