class_name NeuralSSGpuBackend
extends Node
## Feeds a NeuralSSViewport's NEURAL mode from the GPU runtime (NeuralSSGpuRunner): the network runs as
## compute shaders inside the capture's render callback on the captured textures, and its output
## texture is presented as is (Texture2DRD). No process is started and nothing is read back to the CPU
## (unless something asks for pixels: a frame_captured listener, --nss-record).
##
## [method choose] makes the one choice of the runtime (neural_ss/runtime, or --nss-runtime=):
##   auto    the GPU runtime where the device can run it (RenderingDevice + the model's GPU program),
##           else the Python runtime (NeuralSSBridge: ONNX Runtime in a process)
##   gpu     the GPU runtime, else BILINEAR (never a process)
##   python  the Python runtime (research, CUDA/TensorRT, offline)
## and prints one line saying which path is live and why; the overlay shows it (stats["runtime"]).
## User args (after --): --nss-runtime=, --nss-model=, --nss-record=DIR (write every upscaled frame
## + timings.jsonl, the bridge's format), --nss-stop-file=PATH, --nss-gpu-profile (per-kernel GPU times
## from RenderingDevice timestamps, stats["gpu_*"]), --nss-gpu-skip-network (benchmarks only: capture and
## present without running the network, which then shows the captured low-res colour, bilinear; the
## network's share of the frame cost is the difference, benchmarks/bench_frame_cost.py).

const RUNTIMES := ["auto", "gpu", "python"]

## The runner, or null in the BILINEAR fallback.
var runner: NeuralSSGpuRunner
## The line printed by [method choose].
var choice: String = ""
var viewport: Node  # NeuralSSViewport (untyped: no load-order dependency)
var _effect: NeuralSSCaptureEffect
var _shown: int = 0
var _record_dir: String = ""
var _record_log: FileAccess
var _stop_file: String = ""
var _failed: bool = false
var _skip_network: bool = false
var _skip_tex: Texture2DRD
var _mutex := Mutex.new()


## The GPU program beside an exported model: res://m/x.onnx -> res://m/x.nssgpu.json
static func program_path(model_path: String) -> String:
	var base := model_path.get_basename() if model_path.get_extension() == "onnx" else model_path
	return base + ".nssgpu.json" if not model_path.ends_with(".nssgpu.json") else model_path


## The runtime node for `vp` (a NeuralSSViewport): a NeuralSSGpuBackend or a NeuralSSBridge, named
## "NeuralSSGpuBackend" / "NeuralSSBridge". Prints the one line.
static func choose(vp: Node) -> Node:
	var opts := NeuralSSBridge.user_options()
	var want := str(opts.get("nss-runtime", NeuralSSSettings.get_value("runtime"))).to_lower()
	var model := str(opts.get("nss-model", NeuralSSSettings.get_value("model_path")))
	if not want in RUNTIMES:
		push_warning("neural_ss: runtime '%s' (neural_ss/runtime or --nss-runtime): expected one of %s; using auto"
				% [want, RUNTIMES])
		want = "auto"
	var line := ""
	var runner_ok: NeuralSSGpuRunner = null
	# an explicitly configured runtime process (port or command) is the Python runtime "when configured"
	var configured := int(opts.get("nss-runtime-port", NeuralSSSettings.get_value("runtime_port"))) > 0 \
			or not str(opts.get("nss-runtime-command", NeuralSSSettings.get_value("runtime_command"))).is_empty()
	if want == "python":
		line = "PYTHON runtime (neural_ss/runtime = python): ONNX Runtime in a runtime process, model %s" % model
	elif want == "auto" and configured:
		want = "python"
		line = ("PYTHON runtime (neural_ss/runtime = auto and a runtime process is configured: runtime_port / "
				+ "runtime_command): ONNX Runtime in a runtime process, model %s") % model
	elif RenderingServer.get_rendering_device() == null:
		line = ""  # NeuralSSViewport already said it: "BILINEAR fallback: no RenderingDevice ..."
	else:
		var r := NeuralSSGpuRunner.new()
		if r.load_program(program_path(model)):
			runner_ok = r
			line = ("GPU runtime (neural_ss/runtime = %s, the device has RenderingDevice compute): %s (%s x%d, "
					+ "%d ops) as compute shaders on %s; no process, frames stay on the GPU") % [want, r.model_name, r.preset,
					r.scale, r.op_count, RenderingServer.get_video_adapter_name()]
		elif want == "gpu":
			line = "BILINEAR fallback (neural_ss/runtime = gpu): the GPU runtime cannot run: %s" % r.error
		else:
			want = "python"
			line = ("PYTHON runtime (neural_ss/runtime = auto; the GPU runtime cannot run this model: %s): "
					+ "ONNX Runtime in a runtime process") % r.error
	if not line.is_empty():
		print("neural_ss: " + line)
	if want == "python":
		var bridge := NeuralSSBridge.new()
		bridge.name = "NeuralSSBridge"
		return bridge
	var b := NeuralSSGpuBackend.new()
	b.name = "NeuralSSGpuBackend"
	b.runner = runner_ok
	b.choice = line
	return b


