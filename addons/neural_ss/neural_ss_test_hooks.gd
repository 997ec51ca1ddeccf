class_name NeuralSSTestHooks
extends Node
## The addon's test and tool hooks (user arguments after [code]--[/code]), for both runtimes, in one
## place. NeuralSSViewport adds this node only when one of them is given; a game never needs them.
##   --nss-record=DIR    write every upscaled frame (DIR/neural_00000.rgba, raw RGBA32F or RGBA16F as
##                       timings.jsonl says) and one JSON line of timings per frame (DIR/timings.jsonl);
##                       the Python runtime also writes one line per game frame (DIR/presented.log)
##   --nss-record-f32    the Python runtime sends RGBA32F results (exact comparisons)
##   --nss-stop-file=PATH  quit the game (exit 0) when PATH appears
##   --nss-lockstep      the Python runtime upscales every frame (the game waits for each result)
##   --nss-gpu-profile   the GPU runtime times each kernel (RenderingDevice timestamps, stats["gpu_*"])
##   --nss-gpu-skip-network  the GPU runtime captures and presents but never runs the network (the
##                       captured low-res colour is shown, bilinear): the network's share of the frame
##                       cost is the difference (benchmarks/bench_frame_cost.py, method neural_skip)
## Recording is written from the rendering thread (GPU runtime) or the main thread (Python runtime):
## every file goes to a temporary name first and is renamed, so a frame file that exists is complete.

const OPTIONS := ["nss-record", "nss-record-f32", "nss-stop-file", "nss-lockstep", "nss-gpu-profile",
		"nss-gpu-skip-network"]

## Frames are recorded while this is true (see [method stop_recording]).
var recording: bool = false
## --nss-lockstep / --nss-gpu-profile / --nss-gpu-skip-network / --nss-record-f32 were given.
var lockstep: bool = false
var gpu_profile: bool = false
var gpu_skip_network: bool = false
var record_f32: bool = false

var _record_dir: String = ""
var _log: FileAccess
var _presented: FileAccess
var _stop_file: String = ""
var _mutex := Mutex.new()


## True when any hook is on the command line.
static func wanted() -> bool:
	for o: String in OPTIONS:
		if NeuralSSSettings.options().has(o):
			return true
	return false


func _init() -> void:
	name = "NeuralSSTestHooks"
	var opts := NeuralSSSettings.options()
	lockstep = opts.has("nss-lockstep")
	gpu_profile = opts.has("nss-gpu-profile")
	gpu_skip_network = opts.has("nss-gpu-skip-network")
	record_f32 = opts.has("nss-record-f32")
	_stop_file = str(opts.get("nss-stop-file", ""))
	if opts.has("nss-record"):
		_open(str(opts["nss-record"]))


func _open(dir: String) -> void:
	DirAccess.make_dir_recursive_absolute(dir)
	_log = FileAccess.open(dir.path_join("timings.jsonl"), FileAccess.WRITE)
	_presented = FileAccess.open(dir.path_join("presented.log"), FileAccess.WRITE)
	if _log == null or _presented == null:
		push_error("neural_ss: --nss-record %s: cannot write there (%s)" % [dir,
				error_string(FileAccess.get_open_error())])
		_log = null
		_presented = null
		return
	_record_dir = dir
	recording = true


## Stops --nss-record (tests: the rest of the run is plain, nothing read back).
func stop_recording() -> void:
	_mutex.lock()
	recording = false
	_mutex.unlock()


## Writes one upscaled frame (`data`: w x h raw pixels, `format` "rgbaf" or "rgbah") and its line of
## timings (merged into the line after frame, t_ms, w, h, format). Any thread.
func record_frame(data: PackedByteArray, frame_index: int, w: int, h: int, format: String,
		timings: Dictionary) -> void:
	_mutex.lock()
	if recording:
		var path := _record_dir.path_join("neural_%05d.rgba" % frame_index)
		var f := FileAccess.open(path + ".tmp", FileAccess.WRITE)
		if f == null:
			push_error("neural_ss: --nss-record: cannot write %s.tmp (%s)" % [path,
					error_string(FileAccess.get_open_error())])
			recording = false
		else:
			f.store_buffer(data)
			f.close()
			DirAccess.rename_absolute(path + ".tmp", path)
			var line := {"frame": frame_index, "t_ms": Time.get_ticks_usec() / 1000.0, "w": w, "h": h,
					"format": format}
			line.merge(timings)
			_log.store_line(JSON.stringify(line))
			_log.flush()
	_mutex.unlock()


## One line per game frame into presented.log (the Python runtime: what it showed and what it cost).
func record_presented(line: String) -> void:
	if _presented != null and recording:
		_presented.store_line(line)
		_presented.flush()


func _process(_delta: float) -> void:
	if not _stop_file.is_empty() and FileAccess.file_exists(_stop_file):
		print("neural_ss: stop file %s found; quitting" % _stop_file)
		_stop_file = ""
		get_tree().quit(0)
