@tool
@icon("res://addons/neural_ss/icons/neural_ss_viewport.svg")
class_name NeuralSSViewport
extends Node
## Add this node to any 3D scene. It renders the scene's 3D world (from the viewport's current
## Camera3D) at output_size / scale in its own SubViewport, captures low-res colour, depth and
## motion every frame ([signal frame_captured]) and presents the native render, a bilinear upscale
## or an upscaled image given to it ([method set_upscaled_image], [method set_upscaled_texture]).
##
## Output size = the pixels the viewport's 3D fills natively ([method get_output_size]: the window's
## real pixels under the disabled and canvas_items stretch modes, whatever the aspect setting; the
## base size under the viewport stretch mode). The low-res render uses the texture mip bias Godot
## itself uses at that scale (log2(low / output), -1 at 2x), so BILINEAR equals Godot's own bilinear
## scaling. NEURAL images are LINEAR HDR: they go through Godot's own post-processing at full
## resolution (NeuralSSPresentEffect), so the Environment's tonemapper, exposure, white,
## adjustments and glow apply to them as to a native frame.
##
## Faults keep the game running: no 3D camera (2D scenes), no RenderingDevice (Compatibility
## renderer, --headless) -> a one-time warning and plain rendering / plain scaling. In the editor the
## node does nothing but show configuration warnings for these cases (and a scale with no model).

## Emitted on the main thread for every captured low-res frame (contract units, see NeuralSSFrame).
signal frame_captured(frame: NeuralSSFrame)
signal mode_changed(mode: Mode)
## Emitted when the capture effect is created (before it renders; the backend is attached to it first).
signal capture_effect_created(effect: NeuralSSCaptureEffect)

enum Mode { NATIVE, BILINEAR, NEURAL }

const MODE_NAMES := ["native", "bilinear", "neural"]
const RUNTIMES := ["auto", "gpu", "python"]
## Environment properties the present pass's sky-free copy does not take from the game's (_present_environment)
const _SKY_PROPERTIES := ["background_mode", "sky", "sky_custom_fov", "sky_rotation", "resource_local_to_scene",
		"resource_path", "resource_name", "resource_scene_unique_id", "script"]

## What is shown. NEURAL (the default) falls back to BILINEAR while no fresh upscaled frame is there
## (runtime starting, missing, slow or crashed); the node and its backend print one line saying which is live and why.
@export var mode: Mode = Mode.NEURAL:
	set = set_mode
## Upscaling factor per axis; 0 = the project setting neural_ss/scale_factor.
@export_range(0, 4) var scale_factor: int = 0:
	set(v):
		scale_factor = v
		update_configuration_warnings()
## Capture buffers every frame (only when a RenderingDevice exists).
@export var capture_enabled: bool = true
## Render the low-res frame with TAA (jittered); the jitter is then recorded per frame.
@export var use_taa: bool = false
## Raw sub-pixel jitter for temporal models: every low-res frame is rendered with the camera's
## projection shifted off-axis by a Halton(2,3) offset (exact, no TAA resolve: the network sees
## the raw jittered samples). The offset is recorded per frame (NeuralSSFrame.jitter: the sample
## of pixel (i, j) lies at (i + 0.5 + jx, j + 0.5 + jy)) and motion stays jitter-free. Perspective
## and frustum cameras; ignored while use_taa is on (TAA jitters by itself) and in NATIVE mode.
@export var jitter: bool = false
## Set by the runtime (GPU backend or bridge) when the loaded model was trained on jittered frames:
## jitters like [member jitter], but only in NEURAL mode (a jittered frame shown by BILINEAR would shake).
var jitter_for_model: bool = false
## Length of the Halton(2,3) jitter sequence (frame_index modulo this).
@export_range(1, 64) var jitter_samples: int = 8
## Automatic camera cut when the camera jumps further than this in one frame (scene units)...
@export var cut_distance: float = 4.0
## ...or turns more than this (degrees).
@export var cut_angle_deg: float = 45.0
## A NEURAL image older than this many frames AND older than neural_max_age_ms is stale: show
## BILINEAR instead (both, so a fast game with a slower model does not flicker between the two).
@export var neural_max_age_frames: int = 3
## See neural_max_age_frames (wall-clock milliseconds).
@export var neural_max_age_ms: float = 100.0
## Show the fps / ms-per-stage overlay (-1 = project setting neural_ss/show_stats_overlay).
@export_range(-1, 1) var show_stats: int = -1

