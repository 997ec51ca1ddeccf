@tool
class_name NeuralSSCaptureEffect
extends CompositorEffect
## Copies the low-res colour (before tone mapping), depth and motion of the frame being rendered
## into the addon's own RGBA32F / RG32F textures, converted to the frame contract, and reads them
## back without stalling the frame (RenderingDevice.texture_get_data_async, Godot 4.4+).
##
## The engine's own buffers have no copy-from bit, so one compute dispatch reads them (colour as
## an image, depth and velocity through samplers) and writes contract units:
##   rgbd.rgb = linear colour, rgbd.a = linear view depth (reversed-Z undone), 1e10 on the sky;
##   motion = velocity (UV, prev - cur) * size, i.e. low-res pixels, prev = p + motion; sky pixels
##   (which get no velocity from the engine) get the motion of the camera rotation instead.
## Camera parameters come from the owner (NeuralSSViewport) through [method set_frame_params];
## the effect knows nothing about scenes, so it could move to a future engine scaling hook.

## Called (deferred, on the main thread) with each finished NeuralSSFrame.
var on_frame: Callable
## Last CPU time of the render callback in ms (read by the stats overlay).
var last_callback_ms: float = 0.0
## Frames whose readback is still in flight.
var in_flight: int = 0
## GPU runtime (NeuralSSGpuRunner) run right after the copy, in this callback, on the copied textures:
## the network never sees the CPU. Null = none (NeuralSSGpuBackend sets it in GPU mode).
var gpu_runner: RefCounted = null
## Read each frame back for [member on_frame] (its NeuralSSFrame carries the pixels). Off: on_frame gets
## the frame's metadata only (GPU mode with nothing that wants pixels).
var readback: bool = true
## texture_get_data(_async) calls made by this effect (GPU mode makes none: tests check it).
var readbacks: int = 0

const BACKGROUND_DEPTH := 1.0e10
const _SHADER := """
#version 450
layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;
layout(rgba16f, set = 0, binding = 0) uniform restrict readonly image2D colour_in;
layout(set = 0, binding = 1) uniform sampler2D depth_in;
layout(set = 0, binding = 2) uniform sampler2D velocity_in;
layout(rgba32f, set = 0, binding = 3) uniform restrict writeonly image2D rgbd_out;
layout(rg32f, set = 0, binding = 4) uniform restrict writeonly image2D motion_out;
layout(push_constant, std430) uniform Params {
	vec4 size_near_far;  // w, h, near, far
	vec4 cur_proj;       // P00, P11, P20, P21 of the un-jittered projection (GL style)
	vec4 prev_proj;
	vec4 rot0;           // rows of R = inverse(prev camera basis) * current basis; rot0.w = orthogonal
	vec4 rot1;           // rot1.w = 1 when a previous frame exists
	vec4 rot2;           // rot2.w = depth written on the background
	vec4 jit;            // xy: jitter change (cur - prev) the velocity holds, zw: this frame's jitter (px)
} p;

void main() {
	ivec2 pix = ivec2(gl_GlobalInvocationID.xy);
	vec2 size = p.size_near_far.xy;
	if (pix.x >= int(size.x) || pix.y >= int(size.y)) {
		return;
	}
	float near = p.size_near_far.z;
	float far = p.size_near_far.w;
	vec4 c = imageLoad(colour_in, pix);
	float d = texelFetch(depth_in, pix, 0).r;  // reversed Z: 1 at near, 0 at far / sky
	bool sky = d <= 0.0;
	float z;
	if (p.rot0.w > 0.5) {
		z = far - d * (far - near);
	} else {
		z = near * far / (near + d * (far - near));
	}
	vec2 mv = texelFetch(velocity_in, pix, 0).xy * size - p.jit.xy;
	if (sky) {
		z = p.rot2.w;
		mv = vec2(0.0);
		if (p.rot1.w > 0.5 && p.rot0.w < 0.5) {
			// A direction at infinity moves only with the camera's rotation.
			vec2 pc = vec2(pix) + 0.5 + p.jit.zw;  // where this pixel's sample lies
			vec2 ndc = vec2(pc.x / size.x * 2.0 - 1.0, 1.0 - pc.y / size.y * 2.0);
			vec3 dir = vec3((ndc.x + p.cur_proj.z) / p.cur_proj.x, (ndc.y + p.cur_proj.w) / p.cur_proj.y, -1.0);
			vec3 dp = vec3(dot(p.rot0.xyz, dir), dot(p.rot1.xyz, dir), dot(p.rot2.xyz, dir));
			if (dp.z < -1e-6) {
				vec2 pn = vec2(p.prev_proj.x * dp.x / -dp.z - p.prev_proj.z, p.prev_proj.y * dp.y / -dp.z - p.prev_proj.w);
				vec2 pp = vec2((pn.x + 1.0) * 0.5 * size.x, (1.0 - pn.y) * 0.5 * size.y);
				mv = pp - pc;
			}
		}
	}
	imageStore(rgbd_out, pix, vec4(max(c.rgb, vec3(0.0)), z));
	imageStore(motion_out, pix, vec4(mv, 0.0, 0.0));
}
"""

