extends SceneTree
## Drop-in checks of NeuralSSViewport (tests/test_addon_fixes.py runs it under Xvfb + lavapipe). A static
## textured, lit scene with an HDR emissive sphere; the displayed image (the root viewport after
## drawing) is saved as PNG for each case, pytest compares them.
##
## User args: --out DIR --scenario stretch|mipbias|tonemap
##   stretch: for each stretch mode / aspect / window size: Godot's own display (no addon), then the addon
##            in NATIVE and BILINEAR; sizes.json holds the render target's pixels and the node's sizes.
##   mipbias: Godot's own bilinear (root viewport scaling_3d_scale = 0.5, BILINEAR) vs the addon's BILINEAR.
##   tonemap: per tonemapper (Linear, Reinhard, Filmic, ACES, AgX, with exposure, white, adjustments and
##            glow): Godot's own display vs the addon at scale 1 in NEURAL, fed the captured linear frame.
##   jitter:  --port-jitter P --port-plain Q --token T: runtimes already running (a model whose metadata
##            says "jitter": true, one that does not); the node's jitter follows the connected model.
## Prints "ADDON_FIXES_DONE cases=N" when finished.

const WAIT := 4

var args: Dictionary
var out_dir: String
var scenario: String
var jitters: Array = []
var env: Environment
var results: Dictionary = {}
var ns: NeuralSSViewport
var fed: int = 0
var flip := false
var use_rd := false  # feed a Texture2DRD (a texture already on the GPU) instead of an Image
var rd_tex: RID = RID()
var tex_rd: Texture2DRD


func _initialize() -> void:
	args = TestArgs.parse()
	out_dir = args.get("out", "/tmp/addon_fixes")
	scenario = args.get("scenario", "stretch")
	DirAccess.make_dir_recursive_absolute(out_dir)
	_build_scene()
	_run.call_deferred()


func _build_scene() -> void:
	var world := Node3D.new()
	root.add_child(world)
	env = TestWorld.environment(world, Color(0.25, 0.4, 0.7))
	TestWorld.sun(world).light_energy = 2.5
	# a floor receding to the horizon and a wall: fine 2-texel checkers, so the mip level shows
	var floor_mesh := MeshInstance3D.new()
	var pm := PlaneMesh.new()
	pm.size = Vector2(40, 60)
	floor_mesh.mesh = pm
	floor_mesh.material_override = _checker(Color(0.9, 0.8, 0.6), 40)
	floor_mesh.position = Vector3(0, -1.5, -25)
	world.add_child(floor_mesh)
	var wall := TestWorld.quad(world, Vector3(2.5, 0.5, -8), Vector2(6, 4), _checker(Color(0.3, 0.7, 0.9), 12))
	wall.rotation_degrees = Vector3(0, -35, 0)
	var sphere := MeshInstance3D.new()
	var sm := SphereMesh.new()
	sm.radius = 0.8
	sm.height = 1.6
	sphere.mesh = sm
	var hot := StandardMaterial3D.new()
	hot.albedo_color = Color(1.0, 0.5, 0.2)
	hot.emission_enabled = true
	hot.emission = Color(1.0, 0.6, 0.3)
	hot.emission_energy_multiplier = 6.0  # HDR: values far above 1 for the tonemapper and glow
	sphere.material_override = hot
	sphere.position = Vector3(-1.8, 0.0, -6)
	world.add_child(sphere)
	var cam := Camera3D.new()
	cam.fov = 60.0
	cam.position = Vector3(0, 0.3, 0)
	world.add_child(cam)
	cam.current = true


func _checker(c: Color, repeat: float) -> StandardMaterial3D:
	var img := Image.create(64, 64, false, Image.FORMAT_RGB8)
	for y in 64:
		for x in 64:
			img.set_pixel(x, y, c if ((x / 2) + (y / 2)) % 2 == 0 else c * 0.2)
	img.generate_mipmaps()
	var mat := StandardMaterial3D.new()
	mat.albedo_texture = ImageTexture.create_from_image(img)
	mat.texture_filter = BaseMaterial3D.TEXTURE_FILTER_LINEAR_WITH_MIPMAPS
	mat.uv1_scale = Vector3(repeat, repeat, 1)
	mat.roughness = 0.6
	return mat


func _frames(n: int) -> void:
	for i in n:
		await process_frame


func _grab(name: String) -> Image:
	await RenderingServer.frame_post_draw
	var img := root.get_texture().get_image()
	img.convert(Image.FORMAT_RGB8)
	img.save_png(out_dir.path_join(name + ".png"))
	return img


func _add_addon(mode: NeuralSSViewport.Mode, scale: int) -> void:
	ns = NeuralSSViewport.new()
	ns.scale_factor = scale
	ns.mode = mode
	ns.show_stats = 0
	root.add_child(ns)


func _remove_addon() -> void:
	root.remove_child(ns)
	ns.free()
	ns = null
	await _frames(2)