## Stage name -> milliseconds, shown by the overlay. The bridge adds its own stages.
var stats: Dictionary = {}
## What feeds NEURAL mode (a child; see [method choose_backend]), null while off.
var backend: NeuralSSBackend
## The test / tool hooks (--nss-record, --nss-stop-file, ...; a child), null when none was given.
var hooks: NeuralSSTestHooks
## Frames rendered since start (the index of the next captured frame).
var frame_index: int = 0
## Scene time given to captured frames; set by the game for deterministic captures (else wall time).
var scene_time: float = -1.0
## True while the low-res SubViewport is in use.
var active: bool = false
## Jitter of the frame rendered now, in low-res pixels (zero when off).
var current_jitter := Vector2.ZERO

var _source_vp: Viewport
var _sub: SubViewport
var _cam: Camera3D
var _effect: NeuralSSCaptureEffect
var _layer: CanvasLayer
var _rect: TextureRect
var _overlay: NeuralSSOverlay
var _present_vp: SubViewport  # full-resolution empty-world render: Godot's post-processing on NEURAL
var _present_cam: Camera3D
var _present_effect: NeuralSSPresentEffect
var _present_attr_src: CameraAttributes
var _present_attr: CameraAttributes
var _present_envs: Dictionary = {}  # source Environment -> its sky-free copy for the present pass
var _neural_tex: Texture2D
var _neural_frame: int = -1000000
var _neural_usec: int = -1000000000
var _prev_xform := Transform3D()
var _prev_proj := Vector4.ZERO
var _has_prev := false
var _prev_jitter := Vector2.ZERO
var _cut_requested := true
var _warned := {}
var _has_rd := false
var _low_size := Vector2i.ZERO
var _out_size := Vector2i.ZERO
var _last_frame_usec: int = 0
var _fps_smooth: float = 0.0


func _ready() -> void:
	if Engine.is_editor_hint():
		set_process(false)  # @tool for the configuration warnings only: nothing runs in the editor
		return
	_has_rd = RenderingServer.get_rendering_device() != null
	if not NeuralSSSettings.get_value("enabled"):
		_warn("disabled", "neural_ss: disabled in Project Settings (neural_ss/enabled); plain rendering")
		set_process(false)
		return
	_source_vp = get_viewport()
	_source_vp.size_changed.connect(_on_size_changed)
	if not _has_rd:
		_warn("no_rd", "neural_ss: BILINEAR fallback: no RenderingDevice (Compatibility renderer or --headless): "
				+ "capture is off, plain bilinear scaling only")
	_overlay = NeuralSSOverlay.new()
	_overlay.visible = _stats_wanted()
	add_child(_overlay)
	if NeuralSSTestHooks.wanted():
		hooks = NeuralSSTestHooks.new()
		add_child(hooks)
	backend = choose_backend()
	backend.viewport = self
	backend.hooks = hooks
	add_child(backend)
	# The low-res camera copies the game camera as late as the engine allows: after every _process,
	# deferred call, tween and physics step of the frame, just before drawing (see _on_frame_pre_draw).
	RenderingServer.frame_pre_draw.connect(_on_frame_pre_draw)


