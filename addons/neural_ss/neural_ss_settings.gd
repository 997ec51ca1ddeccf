class_name NeuralSSSettings
extends RefCounted
## The addon's Project Settings (all under [code]neural_ss/[/code]) with their defaults.
##
## Read them through [method get_value]: a game exported without the editor plugin ever having
## run still gets the defaults.

const PREFIX := "neural_ss/"

## name -> [default, Variant.Type, PropertyHint, hint string]
const SETTINGS := {
	"enabled": [true, TYPE_BOOL, PROPERTY_HINT_NONE, ""],
	"scale_factor": [2, TYPE_INT, PROPERTY_HINT_ENUM, "2:2,4:4"],
	# the model ships inside the addon folder: copying addons/neural_ss/ is all a game needs
	"model_path": ["res://addons/neural_ss/models/default_x2.onnx", TYPE_STRING, PROPERTY_HINT_FILE, "*.onnx"],
	# which runtime feeds NEURAL mode (NeuralSSGpuBackend.choose): auto = the GPU runtime where the device
	# can run it, else Python; gpu = GPU or bilinear (never a process); python = the ONNX Runtime process
	"runtime": ["auto", TYPE_STRING, PROPERTY_HINT_ENUM, "auto,gpu,python"],
	"runtime_command": ["", TYPE_STRING, PROPERTY_HINT_NONE, ""],
	"execution_provider": ["cpu", TYPE_STRING, PROPERTY_HINT_ENUM, "cpu,cuda,tensorrt"],
	"show_stats_overlay": [false, TYPE_BOOL, PROPERTY_HINT_NONE, ""],
	# the runtime bridge's (bridge/neural_ss_bridge.gd)
	"runtime_port": [0, TYPE_INT, PROPERTY_HINT_RANGE, "0,65535"],
	"runtime_token": ["", TYPE_STRING, PROPERTY_HINT_NONE, ""],
	"runtime_budget_ms": [250.0, TYPE_FLOAT, PROPERTY_HINT_RANGE, "1,10000,1,suffix:ms"],
	"runtime_in_flight": [1, TYPE_INT, PROPERTY_HINT_ENUM, "1:1,2:2"],
}


static func get_value(name: String) -> Variant:
	var spec: Array = SETTINGS[name]
	return ProjectSettings.get_setting(PREFIX + name, spec[0])


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