func _run() -> void:
	await _frames(2)
	match scenario:
		"stretch":
			await _stretch()
		"mipbias":
			await _mipbias()
		"tonemap":
			await _tonemap()
		"jitter":
			await _jitter()
	var f := FileAccess.open(out_dir.path_join("results.json"), FileAccess.WRITE)
	f.store_string(JSON.stringify(results, "  "))
	f.close()
	print("ADDON_FIXES_DONE cases=%d" % results.size())
	quit(0)


func _stretch() -> void:
	var cases := [
		["disabled", Window.CONTENT_SCALE_MODE_DISABLED, Window.CONTENT_SCALE_ASPECT_IGNORE, Vector2i(320, 180)],
		["canvas_items_keep", Window.CONTENT_SCALE_MODE_CANVAS_ITEMS, Window.CONTENT_SCALE_ASPECT_KEEP, Vector2i(320, 180)],
		["canvas_items_keep_wide", Window.CONTENT_SCALE_MODE_CANVAS_ITEMS, Window.CONTENT_SCALE_ASPECT_KEEP,
				Vector2i(400, 180)],
		["canvas_items_expand_wide", Window.CONTENT_SCALE_MODE_CANVAS_ITEMS, Window.CONTENT_SCALE_ASPECT_EXPAND,
				Vector2i(400, 180)],
		["canvas_items_ignore_wide", Window.CONTENT_SCALE_MODE_CANVAS_ITEMS, Window.CONTENT_SCALE_ASPECT_IGNORE,
				Vector2i(400, 180)],
		["viewport_keep", Window.CONTENT_SCALE_MODE_VIEWPORT, Window.CONTENT_SCALE_ASPECT_KEEP, Vector2i(320, 180)],
		["viewport_expand_wide", Window.CONTENT_SCALE_MODE_VIEWPORT, Window.CONTENT_SCALE_ASPECT_EXPAND,
				Vector2i(400, 180)],
	]
	for c: Array in cases:
		var name: String = c[0]
		root.content_scale_size = Vector2i(288, 162)  # a 2D base size unlike the window's
		root.content_scale_mode = c[1]
		root.content_scale_aspect = c[2]
		root.size = c[3]
		await _frames(WAIT)
		var godot_img := await _grab(name + "_godot")
		_add_addon(NeuralSSViewport.Mode.NATIVE, 2)
		await _frames(WAIT)
		await _grab(name + "_native")
		var native_out := ns.get_output_size()
		ns.mode = NeuralSSViewport.Mode.BILINEAR
		await _frames(WAIT)
		await _grab(name + "_bilinear")
		results[name] = {
			"window": [root.size.x, root.size.y], "visible": [root.get_visible_rect().size.x, root.get_visible_rect().size.y],
			"render_target": [godot_img.get_width(), godot_img.get_height()],
			"output": [ns.get_output_size().x, ns.get_output_size().y], "native_output": [native_out.x, native_out.y],
			"low": [ns.get_low_res_size().x, ns.get_low_res_size().y],
		}
		await _remove_addon()


func _mipbias() -> void:
	root.size = Vector2i(320, 180)
	await _frames(WAIT)
	root.scaling_3d_mode = Viewport.SCALING_3D_MODE_BILINEAR
	root.scaling_3d_scale = 0.5
	await _frames(WAIT)
	await _grab("godot_bilinear")
	root.scaling_3d_scale = 1.0
	await _frames(WAIT)
	await _grab("godot_native")
	_add_addon(NeuralSSViewport.Mode.BILINEAR, 2)
	await _frames(WAIT)
	await _grab("addon_bilinear")
	results["mipbias"] = {"low": [ns.get_low_res_size().x, ns.get_low_res_size().y],
			"bias": ns.get_node("NeuralSSLowRes").texture_mipmap_bias}
	await _remove_addon()
	# the node as a user adds it (mode not set): NEURAL, so it starts its runtime; the test's runtime
	# command does not exist -> one fallback line, silent retries with backoff
	ns = NeuralSSViewport.new()
	root.add_child(ns)
	var t0 := Time.get_ticks_msec()
	var n := 0
	var client: NeuralSSRuntimeClient
	while Time.get_ticks_msec() - t0 < 60000:  # until it has retried twice (backoff 0.25 s, 0.5 s)
		await process_frame
		n += 1
		client = _find_client(ns)
		if client != null and int(client.counters["attempts"]) >= 3 and n >= 30:
			break
	results["default"] = {"mode": NeuralSSViewport.MODE_NAMES[ns.mode], "counters": client.counters,
			"state": NeuralSSRuntimeClient.State.keys()[client.state], "fresh": ns.neural_is_fresh(), "frames": n}
	await _remove_addon()