## Makes the one choice of what feeds NEURAL mode (neural_ss/runtime, or --nss-runtime=):
##   auto    the GPU runtime where the device can run it (RenderingDevice + the model's GPU program),
##           else the Python runtime (ONNX Runtime in a process); the Python runtime also when a
##           runtime process is configured (neural_ss/python/port or neural_ss/python/command)
##   gpu     the GPU runtime, else BILINEAR (never a process)
##   python  the Python runtime (research, CUDA/TensorRT, offline)
## and prints one line saying which path is live and why; the overlay shows it (stats["runtime"]).
func choose_backend() -> NeuralSSBackend:
	var want := str(NeuralSSSettings.get_value("runtime")).to_lower()
	var model := str(NeuralSSSettings.get_value("model_path"))
	if not want in RUNTIMES:
		push_warning("neural_ss: runtime '%s' (neural_ss/runtime or --nss-runtime): expected one of %s; using auto"
				% [want, RUNTIMES])
		want = "auto"
	var configured := int(NeuralSSSettings.get_value("python/port")) > 0 \
			or not str(NeuralSSSettings.get_value("python/command")).is_empty()
	var line := ""
	var python := false
	var runner: NeuralSSGpuRunner = null
	if want == "python":
		python = true
		line = "PYTHON runtime (neural_ss/runtime = python): ONNX Runtime in a runtime process, model %s" % model
	elif want == "auto" and configured:
		python = true
		line = ("PYTHON runtime (neural_ss/runtime = auto and a runtime process is configured: python/port / "
				+ "python/command): ONNX Runtime in a runtime process, model %s") % model
	elif not _has_rd:
		line = ""  # _ready already said it: "BILINEAR fallback: no RenderingDevice ..."
	else:
		var r := NeuralSSGpuBackend.load_runner(model)
		if r.error.is_empty():
			runner = r
			line = ("GPU runtime (neural_ss/runtime = %s, the device has RenderingDevice compute): %s (%s x%d, "
					+ "%d ops) as compute shaders on %s; no process, frames stay on the GPU") % [want, r.model_name,
					r.preset, r.scale, r.op_count, RenderingServer.get_video_adapter_name()]
		elif want == "gpu":
			line = "BILINEAR fallback (neural_ss/runtime = gpu): the GPU runtime cannot run: %s" % r.error
		else:
			python = true
			line = ("PYTHON runtime (neural_ss/runtime = auto; the GPU runtime cannot run this model: %s): "
					+ "ONNX Runtime in a runtime process") % r.error
	if not line.is_empty():
		print("neural_ss: " + line)
	if python:
		return NeuralSSPythonBackend.new()
	return NeuralSSGpuBackend.new(runner, line)


func _exit_tree() -> void:
	if RenderingServer.frame_pre_draw.is_connected(_on_frame_pre_draw):
		RenderingServer.frame_pre_draw.disconnect(_on_frame_pre_draw)
	_deactivate()


func _get_configuration_warnings() -> PackedStringArray:
	var out := PackedStringArray()
	if not is_in_3d_scene():
		out.append("NeuralSSViewport is not in a 3D scene (no Node3D above it or in its scene): it renders the "
				+ "viewport's current Camera3D, so in a 2D scene it stays inactive (plain rendering). Add it to a "
				+ "3D scene.")
	if str(ProjectSettings.get_setting("rendering/renderer/rendering_method", "forward_plus")) == "gl_compatibility":
		out.append("The Compatibility renderer has no RenderingDevice: NeuralSSViewport can neither capture nor "
				+ "run the network and shows plain bilinear scaling. Switch Project Settings > Rendering > "
				+ "Renderer > Rendering Method to forward_plus or mobile.")
	var problem := model_problem()
	if not problem.is_empty():
		out.append(problem)
	return out


## True when the node is under a Node3D or its scene has one (a 3D scene); false in a 2D/UI scene.
func is_in_3d_scene() -> bool:
	var n: Node = get_parent()
	var root: Node = self
	while n != null:
		if n is Node3D:
			return true
		root = n
		n = n.get_parent()
	if owner != null:
		root = owner
	elif is_inside_tree() and Engine.is_editor_hint() and get_tree().edited_scene_root != null:
		root = get_tree().edited_scene_root
	return root is Node3D or not root.find_children("*", "Node3D", true, false).is_empty()


