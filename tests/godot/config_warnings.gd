extends SceneTree
## tests/test_editor_integration.py: NeuralSSViewport's configuration warnings (what the editor shows on
## the node) in each situation, the settings' old names, and what the settings save into project.godot.
## Prints one line: CONFIG_WARNINGS {json: case -> the warnings (or values)}.


func _initialize() -> void:
	var out := {}
	# a 3D scene (Node3D root, camera): no warning with the defaults (scale 2, the shipped x2 model)
	out["3d"] = _warnings(Node3D.new(), true)
	# a 2D scene: Node2D root, and a UI scene: Control root
	out["2d"] = _warnings(Node2D.new(), false)
	out["ui"] = _warnings(Control.new(), false)
	# a UI root with a 3D world below it (SubViewport): a 3D scene
	var ui := Control.new()
	var sv := SubViewport.new()
	ui.add_child(sv)
	var n3 := Node3D.new()
	sv.add_child(n3)
	n3.owner = ui
	sv.owner = ui
	out["ui_with_3d"] = _warnings(ui, false)
	# the Compatibility renderer
	ProjectSettings.set_setting("rendering/renderer/rendering_method", "gl_compatibility")
	out["compatibility"] = _warnings(Node3D.new(), true)
	ProjectSettings.set_setting("rendering/renderer/rendering_method", "forward_plus")
	# a scale the model does not have: the node's own scale_factor, then the project's
	out["scale_4_node"] = _warnings(Node3D.new(), true, 4)
	ProjectSettings.set_setting("neural_ss/scale_factor", 4)
	out["scale_4_project"] = _warnings(Node3D.new(), true)
	ProjectSettings.set_setting("neural_ss/scale_factor", 2)
	ProjectSettings.set_setting("neural_ss/model_path", "res://no_such_model_x2.onnx")
	out["no_model"] = _warnings(Node3D.new(), true)
	ProjectSettings.set_setting("neural_ss/model_path", null)
	# old setting names (before the python/ group) are still read, with one warning each
	ProjectSettings.set_setting("neural_ss/runtime_port", 4711)
	ProjectSettings.set_setting("neural_ss/runtime_token", "old-secret")
	out["legacy_port"] = [NeuralSSSettings.get_value("python/port"), NeuralSSSettings.get_value("python/port")]
	out["legacy_token"] = NeuralSSSettings.runtime_token()
	ProjectSettings.set_setting("neural_ss/python/port", 4712)  # the new name wins
	out["new_port"] = NeuralSSSettings.get_value("python/port")
	ProjectSettings.set_setting("neural_ss/runtime_port", null)
	ProjectSettings.set_setting("neural_ss/runtime_token", null)
	ProjectSettings.set_setting("neural_ss/python/port", null)
	# what a project saves: the registered settings (as the plugin does), no token
	var added := NeuralSSSettings.register()
	ProjectSettings.set_setting("neural_ss/python/port", 47800)  # a changed value is saved, under python/
	var saved := OS.get_cmdline_user_args()[0] if not OS.get_cmdline_user_args().is_empty() else ""
	if not saved.is_empty():
		out["save"] = error_string(ProjectSettings.save_custom(saved))
	out["registered"] = added
	print("CONFIG_WARNINGS " + JSON.stringify(out))
	quit(0)


func _warnings(scene_root: Node, with_camera: bool, node_scale: int = 0) -> PackedStringArray:
	if with_camera:
		var cam := Camera3D.new()
		scene_root.add_child(cam)
		cam.owner = scene_root
	var ns := NeuralSSViewport.new()
	ns.scale_factor = node_scale
	scene_root.add_child(ns)
	ns.owner = scene_root
	var w := ns._get_configuration_warnings()
	scene_root.free()
	return w
