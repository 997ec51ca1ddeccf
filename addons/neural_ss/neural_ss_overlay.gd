class_name NeuralSSOverlay
extends CanvasLayer
## Top-left text: fps, mode, low-res size and milliseconds per stage (a Dictionary name -> ms,
## to which the backend adds its own stages).

var _label: Label


func _init() -> void:
	layer = 127
	_label = Label.new()
	_label.position = Vector2(8, 8)
	_label.add_theme_color_override("font_color", Color.WHITE)
	_label.add_theme_color_override("font_outline_color", Color.BLACK)
	_label.add_theme_constant_override("outline_size", 4)
	_label.add_theme_font_size_override("font_size", 14)
	add_child(_label)


func show_stats(fps: float, mode_label: String, low_res: Vector2i, stages: Dictionary) -> void:
	var lines := PackedStringArray()
	lines.append("%.1f fps   mode: %s" % [fps, mode_label])
	if low_res != Vector2i.ZERO:
		lines.append("low-res %dx%d" % [low_res.x, low_res.y])
	var names: Array = stages.keys()
	names.sort()
	for n: String in names:
		var v: Variant = stages[n]
		lines.append("%s: %s" % [n, v] if v is String else "%s: %.2f ms" % [n, float(v)])
	_label.text = "\n".join(lines)


func get_text() -> String:
	return _label.text