## Why NEURAL cannot show the model at this node's scale (empty when it can): the model file is missing,
## or it upscales by another factor than [method get_scale].
func model_problem() -> String:
	var model := str(NeuralSSSettings.get_value("model_path"))
	var program := NeuralSSSettings.gpu_program_path(model)
	if not FileAccess.file_exists(model) and not FileAccess.file_exists(program):
		return ("neural_ss/model_path '%s': no such file: NEURAL mode shows bilinear. Point it at an exported "
				+ "model (the addon ships res://addons/neural_ss/models/default_x2.onnx).") % model
	var ms := NeuralSSSettings.model_scale(model)
	var s := get_scale()
	if ms > 0 and ms != s:
		return ("Scale %d has no model: %s upscales x%d, so NEURAL mode shows bilinear. Set scale_factor (or "
				+ "neural_ss/scale_factor) to %d, or neural_ss/model_path to a x%d model.") % [s, model.get_file(),
				ms, ms, s]
	return ""


## The scale in use (per axis).
func get_scale() -> int:
	var s := scale_factor if scale_factor > 0 else int(NeuralSSSettings.get_value("scale_factor"))
	return clampi(s, 1, 8)


## Low-res render size (0 while inactive).
func get_low_res_size() -> Vector2i:
	return _low_size if active else Vector2i.ZERO


## The output size: the pixels the viewport's 3D fills natively, i.e. its visible rectangle through
## the 2D stretch transform (canvas_items: the window's real pixels, not the 2D base size; viewport
## stretch mode: the base size Godot renders at; any aspect setting).
func get_output_size() -> Vector2i:
	if _source_vp == null:
		return Vector2i.ZERO
	var vis := _source_vp.get_visible_rect().size
	var st := _source_vp.get_stretch_transform()
	return Vector2i(maxi(1, roundi(vis.x * st.x.length())), maxi(1, roundi(vis.y * st.y.length())))


func set_mode(m: Mode) -> void:
	if m == mode:
		return
	mode = m
	_cut_requested = true  # NATIVE renders at another size: history would be wrong
	mode_changed.emit(mode)


func cycle_mode() -> void:
	set_mode(((mode + 1) % 3) as Mode)


## Tell the capture that history is invalid from the next frame on (scene change, teleport...).
func mark_camera_cut() -> void:
	_cut_requested = true


## Present this LINEAR (pre-tone-mapping) HDR RGB(A) image in NEURAL mode (e.g. the network's output):
## Godot's post-processing (tonemap, exposure, adjustments, glow) is applied to it at output size.
func set_upscaled_image(img: Image) -> void:
	if img == null or img.is_empty():
		return
	var tex := _neural_tex as ImageTexture
	if tex != null and tex.get_size() == Vector2(img.get_size()) and tex.get_format() == img.get_format():
		tex.update(img)
	else:
		_neural_tex = ImageTexture.create_from_image(img)
	_neural_frame = frame_index
	_neural_usec = Time.get_ticks_usec()


## Same as [method set_upscaled_image] for a LINEAR HDR texture already on the GPU (e.g. a Texture2DRD
## holding a GPU runtime's output, RGBA16F/32F): no readback, no upload.
func set_upscaled_texture(tex: Texture2D) -> void:
	_neural_tex = tex
	_neural_frame = frame_index
	_neural_usec = Time.get_ticks_usec()


## True when NEURAL mode currently shows the upscaled image (not the bilinear fallback).
func neural_is_fresh() -> bool:
	if _neural_tex == null:
		return false
	return (frame_index - _neural_frame <= neural_max_age_frames
			or Time.get_ticks_usec() - _neural_usec <= int(neural_max_age_ms * 1000.0))


func set_stage_ms(stage: String, ms: float) -> void:
	stats[stage] = ms


func _stats_wanted() -> bool:
	return show_stats == 1 or (show_stats == -1 and bool(NeuralSSSettings.get_value("show_stats_overlay")))


func _warn(key: String, msg: String) -> void:
	if _warned.has(key):
		return
	_warned[key] = true
	push_warning(msg)


func _on_size_changed() -> void:
	_cut_requested = true


