@tool
extends EditorPlugin
## Registers the neural_ss/ Project Settings and the NeuralSSViewport node.


func _enter_tree() -> void:
	var added := NeuralSSSettings.register()
	add_custom_type("NeuralSSViewport", "Node", preload("neural_ss_viewport.gd"), null)
	print("neural_ss: plugin enabled; settings: %s (new: %d)" % [
			", ".join(PackedStringArray(NeuralSSSettings.SETTINGS.keys())), added.size()])


func _exit_tree() -> void:
	remove_custom_type("NeuralSSViewport")


# Only when the user disables the plugin (not on every editor exit).
func _disable_plugin() -> void:
	NeuralSSSettings.unregister()