var _rd: RenderingDevice
var _shader: RID
var _pipeline: RID
var _sampler: RID
var _rgbd_tex: RID
var _motion_tex: RID
var _size := Vector2i.ZERO
var _params := PackedFloat32Array()
var _info := {}
var _pending := {}  # frame index -> {"rgbd": bytes, "motion": bytes, "frame": NeuralSSFrame}
var _failed := false


func _init() -> void:
	effect_callback_type = CompositorEffect.EFFECT_CALLBACK_TYPE_POST_TRANSPARENT
	needs_motion_vectors = true
	_params.resize(28)
	RenderingServer.call_on_render_thread(_init_gpu)


func _notification(what: int) -> void:
	# Methods of this script cannot be called during PREDELETE: free the RIDs inline.
	if what == NOTIFICATION_PREDELETE and _rd != null:
		for rid: RID in [_rgbd_tex, _motion_tex, _sampler, _shader]:  # the pipeline goes with its shader
			if rid.is_valid():
				_rd.free_rid(rid)


## Camera state of the frame about to be rendered (main thread). `params` is the 28-float push
## constant block documented in the shader (size filled in here); `info` holds index, cut, time,
## intrinsics and projection terms for the NeuralSSFrame.
func set_frame_params(params: PackedFloat32Array, info: Dictionary) -> void:
	_params = params
	while _params.size() < 28:  # the 24-float block of older callers: no jitter
		_params.append(0.0)
	_info = info


func _init_gpu() -> void:
	_rd = RenderingServer.get_rendering_device()
	if _rd == null:
		_failed = true
		return
	var src := RDShaderSource.new()
	src.language = RenderingDevice.SHADER_LANGUAGE_GLSL
	src.source_compute = _SHADER
	var spirv := _rd.shader_compile_spirv_from_source(src)
	if spirv.compile_error_compute != "":
		push_error("neural_ss: capture shader failed to compile: " + spirv.compile_error_compute)
		_failed = true
		return
	_shader = _rd.shader_create_from_spirv(spirv, "neural_ss_capture")
	_pipeline = _rd.compute_pipeline_create(_shader)
	var ss := RDSamplerState.new()
	ss.min_filter = RenderingDevice.SAMPLER_FILTER_NEAREST
	ss.mag_filter = RenderingDevice.SAMPLER_FILTER_NEAREST
	_sampler = _rd.sampler_create(ss)


func _free_textures() -> void:
	for rid: RID in [_rgbd_tex, _motion_tex]:
		if rid.is_valid():
			_rd.free_rid(rid)
	_rgbd_tex = RID()
	_motion_tex = RID()
	_size = Vector2i.ZERO


func _make_texture(size: Vector2i, format: RenderingDevice.DataFormat) -> RID:
	var tf := RDTextureFormat.new()
	tf.format = format
	tf.width = size.x
	tf.height = size.y
	tf.usage_bits = (RenderingDevice.TEXTURE_USAGE_STORAGE_BIT | RenderingDevice.TEXTURE_USAGE_CAN_COPY_FROM_BIT
			| RenderingDevice.TEXTURE_USAGE_SAMPLING_BIT)
	return _rd.texture_create(tf, RDTextureView.new())