func _activate(src_cam: Camera3D) -> void:
	_sub = SubViewport.new()
	_sub.name = "NeuralSSLowRes"
	_sub.world_3d = _source_vp.find_world_3d()
	_sub.render_target_update_mode = SubViewport.UPDATE_ALWAYS
	_sub.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR  # not FSR: its motion has sentinels
	_sub.scaling_3d_scale = 1.0
	_sub.msaa_3d = Viewport.MSAA_DISABLED
	_sub.screen_space_aa = Viewport.SCREEN_SPACE_AA_DISABLED
	_sub.use_taa = use_taa
	_sub.handle_input_locally = false
	_sub.audio_listener_enable_3d = false
	_cam = Camera3D.new()
	# it is given the game camera's rendered (already interpolated) transform every frame: physics
	# interpolation of its own would blend that with the previous frame's
	_cam.physics_interpolation_mode = Node.PHYSICS_INTERPOLATION_MODE_OFF
	_sub.add_child(_cam)
	_layer = CanvasLayer.new()
	_layer.layer = -100  # behind the game's own UI
	_rect = TextureRect.new()
	_rect.name = "NeuralSSPresent"
	_rect.set_anchors_preset(Control.PRESET_FULL_RECT)
	_rect.expand_mode = TextureRect.EXPAND_IGNORE_SIZE
	_rect.stretch_mode = TextureRect.STRETCH_SCALE
	_rect.mouse_filter = Control.MOUSE_FILTER_IGNORE
	_rect.texture_filter = CanvasItem.TEXTURE_FILTER_LINEAR
	_layer.add_child(_rect)
	add_child(_sub)
	add_child(_layer)
	move_child(_overlay, -1)
	if _has_rd:
		_effect = NeuralSSCaptureEffect.new()
		_effect.on_frame = _on_effect_frame
		if backend != null:
			backend.attach_capture(_effect)
		capture_effect_created.emit(_effect)
		_make_present_viewport()
	if mode != Mode.NEURAL:
		print("neural_ss: %s: the node's mode is set to %s (NEURAL is the default)" % [
				MODE_NAMES[mode].to_upper(), MODE_NAMES[mode]])
	_sync_camera(src_cam)
	_rect.texture = _sub.get_texture()
	_source_vp.disable_3d = true  # the world is rendered once, at low resolution, by _sub
	active = true
	_has_prev = false
	_cut_requested = true


func _deactivate() -> void:
	if not active:
		return
	active = false
	if is_instance_valid(_source_vp):
		_source_vp.disable_3d = false
	for n: Node in [_sub, _layer, _present_vp]:
		if is_instance_valid(n):
			n.queue_free()
	_sub = null
	_layer = null
	_rect = null
	_cam = null
	_effect = null
	_present_vp = null
	_present_cam = null
	_present_effect = null
	_low_size = Vector2i.ZERO
	_out_size = Vector2i.ZERO


# NEURAL presentation: an empty World3D rendered at output size with the game's Environment and camera
# attributes; NeuralSSPresentEffect writes the upscaled linear image into its colour buffer before
# post-processing, so Godot tone-maps, exposes, adjusts and glows it exactly as a native frame.
func _make_present_viewport() -> void:
	_present_vp = SubViewport.new()
	_present_vp.name = "NeuralSSPresent3D"
	_present_vp.world_3d = World3D.new()
	_present_vp.positional_shadow_atlas_size = 0
	_present_vp.render_target_update_mode = SubViewport.UPDATE_DISABLED
	_present_vp.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR
	_present_vp.scaling_3d_scale = 1.0
	_present_vp.msaa_3d = Viewport.MSAA_DISABLED
	_present_vp.use_taa = false  # it would blend the image with a history it has no motion for
	_present_vp.handle_input_locally = false
	_present_vp.audio_listener_enable_3d = false
	_present_cam = Camera3D.new()
	_present_cam.physics_interpolation_mode = Node.PHYSICS_INTERPOLATION_MODE_OFF
	_present_cam.cull_mask = 0  # nothing to draw: the world is empty anyway
	_present_effect = NeuralSSPresentEffect.new()
	var comp := Compositor.new()
	comp.compositor_effects = [_present_effect] as Array[CompositorEffect]
	_present_cam.compositor = comp
	_present_vp.add_child(_present_cam)
	add_child(_present_vp)
	_present_cam.current = true


