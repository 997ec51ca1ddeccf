@tool
extends EditorPlugin
## Registers the neural_ss/ Project Settings and the NeuralSSViewport node.

const ICON := "res://addons/neural_ss/icons/neural_ss_viewport.svg"


func _enter_tree() -> void:
	var added := NeuralSSSettings.register()
	# load(), not preload(): on a project's first scan the plugin starts before the SVG is imported
	var icon: Texture2D = load(ICON) if ResourceLoader.exists(ICON) else null
	add_custom_type("NeuralSSViewport", "Node", preload("neural_ss_viewport.gd"), icon)
	print("neural_ss: plugin enabled; settings: %s (new: %d)" % [
			", ".join(PackedStringArray(NeuralSSSettings.SETTINGS.keys())), added.size()])


func _exit_tree() -> void:
	remove_custom_type("NeuralSSViewport")


# Only when the user disables the plugin (not on every editor exit).
func _disable_plugin() -> void:
	NeuralSSSettings.unregister()
