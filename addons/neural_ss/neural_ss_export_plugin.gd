@tool
extends EditorExportPlugin
## Puts what the GPU runtime reads with FileAccess into every export: the GPU program of the model
## (neural_ss/model_path -> <model>.nssgpu.json + the weights file it names) and the addon's compute
## shader sources (addons/neural_ss/gpu/*.glsl). Godot exports resources by itself; these are plain
## files, which an export would otherwise leave out (the game would fall back to bilinear). No preset
## needs editing. The .onnx model is not added: only the Python runtime reads it, and that outside
## process cannot read a .pck.

const GPU_DIR := "res://addons/neural_ss/gpu"


func _get_name() -> String:
	return "NeuralSS"


func _export_begin(_features: PackedStringArray, _is_debug: bool, _path: String, _flags: int) -> void:
	var model := str(NeuralSSSettings.get_value("model_path"))
	var program := NeuralSSSettings.gpu_program_path(model)
	for file: String in files_to_add(program):
		if file.get_extension() == "json" and ResourceLoader.exists(file):
			continue  # a JSON resource: Godot exports it by itself (a .glsl is added raw even when it is imported)
		var bytes := FileAccess.get_file_as_bytes(file)
		if bytes.is_empty():
			push_warning("neural_ss: export: %s is missing or empty: the exported game will show bilinear" % file)
			continue
		add_file(file, bytes, false)


## The plain files the GPU runtime of `program` (a .nssgpu.json) needs in an export.
static func files_to_add(program: String) -> PackedStringArray:
	var out := PackedStringArray()
	if FileAccess.file_exists(program):
		out.append(program)
		var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(program))
		if parsed is Dictionary and (parsed as Dictionary).get("weights") is Dictionary:
			out.append(program.get_base_dir().path_join(str((parsed as Dictionary)["weights"].get("file", ""))))
	else:
		push_warning("neural_ss: export: no GPU program %s (neural_ss/model_path): the exported game will show "
				% program + "bilinear")
	for f: String in DirAccess.get_files_at(GPU_DIR):
		if f.get_extension() == "glsl":
			out.append(GPU_DIR.path_join(f))
	return out