func _sync_present(src: Camera3D) -> void:
	var sw := _source_vp.find_world_3d()
	var pw := _present_vp.world_3d
	if sw != null:
		var env := _present_environment(sw.environment)
		if pw.environment != env:
			pw.environment = env
		var fallback := _present_environment(sw.fallback_environment)
		if pw.fallback_environment != fallback:
			pw.fallback_environment = fallback
	_present_cam.environment = _present_environment(src.environment)
	# Depth of field would blur the whole image (the present render's depth is empty): left out.
	var attr: CameraAttributes = src.attributes if src.attributes != null else (sw.camera_attributes if sw != null else null)
	if attr != _present_attr_src:
		_present_attr_src = attr
		_present_attr = attr
		var practical := attr as CameraAttributesPractical
		if practical != null and (practical.dof_blur_far_enabled or practical.dof_blur_near_enabled):
			practical = practical.duplicate() as CameraAttributesPractical
			practical.dof_blur_far_enabled = false
			practical.dof_blur_near_enabled = false
			_present_attr = practical
	_present_cam.attributes = _present_attr
	_present_cam.fov = src.fov
	_present_vp.screen_space_aa = _source_vp.screen_space_aa
	_present_vp.use_debanding = _source_vp.use_debanding


## The Environment the present pass renders with: [param src] itself, or, where [param src] draws a sky, a
## copy without it, kept in step with [param src] every frame (exposure, glow, adjustments, fog... as the game
## changes them). The present effect overwrites the whole colour buffer after the sky and transparent passes
## (POST_TRANSPARENT), so the sky is never seen there; rendering it (and re-baking its radiance for a second
## world) cost more than Godot's FSR2 pass on lavapipe (benchmarks/results/frame_cost.md).
func _present_environment(src: Environment) -> Environment:
	if src == null or src.background_mode != Environment.BG_SKY:
		return src
	var copy: Environment = _present_envs.get(src)
	if copy == null:
		if _present_envs.size() >= 4:
			_present_envs.clear()  # environments the game no longer uses
		copy = src.duplicate() as Environment
		_present_envs[src] = copy
	for prop: Dictionary in src.get_property_list():
		var pname: String = prop["name"]
		if int(prop["usage"]) & PROPERTY_USAGE_STORAGE == 0 or pname in _SKY_PROPERTIES:
			continue
		var value: Variant = src.get(pname)
		if copy.get(pname) != value:
			copy.set(pname, value)
	if copy.background_mode != Environment.BG_COLOR:
		copy.background_mode = Environment.BG_COLOR
		copy.sky = null
	return copy


## The transform `cam` is drawn with this frame: under physics interpolation (Godot 4.4+, 3D) that is the
## interpolated transform between the last two physics ticks, not global_transform (the newest tick).
static func rendered_transform(cam: Camera3D) -> Transform3D:
	if cam.is_physics_interpolated_and_enabled():
		return cam.get_global_transform_interpolated()
	return cam.global_transform


func _sync_camera(src: Camera3D) -> void:
	_cam.global_transform = rendered_transform(src)
	_cam.projection = src.projection
	_cam.fov = src.fov
	_cam.size = src.size
	_cam.near = src.near
	_cam.far = src.far
	_cam.keep_aspect = src.keep_aspect
	_cam.h_offset = src.h_offset
	_cam.v_offset = src.v_offset
	_cam.frustum_offset = src.frustum_offset
	_cam.cull_mask = src.cull_mask
	_cam.environment = src.environment
	_cam.attributes = src.attributes
	_apply_jitter(src)
	var comp := Compositor.new()
	var effects: Array[CompositorEffect] = []
	if src.compositor != null:
		effects.append_array(src.compositor.compositor_effects)
	if _effect != null and capture_enabled and mode != Mode.NATIVE:
		effects.append(_effect)
	if _cam.compositor == null or _cam.compositor.compositor_effects != effects:
		comp.compositor_effects = effects
		_cam.compositor = comp
	_cam.current = true


