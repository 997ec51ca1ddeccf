@tool
extends EditorPlugin
## Registers the neural_ss/ Project Settings and the export plugin that puts the model's GPU program
## into exported games. The node itself (NeuralSSViewport: class_name + @icon) is listed in Add Node by
## Godot without any registration here.

var _export: EditorExportPlugin


func _enter_tree() -> void:
	# defaults are not written to project.godot (Godot saves only changed values); no secret is a setting
	var added := NeuralSSSettings.register()
	_export = preload("neural_ss_export_plugin.gd").new()
	add_export_plugin(_export)
	print("neural_ss: plugin enabled; settings: %s (new: %d)" % [
			", ".join(PackedStringArray(NeuralSSSettings.SETTINGS.keys())), added.size()])


func _exit_tree() -> void:
	if _export != null:
		remove_export_plugin(_export)
		_export = null


# Only when the user disables the plugin (not on every editor exit).
func _disable_plugin() -> void:
	NeuralSSSettings.unregister()