func _tonemap() -> void:
	root.size = Vector2i(320, 180)
	var cases := [
		["linear", Environment.TONE_MAPPER_LINEAR],
		["reinhard", Environment.TONE_MAPPER_REINHARDT],
		["filmic", Environment.TONE_MAPPER_FILMIC],
		["aces", Environment.TONE_MAPPER_ACES],
		["agx", Environment.TONE_MAPPER_AGX],
	]
	env.tonemap_exposure = 1.3
	env.tonemap_white = 6.0
	env.adjustment_enabled = true
	env.adjustment_brightness = 1.05
	env.adjustment_contrast = 1.1
	env.adjustment_saturation = 0.85
	env.glow_enabled = true
	env.glow_intensity = 1.2
	env.glow_bloom = 0.1
	for c: Array in cases:
		var name: String = c[0]
		env.tonemap_mode = c[1]
		use_rd = name == "aces"
		if name == "agx":  # a sky background: the present pass renders a sky-free copy of the Environment
			var sky := Sky.new()
			sky.sky_material = ProceduralSkyMaterial.new()
			env.sky = sky
			env.background_mode = Environment.BG_SKY
		await _frames(WAIT + 2)
		await _grab(name + "_godot")
		_add_addon(NeuralSSViewport.Mode.NEURAL, 1)
		fed = 0
		ns.frame_captured.connect(_feed)
		for i in 40:
			await process_frame
			if fed >= 3 and ns.neural_is_fresh():
				break
		await _frames(WAIT)
		var fresh := ns.neural_is_fresh()
		await _grab(name + "_neural")
		if name == "filmic":  # the picture really comes from the fed image: feed it mirrored
			flip = true
			await _frames(WAIT)
			await _grab(name + "_neural_mirrored")
			flip = false
		var present_env: Environment = ns._present_vp.world_3d.environment
		if name == "agx":  # the game changes its Environment while the copy is in use: the present pass follows
			env.tonemap_exposure = 0.7
			await _frames(WAIT)
			await _grab("agx_dim_neural")
		results[name] = {"fed": fed, "fresh": fresh, "low": [ns.get_low_res_size().x, ns.get_low_res_size().y],
				"texture": "Texture2DRD" if use_rd else "ImageTexture",
				"background": env.background_mode, "present_background": present_env.background_mode,
				"present_glow": present_env.glow_intensity}
		await _remove_addon()
		if name == "agx":
			await _frames(WAIT + 2)
			await _grab("agx_dim_godot")
			env.tonemap_exposure = 1.3
	if rd_tex.is_valid():
		tex_rd.texture_rd_rid = RID()
		RenderingServer.get_rendering_device().free_rid(rd_tex)


# The captured LINEAR frame (rgb, depth in alpha) sent back through the NEURAL present path as is.
func _feed(frame: NeuralSSFrame) -> void:
	if ns == null or frame.index < 2 or not frame.bytes_ok():
		return
	if use_rd:
		var rd := RenderingServer.get_rendering_device()
		if not rd_tex.is_valid():
			var tf := RDTextureFormat.new()
			tf.format = RenderingDevice.DATA_FORMAT_R32G32B32A32_SFLOAT
			tf.width = frame.size.x
			tf.height = frame.size.y
			tf.usage_bits = RenderingDevice.TEXTURE_USAGE_SAMPLING_BIT | RenderingDevice.TEXTURE_USAGE_CAN_UPDATE_BIT
			rd_tex = rd.texture_create(tf, RDTextureView.new(), [frame.colour_depth])
			tex_rd = Texture2DRD.new()
			tex_rd.texture_rd_rid = rd_tex
		else:
			rd.texture_update(rd_tex, 0, frame.colour_depth)
		ns.set_upscaled_texture(tex_rd)
		fed += 1
		return
	var im := Image.create_from_data(frame.size.x, frame.size.y, false, Image.FORMAT_RGBAF, frame.colour_depth)
	if flip:
		im.flip_x()
	ns.set_upscaled_image(im)
	fed += 1


func _find_client(n: Node) -> NeuralSSRuntimeClient:
	for c: Node in n.get_children():
		if c is NeuralSSRuntimeClient:
			return c as NeuralSSRuntimeClient
		var found := _find_client(c)
		if found != null:
			return found
	return null


func _jitter() -> void:
	root.size = Vector2i(320, 180)
	OS.set_environment(NeuralSSSettings.TOKEN_ENV, args.get("token", ""))  # a secret: never a setting
	for name: String in ["plain", "jitter"]:
		ProjectSettings.set_setting("neural_ss/python/port", int(args.get("port-jitter" if name == "jitter"
				else "port-plain", "0")))
		ns = NeuralSSViewport.new()
		ns.show_stats = 0
		root.add_child(ns)
		var client: NeuralSSRuntimeClient
		jitters = []
		ns.frame_captured.connect(func(f: NeuralSSFrame) -> void: jitters.append([f.jitter.x, f.jitter.y]))
		var t0 := Time.get_ticks_msec()
		var ready_at := -1
		while Time.get_ticks_msec() - t0 < 30000:
			await process_frame
			client = _find_client(ns)
			if ready_at < 0 and client != null and client.is_ready():
				ready_at = jitters.size()
			if ready_at >= 0 and jitters.size() >= ready_at + 6:
				break
		results[name] = {"ready": ready_at >= 0, "node_jitter": ns.jitter_active(),
				"jitter_after_ready": jitters.slice(maxi(ready_at, 0) + 2), "model": client.model_info}
		await _remove_addon()
