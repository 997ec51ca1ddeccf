@tool
class_name NeuralSSSettings
extends RefCounted
## The addon's Project Settings (all under [code]neural_ss/[/code]) with their defaults, and the one
## parser of the addon's command-line options (user arguments after [code]--[/code]).
##
## Read settings through [method get_value]: a game exported without the editor plugin ever having
## run still gets the defaults, a command-line option overrides its setting for one run, and a project
## that still has a setting under its old name (before the python/ group) keeps it (one warning).
##
## Settings (Project Settings > neural_ss, "Advanced Settings" not needed):
##   enabled                   off: the node does nothing (plain rendering)
##   scale_factor              --nss-scale=      2 or 4 (a node's own scale_factor wins)
##   model_path                --nss-model=      the model (.onnx; its GPU program .nssgpu.json beside it)
##   runtime                   --nss-runtime=    auto | gpu | python (see NeuralSSViewport.choose_backend)
##   show_stats_overlay                          the fps / ms-per-stage overlay
##   python/command            --nss-runtime-command=  Python with numpy + onnxruntime (empty: python3)
##   python/execution_provider --nss-provider=         cpu, cuda or tensorrt
##   python/port               --nss-runtime-port=     > 0: use a runtime already running there
##   python/budget_ms          --nss-budget-ms=        older results are not shown (bilinear is)
##   python/in_flight          --nss-in-flight=        frames sent ahead of their results (1 or 2)
## The token of a runtime already running (python/port) is a secret and never a Project Setting:
## --nss-runtime-token= or the environment variable NSS_RUNTIME_TOKEN. A runtime the game starts
## itself gets a fresh random token at run time.
## Test and tool options (NeuralSSTestHooks): --nss-record=DIR, --nss-record-f32, --nss-stop-file=PATH,
## --nss-lockstep, --nss-gpu-profile, --nss-gpu-skip-network.

const PREFIX := "neural_ss/"

## name -> [default, Variant.Type, PropertyHint, hint string]
const SETTINGS := {
	"enabled": [true, TYPE_BOOL, PROPERTY_HINT_NONE, ""],
	"scale_factor": [2, TYPE_INT, PROPERTY_HINT_ENUM, "2:2,4:4"],
	# the model ships inside the addon folder: copying addons/neural_ss/ is all a game needs
	"model_path": ["res://addons/neural_ss/models/default_x2.onnx", TYPE_STRING, PROPERTY_HINT_FILE, "*.onnx"],
	# which runtime feeds NEURAL mode: auto = the GPU runtime where the device can run it, else Python;
	# gpu = GPU or bilinear (never a process); python = the ONNX Runtime process
	"runtime": ["auto", TYPE_STRING, PROPERTY_HINT_ENUM, "auto,gpu,python"],
	"show_stats_overlay": [false, TYPE_BOOL, PROPERTY_HINT_NONE, ""],
	# the Python runtime's (bridge/): ONNX Runtime in a helper process
	"python/command": ["", TYPE_STRING, PROPERTY_HINT_NONE, ""],
	"python/execution_provider": ["cpu", TYPE_STRING, PROPERTY_HINT_ENUM, "cpu,cuda,tensorrt"],
	"python/port": [0, TYPE_INT, PROPERTY_HINT_RANGE, "0,65535"],
	"python/budget_ms": [250.0, TYPE_FLOAT, PROPERTY_HINT_RANGE, "1,10000,1,suffix:ms"],
	"python/in_flight": [1, TYPE_INT, PROPERTY_HINT_ENUM, "1:1,2:2"],
}

## setting -> the command-line option that overrides it for one run
const OPTIONS := {
	"scale_factor": "nss-scale",
	"model_path": "nss-model",
	"runtime": "nss-runtime",
	"python/command": "nss-runtime-command",
	"python/execution_provider": "nss-provider",
	"python/port": "nss-runtime-port",
	"python/budget_ms": "nss-budget-ms",
	"python/in_flight": "nss-in-flight",
}

## old flat name -> new name under python/; still read, with one warning
const LEGACY := {
	"runtime_command": "python/command",
	"execution_provider": "python/execution_provider",
	"runtime_port": "python/port",
	"runtime_budget_ms": "python/budget_ms",
	"runtime_in_flight": "python/in_flight",
}
## an old setting that held a secret: read for a runtime already running, with a warning to move it
const LEGACY_TOKEN := "runtime_token"
const TOKEN_OPTION := "nss-runtime-token"
const TOKEN_ENV := "NSS_RUNTIME_TOKEN"

static var _options: Dictionary = {}
static var _options_read: bool = false
static var _warned: Dictionary = {}