func _render_callback(callback_type: int, render_data: RenderData) -> void:
	if _failed or callback_type != effect_callback_type or _info.is_empty():
		return
	var t0 := Time.get_ticks_usec()
	var buffers := render_data.get_render_scene_buffers() as RenderSceneBuffersRD
	if buffers == null:
		return
	var size := buffers.get_internal_size()
	if size.x <= 0 or size.y <= 0:
		return
	var resized := size != _size
	if resized:
		_free_textures()
		_rgbd_tex = _make_texture(size, RenderingDevice.DATA_FORMAT_R32G32B32A32_SFLOAT)
		_motion_tex = _make_texture(size, RenderingDevice.DATA_FORMAT_R32G32_SFLOAT)
		_size = size
	var colour := buffers.get_color_layer(0)
	var depth := buffers.get_depth_layer(0)
	var velocity := buffers.get_velocity_layer(0)
	if not (colour.is_valid() and depth.is_valid() and velocity.is_valid()):
		return

	var params := _params.duplicate()
	params[0] = size.x
	params[1] = size.y
	params[23] = BACKGROUND_DEPTH
	var uniforms: Array[RDUniform] = [
		_uniform(RenderingDevice.UNIFORM_TYPE_IMAGE, 0, [colour]),
		_uniform(RenderingDevice.UNIFORM_TYPE_SAMPLER_WITH_TEXTURE, 1, [_sampler, depth]),
		_uniform(RenderingDevice.UNIFORM_TYPE_SAMPLER_WITH_TEXTURE, 2, [_sampler, velocity]),
		_uniform(RenderingDevice.UNIFORM_TYPE_IMAGE, 3, [_rgbd_tex]),
		_uniform(RenderingDevice.UNIFORM_TYPE_IMAGE, 4, [_motion_tex]),
	]
	var uset := UniformSetCacheRD.get_cache(_shader, 0, uniforms)
	var cl := _rd.compute_list_begin()
	_rd.compute_list_bind_compute_pipeline(cl, _pipeline)
	_rd.compute_list_bind_uniform_set(cl, uset, 0)
	var pc := params.to_byte_array()
	_rd.compute_list_set_push_constant(cl, pc, pc.size())
	_rd.compute_list_dispatch(cl, ceili(size.x / 8.0), ceili(size.y / 8.0), 1)
	_rd.compute_list_end()

	var frame := NeuralSSFrame.new()
	frame.index = _info.get("index", 0)
	frame.size = size
	frame.camera_cut = bool(_info.get("cut", false)) or resized
	frame.time = _info.get("time", 0.0)
	frame.intrinsics = _intrinsics(size)
	# the owner's own jitter when it applied one (exact), else what the engine's projection says (TAA)
	frame.jitter = _info["jitter"] if _info.has("jitter") else _jitter(render_data, size)
	if gpu_runner != null:
		gpu_runner.call("run", _rd, _rgbd_tex, _motion_tex, size, frame.jitter, frame.camera_cut, frame.index)
	if on_frame.is_valid() and not readback:
		on_frame.call_deferred(frame)  # metadata only: no pixels leave the GPU
	elif on_frame.is_valid():
		readbacks += 2
		if _rd.has_method("texture_get_data_async"):
			_pending[frame.index] = {"frame": frame}
			in_flight = _pending.size()
			_rd.texture_get_data_async(_rgbd_tex, 0, _on_data.bind(frame.index, "rgbd"))
			_rd.texture_get_data_async(_motion_tex, 0, _on_data.bind(frame.index, "motion"))
		else:  # Godot 4.3: synchronous (stalls until the GPU is done)
			frame.colour_depth = _rd.texture_get_data(_rgbd_tex, 0)
			frame.motion = _rd.texture_get_data(_motion_tex, 0)
			on_frame.call_deferred(frame)
	last_callback_ms = (Time.get_ticks_usec() - t0) / 1000.0
	frame.capture_ms = last_callback_ms


## The low-res RGBA32F colour + depth texture the capture writes (invalid before the first frame).
func get_colour_depth_texture() -> RID:
	return _rgbd_tex


func _on_data(data: PackedByteArray, index: int, which: String) -> void:
	var entry: Dictionary = _pending.get(index, {})
	if entry.is_empty():
		return
	entry[which] = data
	if entry.has("rgbd") and entry.has("motion"):
		_pending.erase(index)
		in_flight = _pending.size()
		var frame: NeuralSSFrame = entry["frame"]
		frame.colour_depth = entry["rgbd"]
		frame.motion = entry["motion"]
		if on_frame.is_valid():
			on_frame.call_deferred(frame)


func _intrinsics(size: Vector2i) -> Dictionary:
	var w := float(size.x)
	var h := float(size.y)
	# From the GL-style projection: ndc.x = P00 * X/-Z - P20 and pixel y runs down.
	return {
		"fx": 0.5 * w * _params[4], "fy": 0.5 * h * _params[5],
		"cx": 0.5 * w * (1.0 - _params[6]), "cy": 0.5 * h * (1.0 + _params[7]),
		"near": _params[2], "far": _params[3], "fov_y_deg": _info.get("fov_y_deg", 0.0),
		"orthogonal": _params[15] > 0.5,
	}


# TAA jitters the projection the engine renders with; the camera's own projection is un-jittered.
# The difference (NDC) in low-res pixels, as the contract wants it: where the sample of a pixel
# lies relative to the pixel centre.
func _jitter(render_data: RenderData, size: Vector2i) -> Vector2:
	var sd := render_data.get_render_scene_data()
	if sd == null:
		return Vector2.ZERO
	var pj := sd.get_cam_projection()
	var dx := pj.z.x - _params[6]
	var dy := pj.z.y - _params[7]
	if absf(dx) < 1e-7 and absf(dy) < 1e-7:
		return Vector2.ZERO
	# ndc.x = P00 X/-Z - P20: a larger P20 moves the image left, i.e. each pixel samples further right.
	# For y (image rows, down) the same sign holds: a larger P21 moves each row's sample further down (measured
	# on a horizontal edge: tests/test_godot.py::test_taa_jitter_is_recorded_with_the_contract_sign).
	var j := Vector2(dx * 0.5 * size.x, dy * 0.5 * size.y)
	return j.clamp(Vector2(-0.5, -0.5), Vector2(0.5, 0.5))


func _uniform(type: RenderingDevice.UniformType, binding: int, ids: Array) -> RDUniform:
	var u := RDUniform.new()
	u.uniform_type = type
	u.binding = binding
	for id: RID in ids:
		u.add_id(id)
	return u
