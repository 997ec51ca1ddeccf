class_name NeuralSSFrameWriter
extends RefCounted
## Writes captured frames as raw float buffers + JSON, which `python -m nss_train.sources.godot_raw DIR`
## turns into the frame contract's EXR sequence (meta.json + frame_00000.exr ...).
##
## Layout under DIR/raw/ (every file written to a temp name, then renamed; the .json is written
## last, so a frame with a .json is complete):
##   capture.json                session info (scale, scene, fps, engine version)
##   frame_00000.rgbd.f32        RGBA32F, row-major, top row first (colour rgb, view depth)
##   frame_00000.motion.f32      RG32F motion in low-res pixels
##   frame_00000.json            index, size, jitter, cut, intrinsics, time
##   frame_00000.target.f32      only for paired captures (addons/neural_ss/capture/): the
##                               supersampled high-res render of the same instant, RGBA32F
##                               (colour rgb before tone mapping, view depth); its size is
##                               "target_size" in the .json, box-downsampled by the converter

var raw_dir: String
var written: int = 0
var last_error: String = ""


func _init(dir: String) -> void:
	raw_dir = dir.path_join("raw")


func open(session: Dictionary) -> bool:
	var err := DirAccess.make_dir_recursive_absolute(raw_dir)
	if err != OK:
		last_error = "cannot create %s (%s)" % [raw_dir, error_string(err)]
		return false
	var info := session.duplicate()
	info["engine"] = Engine.get_version_info()["string"]
	info["format"] = "nss_godot_raw/1"
	return _write_text(raw_dir.path_join("capture.json"), JSON.stringify(info, " "))


## Writes frame number `seq` (0-based position in the sequence), with the high-res `target`
## render of the same instant when given. Returns false on an I/O error.
func write(frame: NeuralSSFrame, seq: int, target: NeuralSSFrame = null) -> bool:
	if not frame.bytes_ok():
		last_error = "frame %d: buffer sizes do not match %s" % [frame.index, frame.size]
		return false
	if target != null and not target.bytes_ok():
		last_error = "frame %d: target buffer sizes do not match %s" % [frame.index, target.size]
		return false
	var base := raw_dir.path_join("frame_%05d" % seq)
	if not _write_bytes(base + ".rgbd.f32", frame.colour_depth):
		return false
	if not _write_bytes(base + ".motion.f32", frame.motion):
		return false
	if target != null and not _write_bytes(base + ".target.f32", target.colour_depth):
		return false
	var meta := {
		"seq": seq, "index": frame.index, "size": [frame.size.x, frame.size.y],
		"jitter": [frame.jitter.x, frame.jitter.y], "cut": frame.camera_cut,
		"intrinsics": frame.intrinsics, "time": frame.time, "capture_ms": frame.capture_ms,
	}
	if target != null:
		meta["target_size"] = [target.size.x, target.size.y]
		meta["target_index"] = target.index
	if not _write_text(base + ".json", JSON.stringify(meta, " ")):
		return false
	written += 1
	return true


func _write_bytes(path: String, data: PackedByteArray) -> bool:
	var tmp := path + ".tmp"
	var f := FileAccess.open(tmp, FileAccess.WRITE)
	if f == null:
		last_error = "cannot write %s (%s)" % [tmp, error_string(FileAccess.get_open_error())]
		return false
	f.store_buffer(data)
	f.close()
	var err := DirAccess.rename_absolute(tmp, path)
	if err != OK:
		last_error = "cannot rename %s (%s)" % [tmp, error_string(err)]
		return false
	return true


func _write_text(path: String, text: String) -> bool:
	return _write_bytes(path, text.to_utf8_buffer())