func _process(_delta: float) -> void:
	var now := Time.get_ticks_usec()
	if _last_frame_usec > 0:
		var ms := (now - _last_frame_usec) / 1000.0
		stats["frame"] = ms
		_fps_smooth = lerpf(_fps_smooth, 1000.0 / maxf(ms, 0.001), 0.1) if _fps_smooth > 0.0 else 1000.0 / maxf(ms, 0.001)
	_last_frame_usec = now

	var src_cam := _source_vp.get_camera_3d()
	if src_cam == null or src_cam == _cam:
		if src_cam == null:
			_warn("no_camera", "neural_ss: no current Camera3D in the viewport (2D scene?): "
					+ "NeuralSSViewport stays inactive, plain rendering")
		_deactivate()
		_update_overlay()
		return
	if not active:
		_activate(src_cam)

	# Output and low-res sizes follow the window's real pixels (resize / resolution change -> camera cut).
	var out := get_output_size()
	var s := 1 if mode == Mode.NATIVE else get_scale()
	var low := Vector2i(maxi(1, out.x / s), maxi(1, out.y / s))
	if low != _low_size or out != _out_size:
		_sub.size = low
		# Godot's own texture LOD bias when it renders 3D below the output size: log2(render / output)
		_sub.texture_mipmap_bias = _source_vp.texture_mipmap_bias + log(float(low.x) / float(out.x)) / log(2.0)
		if _present_vp != null:
			_present_vp.size = out
		_low_size = low
		_out_size = out
		_cut_requested = true
	_sub.use_taa = use_taa
	_update_overlay()


# RenderingServer.frame_pre_draw: after all scene processing of the frame (every _process whatever its
# priority, deferred calls, tweens, physics steps, RemoteTransform3D), just before the frame is drawn.
# A copy taken in _process would miss a camera moved later in the frame and show the world one frame late.
func _on_frame_pre_draw() -> void:
	if not active or not is_instance_valid(_source_vp):
		return
	var src_cam := _source_vp.get_camera_3d()
	if src_cam == null or src_cam == _cam:
		return  # _process deactivates next frame
	_sync_camera(src_cam)
	_feed_effect()
	_present()
	frame_index += 1


## Halton sample `index` (1-based) of base `b`, in [0, 1).
static func halton(index: int, b: int) -> float:
	var f := 1.0
	var r := 0.0
	var i := index
	while i > 0:
		f /= b
		r += f * (i % b)
		i /= b
	return r


## The jitter NeuralSSViewport uses for frame `index` with `samples` samples: Halton(2,3) from
## index 1 on (index 0 is the centre), minus 0.5, in low-res pixels.
static func jitter_offset(index: int, samples: int) -> Vector2:
	var k := posmod(index, maxi(samples, 1)) + 1
	return Vector2(halton(k, 2) - 0.5, halton(k, 3) - 0.5)


## True while low-res frames are rendered with the raw sub-pixel jitter: [member jitter] (any mode
## but NATIVE), or [member jitter_for_model] in NEURAL mode; never with TAA (it jitters by itself).
func jitter_active() -> bool:
	if use_taa or mode == Mode.NATIVE:
		return false
	return jitter or (jitter_for_model and mode == Mode.NEURAL)


# Off-axis projection: a frustum whose near-plane window is shifted by the jitter. Pixel (i, j)
# then samples (i + 0.5 + jx, j + 0.5 + jy): the window moves right by jx pixels (x right) and
# down by jy pixels (frustum_offset.y points up).
func _apply_jitter(src: Camera3D) -> void:
	current_jitter = Vector2.ZERO
	if not jitter_active() or _low_size.x <= 0 or _low_size.y <= 0:
		return
	var extent := 0.0  # near-plane window size along the keep_aspect axis
	match src.projection:
		Camera3D.PROJECTION_PERSPECTIVE:
			extent = 2.0 * src.near * tan(deg_to_rad(src.fov) * 0.5)
		Camera3D.PROJECTION_FRUSTUM:
			extent = src.size
		_:
			_warn("jitter_ortho", "neural_ss: jitter needs a perspective or frustum camera; orthogonal: no jitter")
			return
	var px := extent / float(_low_size.y if src.keep_aspect == Camera3D.KEEP_HEIGHT else _low_size.x)
	current_jitter = jitter_offset(frame_index, jitter_samples)
	_cam.projection = Camera3D.PROJECTION_FRUSTUM
	_cam.size = extent
	_cam.frustum_offset = src.frustum_offset + Vector2(current_jitter.x, -current_jitter.y) * px