## The value of setting `name` (a key of SETTINGS): its command-line option, else the project's value
## (under its old name too), else the default; converted to the setting's type.
static func get_value(name: String) -> Variant:
	var spec: Array = SETTINGS[name]
	var raw: Variant = null
	if OPTIONS.has(name) and options().has(OPTIONS[name]):
		raw = options()[OPTIONS[name]]
	elif ProjectSettings.has_setting(PREFIX + name):
		raw = ProjectSettings.get_setting(PREFIX + name)
	else:
		for old: String in LEGACY:
			if LEGACY[old] == name and ProjectSettings.has_setting(PREFIX + old):
				_warn_once(old, "neural_ss: Project Setting %s%s is now %s%s (read for now; rename it in Project Settings)"
						% [PREFIX, old, PREFIX, name])
				raw = ProjectSettings.get_setting(PREFIX + old)
	if raw == null:
		return spec[0]
	return type_convert(raw, spec[1]) if typeof(raw) != spec[1] else raw


## The token of a runtime already running (neural_ss/python/port): --nss-runtime-token, the environment
## (NSS_RUNTIME_TOKEN), or an old project's neural_ss/runtime_token (one warning: a secret in project.godot).
static func runtime_token() -> String:
	if options().has(TOKEN_OPTION):
		return str(options()[TOKEN_OPTION])
	if not OS.get_environment(TOKEN_ENV).is_empty():
		return OS.get_environment(TOKEN_ENV)
	if ProjectSettings.has_setting(PREFIX + LEGACY_TOKEN):
		_warn_once(LEGACY_TOKEN, ("neural_ss: Project Setting %s%s keeps a secret in project.godot: remove it and "
				+ "pass --%s= or set %s (read for now)") % [PREFIX, LEGACY_TOKEN, TOKEN_OPTION, TOKEN_ENV])
		return str(ProjectSettings.get_setting(PREFIX + LEGACY_TOKEN))
	return ""


## The GPU program beside an exported model: res://m/x.onnx -> res://m/x.nssgpu.json (+ its .nssgpu.bin)
static func gpu_program_path(model_path: String) -> String:
	if model_path.ends_with(".nssgpu.json"):
		return model_path
	var base := model_path.get_basename() if model_path.get_extension() == "onnx" else model_path
	return base + ".nssgpu.json"


## The upscaling factor of the model at `model_path`: its GPU program's "scale", else the "_x<N>" of its
## file name; 0 when neither says.
static func model_scale(model_path: String) -> int:
	var program := gpu_program_path(model_path)
	if FileAccess.file_exists(program):
		var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(program))
		if parsed is Dictionary and (parsed as Dictionary).has("scale"):
			return int((parsed as Dictionary)["scale"])
	var m := RegEx.create_from_string("_x(\\d+)").search(model_path.get_file())
	return int(m.get_string(1)) if m != null else 0


## The addon's options among the user arguments (those starting with --nss-), parsed once.
static func options() -> Dictionary:
	if not _options_read:
		_options_read = true
		var all := user_args()
		for key: String in all:
			if key.begins_with("nss-"):
				_options[key] = all[key]
	return _options


## Adds every setting (with its default and editor hint) that the project does not have yet.
static func register() -> PackedStringArray:
	var added := PackedStringArray()
	for name: String in SETTINGS:
		var spec: Array = SETTINGS[name]
		var key := PREFIX + name
		if not ProjectSettings.has_setting(key):
			ProjectSettings.set_setting(key, spec[0])
			added.append(key)
		ProjectSettings.set_initial_value(key, spec[0])
		ProjectSettings.set_as_basic(key, true)
		ProjectSettings.add_property_info({
			"name": key, "type": spec[1], "hint": spec[2], "hint_string": spec[3],
		})
	return added


## Removes the settings that still hold their default (used when the plugin is disabled).
static func unregister() -> void:
	for name: String in SETTINGS:
		var key := PREFIX + name
		var spec: Array = SETTINGS[name]
		if ProjectSettings.has_setting(key) and ProjectSettings.get_setting(key) == spec[0]:
			ProjectSettings.set_setting(key, null)


## User arguments after "--" as a dictionary: "--key value" and "--key=value" -> key: value,
## a bare "--flag" -> flag: "1".
static func user_args() -> Dictionary:
	var out := {}
	var a := OS.get_cmdline_user_args()
	var i := 0
	while i < a.size():
		if a[i].begins_with("--"):
			var kv := a[i].substr(2).split("=", true, 1)
			if kv.size() > 1:
				out[kv[0]] = kv[1]
			elif i + 1 < a.size() and not a[i + 1].begins_with("--"):
				out[kv[0]] = a[i + 1]
				i += 1
			else:
				out[kv[0]] = "1"
		i += 1
	return out


static func _warn_once(key: String, msg: String) -> void:
	if _warned.has(key):
		return
	_warned[key] = true
	push_warning(msg)
