@tool
class_name NeuralSSPresentEffect
extends CompositorEffect
## Puts an upscaled LINEAR (pre-tone-mapping) HDR image into the colour buffer of a full-resolution
## render, after its opaque, sky and transparent passes and before its post-processing. Godot's own
## post-processing then runs on it exactly as on a native frame: auto exposure, glow, the
## Environment's tonemapper (Linear, Reinhard, Filmic, ACES, AgX) with its exposure and white,
## adjustments (brightness, contrast, saturation, colour correction), FXAA, debanding.
##
## NeuralSSViewport renders an empty world through this effect (its "present" SubViewport, with the
## game's Environment and camera attributes), so the cost beyond Godot's post-processing is the sky
## and one copy. The source is any Texture2D whose pixels live on the RenderingDevice: an
## ImageTexture (set_upscaled_image) or a Texture2DRD (a GPU runtime's output).

## The texture to present (main thread). Its RenderingServer RID is looked up on the render thread.
var source_rid: RID = RID()

const _SHADER := """
#version 450
layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;
layout(rgba16f, set = 0, binding = 0) uniform restrict writeonly image2D colour_out;
layout(set = 0, binding = 1) uniform sampler2D source;
layout(push_constant, std430) uniform Params {
	vec4 size;      // output w, h, 1/w, 1/h
	vec4 src_size;  // source w, h
} p;

void main() {
	ivec2 pix = ivec2(gl_GlobalInvocationID.xy);
	if (pix.x >= int(p.size.x) || pix.y >= int(p.size.y)) {
		return;
	}
	vec3 c;
	if (p.src_size.x == p.size.x && p.src_size.y == p.size.y) {
		c = texelFetch(source, pix, 0).rgb;  // the usual case; also fine for non-filterable RGBA32F
	} else {
		// a few pixels off the output (odd sizes): bilinear by normalised UV
		c = textureLod(source, (vec2(pix) + 0.5) * p.size.zw, 0.0).rgb;
	}
	imageStore(colour_out, pix, vec4(max(c, vec3(0.0)), 1.0));
}
"""

var _rd: RenderingDevice
var _shader: RID
var _pipeline: RID
var _sampler: RID
var _failed := false


func _init() -> void:
	effect_callback_type = CompositorEffect.EFFECT_CALLBACK_TYPE_POST_TRANSPARENT
	RenderingServer.call_on_render_thread(_init_gpu)


func _notification(what: int) -> void:
	if what == NOTIFICATION_PREDELETE and _rd != null:
		for rid: RID in [_sampler, _shader]:  # the pipeline goes with its shader
			if rid.is_valid():
				_rd.free_rid(rid)


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
		push_error("neural_ss: present shader failed to compile: " + spirv.compile_error_compute)
		_failed = true
		return
	_shader = _rd.shader_create_from_spirv(spirv, "neural_ss_present")
	_pipeline = _rd.compute_pipeline_create(_shader)
	var ss := RDSamplerState.new()
	ss.min_filter = RenderingDevice.SAMPLER_FILTER_LINEAR
	ss.mag_filter = RenderingDevice.SAMPLER_FILTER_LINEAR
	ss.repeat_u = RenderingDevice.SAMPLER_REPEAT_MODE_CLAMP_TO_EDGE
	ss.repeat_v = RenderingDevice.SAMPLER_REPEAT_MODE_CLAMP_TO_EDGE
	_sampler = _rd.sampler_create(ss)


func _render_callback(callback_type: int, render_data: RenderData) -> void:
	if _failed or callback_type != effect_callback_type or not source_rid.is_valid():
		return
	var buffers := render_data.get_render_scene_buffers() as RenderSceneBuffersRD
	if buffers == null:
		return
	var size := buffers.get_internal_size()
	var src := RenderingServer.texture_get_rd_texture(source_rid)
	if size.x <= 0 or size.y <= 0 or not src.is_valid():
		return
	var colour := buffers.get_color_layer(0)
	if not colour.is_valid():
		return
	var u0 := RDUniform.new()
	u0.uniform_type = RenderingDevice.UNIFORM_TYPE_IMAGE
	u0.binding = 0
	u0.add_id(colour)
	var u1 := RDUniform.new()
	u1.uniform_type = RenderingDevice.UNIFORM_TYPE_SAMPLER_WITH_TEXTURE
	u1.binding = 1
	u1.add_id(_sampler)
	u1.add_id(src)
	var uset := UniformSetCacheRD.get_cache(_shader, 0, [u0, u1])
	var fmt := _rd.texture_get_format(src)
	var pc := PackedFloat32Array([size.x, size.y, 1.0 / size.x, 1.0 / size.y, fmt.width, fmt.height, 0.0, 0.0]) \
			.to_byte_array()
	var cl := _rd.compute_list_begin()
	_rd.compute_list_bind_compute_pipeline(cl, _pipeline)
	_rd.compute_list_bind_uniform_set(cl, uset, 0)
	_rd.compute_list_set_push_constant(cl, pc, pc.size())
	_rd.compute_list_dispatch(cl, ceili(size.x / 8.0), ceili(size.y / 8.0), 1)
	_rd.compute_list_end()