func _feed_effect() -> void:
	if _effect == null:
		return
	var xf := _cam.global_transform.orthonormalized()
	var pr := _cam.get_camera_projection()
	# un-jittered projection terms (the jitter moves P20 by 2 jx / w and P21 by -2 jy / h)
	var pv := Vector4(pr.x.x, pr.y.y, pr.z.x - 2.0 * current_jitter.x / _low_size.x,
			pr.z.y + 2.0 * current_jitter.y / _low_size.y)
	var cut := _cut_requested or not _has_prev
	if _has_prev and not cut:
		var moved := xf.origin.distance_to(_prev_xform.origin)
		var turned := rad_to_deg(xf.basis.get_rotation_quaternion().angle_to(_prev_xform.basis.get_rotation_quaternion()))
		if moved > cut_distance or turned > cut_angle_deg:
			cut = true
	var r := _prev_xform.basis.inverse() * xf.basis if _has_prev else Basis.IDENTITY
	var prev := _prev_proj if _has_prev else pv
	var ortho := 1.0 if _cam.projection == Camera3D.PROJECTION_ORTHOGONAL else 0.0
	var p := PackedFloat32Array([
		0.0, 0.0, _cam.near, _cam.far,
		pv.x, pv.y, pv.z, pv.w,
		prev.x, prev.y, prev.z, prev.w,
		r.x.x, r.y.x, r.z.x, ortho,
		r.x.y, r.y.y, r.z.y, 0.0 if cut else 1.0,
		r.x.z, r.y.z, r.z.z, 0.0,
		# the engine's velocity holds the jitter change (it only removes TAA's): subtract it
		current_jitter.x - (_prev_jitter.x if _has_prev else current_jitter.x),
		current_jitter.y - (_prev_jitter.y if _has_prev else current_jitter.y),
		current_jitter.x, current_jitter.y,
	])
	var t := scene_time if scene_time >= 0.0 else Time.get_ticks_msec() / 1000.0
	var info := {"index": frame_index, "cut": cut, "time": t, "fov_y_deg": _cam.fov}
	if jitter_active():
		info["jitter"] = current_jitter
	_effect.set_frame_params(p, info)
	_prev_xform = xf
	_prev_proj = pv
	_prev_jitter = current_jitter
	_has_prev = true
	_cut_requested = false


func _present() -> void:
	var show_neural := mode == Mode.NEURAL and neural_is_fresh() and _present_vp != null
	if _present_vp != null:
		_present_vp.render_target_update_mode = (SubViewport.UPDATE_ALWAYS if show_neural
				else SubViewport.UPDATE_DISABLED)
	if show_neural:
		_sync_present(_source_vp.get_camera_3d())
		_present_effect.source_rid = _neural_tex.get_rid()
		_rect.texture = _present_vp.get_texture()  # already tone-mapped at output size: shown 1:1
		_rect.texture_filter = CanvasItem.TEXTURE_FILTER_NEAREST
	else:
		_rect.texture = _sub.get_texture()
		_rect.texture_filter = (CanvasItem.TEXTURE_FILTER_NEAREST if mode == Mode.NATIVE
				else CanvasItem.TEXTURE_FILTER_LINEAR)


func _on_effect_frame(frame: NeuralSSFrame) -> void:
	if _effect != null:
		stats["capture_cpu"] = _effect.last_callback_ms
	frame_captured.emit(frame)


func _update_overlay() -> void:
	if _overlay == null:
		return
	_overlay.visible = _stats_wanted()
	if not _overlay.visible:
		return
	var label: String = MODE_NAMES[mode]
	if mode == Mode.NEURAL and not neural_is_fresh():
		label += " (no fresh frame: bilinear)"
	_overlay.show_stats(_fps_smooth, label, get_low_res_size(), stats)
