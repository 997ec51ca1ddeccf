class_name NeuralSSRuntimeProcess
extends RefCounted
## Starts and watches the Python runtime process (python -m nss_runtime.server) for
## NeuralSSRuntimeClient: finds the Python, checks the model, gives the process a fresh random token
## (in the environment, not on the command line), waits for the port it reports in its ready file,
## and when it dies during start-up asks the same Python which import fails, so the one warning can
## say what to install. It never blocks the game: the client polls it once per frame.

const TOKEN_ENV := NeuralSSSettings.TOKEN_ENV
## Run with the runtime's Python when the runtime died during start-up: which of its imports fail.
const PROBE := "import json, os, sys\nr = {'python': sys.version.split()[0]}\nfor m in ('numpy', 'onnxruntime'):\n" \
		+ "    try:\n        __import__(m)\n        r[m] = ''\n    except Exception as e:\n" \
		+ "        r[m] = '%s: %s' % (type(e).__name__, e)\nwith open(sys.argv[1] + '.tmp', 'w') as f:\n" \
		+ "    json.dump(r, f)\nos.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
const FIX_HINT := "install them with `%s -m pip install numpy onnxruntime` (onnxruntime-gpu for CUDA), or set " \
		+ "neural_ss/python/command to a Python that has them"

## The process id (-1: none).
var pid: int = -1
## The Python started and its arguments (for the "started runtime" line).
var exe: String = ""
var launch_args: PackedStringArray = PackedStringArray()
## The token the process was given.
var token: String = ""
## True once the start-up failure was diagnosed (the probe runs once per client).
var diagnosed: bool = false
var _ready_file: String = ""
var _probe_file: String = ""
var _probe_pid: int = -1


## Starts `command` (empty: python3) -m nss_runtime.server for `model_path` with `providers`.
## Returns "" or why it could not start (one line).
func launch(command: String, model_path: String, providers: String, runtime_dir: String) -> String:
	kill()
	var default_python := "python" if OS.get_name() == "Windows" else "python3"
	var argv := (command if not command.strip_edges().is_empty() else default_python).strip_edges().split(" ", false)
	exe = argv[0]
	var args := argv.slice(1)
	launch_args = args.duplicate()
	if find_executable(exe).is_empty():
		var where := ("'%s' does not exist" % exe) if exe.contains("/") or exe.contains("\\") \
				else ("'%s' is not on PATH" % exe)
		return ("no Python to run the runtime: %s; install Python 3 with numpy + onnxruntime "
				+ "(`python3 -m pip install numpy onnxruntime`) or set neural_ss/python/command to such a Python") % where
	var model := global_path(model_path)
	if model.is_empty() or (model != "identity" and not FileAccess.file_exists(model)):
		return ("model file not found: '%s' (neural_ss/model_path or --nss-model; the addon's default is "
				% model_path + "res://addons/neural_ss/models/default_x2.onnx)")
	token = Crypto.new().generate_random_bytes(16).hex_encode()
	# the token travels in the environment, not on the command line other users can read
	OS.set_environment(TOKEN_ENV, token)
	var sep := ";" if OS.get_name() == "Windows" else ":"
	var pypath := OS.get_environment("PYTHONPATH")
	if not pypath.split(sep).has(runtime_dir):
		OS.set_environment("PYTHONPATH", runtime_dir + (sep + pypath if not pypath.is_empty() else ""))
	_ready_file = OS.get_user_data_dir().path_join("nss_runtime_%d.json" % OS.get_process_id())
	if FileAccess.file_exists(_ready_file):
		DirAccess.remove_absolute(_ready_file)
	args.append_array(PackedStringArray(["-m", "nss_runtime.server", "--model", model, "--port", "0",
			"--ready-file", _ready_file, "--parent-pid", str(OS.get_process_id()), "--providers", providers]))
	pid = OS.create_process(exe, args)
	launch_args = args
	if pid <= 0:
		return "could not start the runtime '%s' (set neural_ss/python/command to a Python with numpy + onnxruntime)" % exe
	return ""


## True while the process runs.
func running() -> bool:
	return pid > 0 and OS.is_process_running(pid)


## The port the running process reported (0: not yet).
func reported_port() -> int:
	if not running() or not FileAccess.file_exists(_ready_file):
		return 0
	var data: Variant = JSON.parse_string(FileAccess.get_file_as_string(_ready_file))
	if data is Dictionary and (data as Dictionary).has("port"):
		return int(data["port"])
	return 0


## Ends the process (if any).
func kill() -> void:
	if running():
		OS.kill(pid)
	pid = -1


## " (the runtime process N has exited)" when it has, else "".
func exit_note() -> String:
	if pid > 0 and not OS.is_process_running(pid):
		return " (the runtime process %d has exited)" % pid
	return ""


## The runtime died before reporting its port: ask the same Python which import fails (once, without
## blocking the game). False when the check could not start.
func start_probe() -> bool:
	diagnosed = true
	_probe_file = OS.get_user_data_dir().path_join("nss_runtime_probe_%d.json" % OS.get_process_id())
	if FileAccess.file_exists(_probe_file):
		DirAccess.remove_absolute(_probe_file)
	var args := PackedStringArray()
	for a: String in launch_args:
		if a == "-m":
			break
		args.append(a)
	args.append_array(PackedStringArray(["-c", PROBE, _probe_file]))
	_probe_pid = OS.create_process(exe, args)
	return _probe_pid > 0


## The probe's verdict (one line) once it is there, "" while it runs. `waited_ms`: since it started.
func probe_verdict(waited_ms: float) -> String:
	if FileAccess.file_exists(_probe_file):
		var data: Variant = JSON.parse_string(FileAccess.get_file_as_string(_probe_file))
		DirAccess.remove_absolute(_probe_file)
		var missing := PackedStringArray()
		if data is Dictionary:
			for m: String in ["numpy", "onnxruntime"]:
				if not str((data as Dictionary).get(m, "")).is_empty():
					missing.append("%s (%s)" % [m, (data as Dictionary)[m]])
		if missing.is_empty():
			return "the runtime exited during start-up although '%s' has numpy and onnxruntime: see its output above" % exe
		return ("'%s' (Python %s) cannot import %s; " + FIX_HINT) % [exe,
				str((data as Dictionary).get("python", "?")), ", ".join(missing), exe]
	if not OS.is_process_running(_probe_pid) and waited_ms > 500.0 or waited_ms > 30000.0:
		return ("the runtime exited during start-up and '%s' could not run a Python check: is it Python 3? " % exe
				+ "Set neural_ss/python/command to a Python 3 with numpy + onnxruntime")
	return ""


## The full path of [param exe] (as given when it has a directory part, else found on PATH); empty when
## there is no such file.
static func find_executable(name: String) -> String:
	if name.is_empty():
		return ""
	var windows := OS.get_name() == "Windows"
	if name.contains("/") or name.contains("\\") or name.is_absolute_path():
		return name if FileAccess.file_exists(name) or (windows and FileAccess.file_exists(name + ".exe")) else ""
	for dir: String in OS.get_environment("PATH").split(";" if windows else ":", false):
		for n: String in ([name, name + ".exe"] if windows else [name]):
			var p := dir.path_join(n)
			if FileAccess.file_exists(p):
				return p
	return ""


static func global_path(p: String) -> String:
	if p.begins_with("res://") or p.begins_with("user://"):
		return ProjectSettings.globalize_path(p)
	return p