func _ready() -> void:
	viewport = get_parent()
	if viewport.has_signal("capture_effect_created"):
		viewport.connect("capture_effect_created", _on_effect)
	var opts := NeuralSSBridge.user_options()
	_stop_file = str(opts.get("nss-stop-file", ""))
	if runner == null:
		return
	runner.profile = opts.has("nss-gpu-profile")
	_skip_network = opts.has("nss-gpu-skip-network")
	if runner.wants_jitter and "jitter_for_model" in viewport:
		viewport.set("jitter_for_model", true)  # a temporal model accumulates jittered samples (NEURAL mode)
	if opts.has("nss-record"):
		_record_dir = str(opts["nss-record"])
		DirAccess.make_dir_recursive_absolute(_record_dir)
		_record_log = FileAccess.open(_record_dir.path_join("timings.jsonl"), FileAccess.WRITE)
		if _record_log == null:
			push_error("neural_ss: --nss-record %s: cannot write there (%s)" % [_record_dir,
					error_string(FileAccess.get_open_error())])
			_record_dir = ""
		else:
			runner.record_callback = _on_record


## Stops --nss-record (tests: the rest of the run is plain GPU mode, nothing read back).
func stop_recording() -> void:
	_record_dir = ""
	if runner != null:
		runner.record_callback = Callable()


func _exit_tree() -> void:
	if _effect != null:
		_effect.gpu_runner = null
	if runner != null:
		var r := runner
		RenderingServer.call_on_render_thread(r.free_gpu)


func _on_effect(effect: NeuralSSCaptureEffect) -> void:
	_effect = effect
	_configure_effect()


# GPU mode: the network runs in the capture callback only while NEURAL is shown; frames are read back
# only for listeners that want pixels (frame_captured connections) or recording.
func _configure_effect() -> void:
	if _effect == null:
		return
	var neural := int(viewport.get("mode")) == 2  # NeuralSSViewport.Mode.NEURAL
	_effect.gpu_runner = runner if (neural and runner != null and not _failed and not _skip_network) else null
	_effect.readback = (not _record_dir.is_empty()
			or not (viewport.get_signal_connection_list("frame_captured") as Array).is_empty())


func _process(_delta: float) -> void:
	if not _stop_file.is_empty() and FileAccess.file_exists(_stop_file):
		print("neural_ss: stop file %s found; quitting" % _stop_file)
		_stop_file = ""
		get_tree().quit(0)
	var stats: Dictionary = viewport.get("stats")
	if runner == null:
		stats["runtime"] = "bilinear (no GPU runtime)"
		return
	if not _failed and not runner.error.is_empty() and runner.frames_run == 0 and _effect != null \
			and _effect.gpu_runner != null and runner._failed_gpu:
		_failed = true
		push_warning("neural_ss: BILINEAR fallback: the GPU runtime failed: " + runner.error)
	_configure_effect()
	if _failed:
		stats["runtime"] = "bilinear (GPU runtime failed)"
		return
	if _skip_network:
		_present_capture()
		stats["runtime"] = "GPU %s: network skipped (--nss-gpu-skip-network)" % runner.model_name
		return
	if runner.frames_run > _shown:
		_shown = runner.frames_run
		viewport.call("set_upscaled_texture", runner.get_texture())
	stats["runtime"] = "GPU %s (%d ops)" % [runner.model_name, runner.op_count]
	viewport.call("set_stage_ms", "gpu_record_cpu", runner.last_cpu_ms)
	if runner.profile and runner.kernel_ms.has("total"):
		viewport.call("set_stage_ms", "gpu_network", float(runner.kernel_ms["total"]))


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
	viewport.call("set_upscaled_texture", _skip_tex)


# Rendering thread (texture_get_data_async callback): one upscaled frame, RGBA32F.
func _on_record(data: PackedByteArray, frame_index: int, w: int, h: int) -> void:
	_mutex.lock()
	var path := _record_dir.path_join("neural_%05d.rgba" % frame_index)
	var f := FileAccess.open(path + ".tmp", FileAccess.WRITE)
	if f != null:
		f.store_buffer(data)
		f.close()
		DirAccess.rename_absolute(path + ".tmp", path)
		var stats: Dictionary = viewport.get("stats")
		_record_log.store_line(JSON.stringify({
			"frame": frame_index, "t_ms": Time.get_ticks_usec() / 1000.0, "w": w, "h": h, "format": "rgbaf",
			"capture_ms": float(stats.get("capture_cpu", 0.0)), "transfer_ms": 0.0,
			"inference_ms": float(runner.kernel_ms.get("total", 0.0)), "runtime_ms": runner.last_cpu_ms,
			"present_ms": 0.0, "frame_ms": float(stats.get("frame", 0.0)), "model": runner.model_name,
			"provider": "gpu: " + RenderingServer.get_video_adapter_name(),
		}))
		_record_log.flush()
	_mutex.unlock()
