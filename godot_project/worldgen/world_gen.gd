extends Node3D
## Procedural training worlds for the paired capture (python -m nss_train.sources.worldgen runs
## addons/neural_ss/capture/paired_capture.tscn with --scene res://worldgen/world.tscn).
##
## Every capture sequence k gets its own world, built from the seed (seed, k): layouts of primitive
## and generated meshes; materials and textures made by code (checkers, stripes, bricks, noise,
## glyph text, fine lines, planks...); thin poles, wires, fences, railings and chain-link panels;
## alpha-tested foliage cards; decals; Label3D text; metallic, glossy, emissive and alpha-blended
## surfaces; particles; moving, spinning, swaying and blinking objects; sky or a plain background,
## fog; a sun and random lights; and a camera path (still, slow, fast, orbit, strafe, pan; some
## with cuts). Everything is a function of (seed, k, frame): the world is rebuilt LEAD frames
## before its sequence starts and animated from the sequence's own time t = (f - start) / fps.
##
## User args (the paired capture passes them on): --seed N --warmup W --stride S --frames F
## --seq-ids a,b,.. --fixed-fps FPS --time-scale X. Standalone (no capture): sequence 0, looping.

const Tex := preload("res://worldgen/wg_textures.gd")
const LEAD := 6  # frames between a world's construction and the first frame of its sequence
const WORDS := ["EXIT", "OPEN", "STOP", "NEURAL", "GODOT", "SALE", "HOTEL", "CAFE", "42", "NO PARKING",
		"ZONE B", "LEVEL 3", "DANGER", "PUSH", "PULL", "Mainstreet 12", "thin wires", "0123456789",
		"The quick brown fox", "jumps over the lazy dog", "ABCDEFGHIJKLM", "nopqrstuvwxyz", "WARNING",
		"Platform 9", "km/h 80", "LOADING", "OK", "ACCESS DENIED", "Tuesday", "#7F3A"]
const CAMERA_MODES := ["still", "slow", "fast", "orbit", "strafe", "pan"]

var seed_base: int = 0
var warmup: int = 8
var stride: int = 40
var frames: int = 32
var fps: float = 30.0
var time_scale: float = 1.0
var seq_ids: Array[int] = []

var camera: Camera3D
var rng := RandomNumberGenerator.new()
var built: int = -1  # sequence whose world stands
var world: Node3D
var env: Environment
var anims: Array[Dictionary] = []
var segments: Array[Dictionary] = []
var description: Dictionary = {}
var _ns: NeuralSSViewport
var _own_frame: int = 0
var _last_segment: int = -1


func _ready() -> void:
	var a := NeuralSSSettings.user_args()
	seed_base = int(a.get("seed", "0"))
	warmup = int(a.get("warmup", "8"))
	frames = int(a.get("frames", "32"))
	stride = int(a.get("stride", str(frames + LEAD + 2)))
	fps = float(a.get("fixed-fps", "30"))
	time_scale = float(a.get("time-scale", "1"))
	for s: String in String(a.get("seq-ids", "")).split(",", false):
		seq_ids.append(int(s))
	camera = Camera3D.new()
	camera.name = "WorldCamera"
	add_child(camera)
	camera.current = true
	var we := WorldEnvironment.new()
	env = Environment.new()
	we.environment = env
	add_child(we)


func _process(_delta: float) -> void:
	if _ns == null:
		_ns = _find_ns(get_tree().root)
	var f := _ns.frame_index if _ns != null else _own_frame
	_own_frame += 1
	var k := 0
	if not seq_ids.is_empty():
		k = maxi(0, floori(float(f - warmup + LEAD) / stride))
		if not seq_ids.has(k):
			k = built  # between sequences (or before the first one's LEAD frames): keep what stands
	if k != built and k >= 0:
		_build(k)
	if built < 0:
		return
	k = built
	var start := warmup + k * stride
	var t := time_scale * float(f - start) / fps
	if seq_ids.is_empty():
		t = fmod(time_scale * f / fps, frames / fps)
	_animate(t)


func _find_ns(n: Node) -> NeuralSSViewport:
	if n is NeuralSSViewport:
		return n
	for c in n.get_children():
		var v := _find_ns(c)
		if v != null:
			return v
	return null


# --- construction -------------------------------------------------------------------------------

func _build(k: int) -> void:
	if world != null:
		remove_child(world)
		world.queue_free()
	built = k
	anims.clear()
	segments.clear()
	_last_segment = -1
	rng.seed = hash([seed_base, k, "nss_worldgen/1"])
	world = Node3D.new()
	world.name = "World_%d" % k
	add_child(world)
	description = {"seed": seed_base, "sequence": k}
	_environment()
	_lights()
	_ground()
	var n_build := rng.randi_range(2, 7)
	for i in n_build:
		_building()
	var n_props := rng.randi_range(16, 40)
	for i in n_props:
		_prop()
	for i in rng.randi_range(1, 3):
		_generated_mesh()
	for i in rng.randi_range(1, 3):
		match rng.randi() % 4:
			0:
				_power_line()
			1:
				_fence()
			2:
				_railing()
			_:
				_chainlink_panel()
	for i in rng.randi_range(1, 4):
		_grass_patch()
	for i in rng.randi_range(0, 3):
		_tree()
	for i in rng.randi_range(1, 5):
		_label()
	for i in rng.randi_range(1, 5):
		_decal()
	for i in rng.randi_range(0, 3):
		_particles()
	for i in rng.randi_range(0, 4):
		_neon()
	if rng.randf() < 0.5:
		_fan()
	_camera_path()
	description["objects"] = world.get_child_count()


func _environment() -> void:
	var night := rng.randf() < 0.2
	description["night"] = night
	env.tonemap_mode = Environment.TONE_MAPPER_LINEAR
	env.glow_enabled = false
	env.ssao_enabled = false
	env.ssr_enabled = false
	env.sdfgi_enabled = false
	env.volumetric_fog_enabled = false  # temporal: would differ between input and target viewports
	if rng.randf() < 0.75:
		var sky := Sky.new()
		var m := ProceduralSkyMaterial.new()
		var top := Tex.rand_colour(rng, 0.05, 0.3) if night else Color.from_hsv(rng.randf_range(0.5, 0.7), rng.randf_range(0.2, 0.8), rng.randf_range(0.4, 1.0))
		m.sky_top_color = top
		m.sky_horizon_color = top.lerp(Tex.rand_colour(rng, 0.3, 1.0), rng.randf_range(0.2, 0.8))
		m.ground_bottom_color = Tex.rand_colour(rng, 0.0, 0.4)
		m.ground_horizon_color = m.sky_horizon_color.darkened(rng.randf_range(0.0, 0.5))
		m.sky_energy_multiplier = rng.randf_range(0.05, 0.3) if night else rng.randf_range(0.6, 2.0)
		sky.sky_material = m
		env.background_mode = Environment.BG_SKY
		env.sky = sky
		env.ambient_light_source = Environment.AMBIENT_SOURCE_SKY
		env.reflected_light_source = Environment.REFLECTION_SOURCE_SKY
	else:
		env.background_mode = Environment.BG_COLOR
		env.background_color = Tex.rand_colour(rng, 0.0, 0.3 if night else 0.9)
		env.ambient_light_source = Environment.AMBIENT_SOURCE_COLOR
		env.ambient_light_color = Tex.rand_colour(rng, 0.3, 1.0)
		env.ambient_light_energy = rng.randf_range(0.05, 0.6)
	env.fog_enabled = rng.randf() < 0.5
	if env.fog_enabled:
		env.fog_light_color = Tex.rand_colour(rng, 0.2, 1.0)
		env.fog_density = rng.randf_range(0.002, 0.04)
		env.fog_sky_affect = rng.randf_range(0.0, 1.0)
		if rng.randf() < 0.3:
			env.fog_height = rng.randf_range(-2.0, 3.0)
			env.fog_height_density = rng.randf_range(0.05, 0.5)


func _lights() -> void:
	var night: bool = description["night"]
	var sun := DirectionalLight3D.new()
	sun.rotation = Vector3(-rng.randf_range(0.15, 1.4), rng.randf_range(0.0, TAU), 0.0)
	sun.light_color = Color.from_hsv(rng.randf_range(0.0, 0.65), rng.randf_range(0.0, 0.5), 1.0)
	sun.light_energy = rng.randf_range(0.05, 0.3) if night else rng.randf_range(0.6, 3.0)
	sun.shadow_enabled = rng.randf() < 0.75
	sun.directional_shadow_mode = DirectionalLight3D.SHADOW_PARALLEL_2_SPLITS
	sun.directional_shadow_max_distance = 60.0
	sun.light_angular_distance = rng.randf_range(0.0, 3.0)
	world.add_child(sun)
	var n := rng.randi_range(2, 6) if night else rng.randi_range(0, 4)
	for i in n:
		var l: Light3D
		if rng.randf() < 0.6:
			var o := OmniLight3D.new()
			o.omni_range = rng.randf_range(3.0, 14.0)
			l = o
		else:
			var s := SpotLight3D.new()
			s.spot_range = rng.randf_range(5.0, 20.0)
			s.spot_angle = rng.randf_range(15.0, 60.0)
			l = s
		l.light_color = Tex.rand_colour(rng, 0.8, 1.0)
		l.light_energy = rng.randf_range(0.5, 6.0)
		l.shadow_enabled = i == 0 and rng.randf() < 0.3
		world.add_child(l)
		var lp := Vector3(rng.randf_range(-14, 14), rng.randf_range(0.5, 6.0), rng.randf_range(-14, 14))
		l.look_at_from_position(lp, Vector3(rng.randf_range(-5, 5), 0.0, rng.randf_range(-5, 5)), Vector3.UP)
		if rng.randf() < 0.5:
			_anim(l, "light", {"e": l.light_energy, "w": rng.randf_range(0.5, 8.0), "ph": rng.randf() * TAU,
					"orbit": rng.randf() < 0.5, "r": rng.randf_range(1.0, 5.0), "c": l.position})


func _material(kind: String = "") -> BaseMaterial3D:
	var m := StandardMaterial3D.new()
	if kind == "":
		kind = ["textured", "textured", "textured", "plain", "metal", "glossy", "emissive", "transparent",
				"scissor"][rng.randi() % 9]
	m.roughness = rng.randf_range(0.3, 1.0)
	if rng.randf() < 0.15:
		m.texture_filter = BaseMaterial3D.TEXTURE_FILTER_NEAREST_WITH_MIPMAPS
	match kind:
		"textured":
			m.albedo_texture = Tex.to_texture(Tex.opaque(rng))
			var s := float([1, 1, 2, 3, 4, 6, 8][rng.randi() % 7])
			m.uv1_scale = Vector3(s, s, s)
			if rng.randf() < 0.3:
				m.metallic = rng.randf_range(0.3, 1.0)
				m.roughness = rng.randf_range(0.05, 0.5)
		"plain":
			m.albedo_color = Tex.rand_colour(rng)
		"metal":
			m.albedo_color = Tex.rand_colour(rng, 0.5, 1.0)
			m.metallic = 1.0
			m.roughness = rng.randf_range(0.02, 0.4)
		"glossy":
			m.albedo_color = Tex.rand_colour(rng)
			m.roughness = rng.randf_range(0.02, 0.2)
			m.metallic_specular = 1.0
			m.clearcoat_enabled = rng.randf() < 0.5
		"emissive":
			m.albedo_color = Tex.rand_colour(rng, 0.0, 0.3)
			m.emission_enabled = true
			m.emission = Tex.rand_colour(rng, 0.7, 1.0)
			m.emission_energy_multiplier = rng.randf_range(1.0, 12.0)
			if rng.randf() < 0.5:
				m.emission_texture = Tex.to_texture(Tex.opaque(rng, ["glyphs", "stripes", "checker", "fine_lines"][rng.randi() % 4]))
		"transparent":
			var c := Tex.rand_colour(rng, 0.4, 1.0)
			c.a = rng.randf_range(0.15, 0.7)
			m.albedo_color = c
			m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA
			m.roughness = rng.randf_range(0.0, 0.3)
			m.cull_mode = BaseMaterial3D.CULL_DISABLED
		"scissor":
			m.albedo_texture = Tex.to_texture(Tex.chainlink(rng))
			m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA_SCISSOR
			m.alpha_scissor_threshold = 0.5
			m.cull_mode = BaseMaterial3D.CULL_DISABLED
			var s := float(rng.randi_range(1, 6))
			m.uv1_scale = Vector3(s, s, s)
	if kind in ["textured", "emissive"] and rng.randf() < 0.1:
		_anim_material(m)
	return m


func _ground() -> void:
	var g := MeshInstance3D.new()
	var pm := PlaneMesh.new()
	pm.size = Vector2(140, 140)
	g.mesh = pm
	var m := _material("textured")
	var s := rng.randf_range(15.0, 70.0)
	m.uv1_scale = Vector3(s, s, s)
	m.metallic = 0.0
	m.roughness = rng.randf_range(0.4, 1.0)
	g.material_override = m
	world.add_child(g)


func _rand_pos(r_min: float, r_max: float) -> Vector3:
	var a := rng.randf() * TAU
	var r := sqrt(rng.randf_range(r_min * r_min, r_max * r_max))
	return Vector3(cos(a) * r, 0.0, sin(a) * r)


func _box(size: Vector3, pos: Vector3, mat: Material, parent: Node3D = null) -> MeshInstance3D:
	var mi := MeshInstance3D.new()
	var bm := BoxMesh.new()
	bm.size = size
	mi.mesh = bm
	mi.material_override = mat
	mi.position = pos
	(parent if parent != null else world).add_child(mi)
	return mi


func _cyl(r: float, h: float, pos: Vector3, mat: Material, parent: Node3D = null, sides: int = 8) -> MeshInstance3D:
	var mi := MeshInstance3D.new()
	var cm := CylinderMesh.new()
	cm.top_radius = r
	cm.bottom_radius = r
	cm.height = h
	cm.radial_segments = sides
	cm.rings = 1
	mi.mesh = cm
	mi.material_override = mat
	mi.position = pos
	(parent if parent != null else world).add_child(mi)
	return mi


## A thin cylinder from a to b.
func _wire(a: Vector3, b: Vector3, r: float, mat: Material, parent: Node3D = null) -> MeshInstance3D:
	var d := b - a
	var mi := _cyl(r, d.length(), (a + b) * 0.5, mat, parent, 6)
	var up := d.normalized()
	var side := up.cross(Vector3.FORWARD if absf(up.dot(Vector3.FORWARD)) < 0.9 else Vector3.RIGHT).normalized()
	mi.basis = Basis(side, up, side.cross(up))
	return mi


func _building() -> void:
	var size := Vector3(rng.randf_range(2, 12), rng.randf_range(2, 14), rng.randf_range(0.3, 8))
	var pos := _rand_pos(7, 26)
	pos.y = size.y * 0.5
	var b := _box(size, pos, _material("textured"))
	b.rotation.y = rng.randf() * TAU
	if rng.randf() < 0.5:  # windows
		var win := _material("emissive") if rng.randf() < 0.5 else _material("glossy")
		var rows := rng.randi_range(1, 5)
		var cols := rng.randi_range(1, 6)
		for r in rows:
			for c in cols:
				var wp := Vector3((c + 0.5) / cols - 0.5, (r + 0.5) / rows - 0.5, 0.5) * size
				wp.z += 0.01
				_box(Vector3(size.x / cols * 0.6, size.y / rows * 0.5, 0.02), wp, win, b)


func _prop() -> void:
	var mi := MeshInstance3D.new()
	var s := rng.randf_range(0.2, 2.2)
	match rng.randi() % 7:
		0:
			var m := BoxMesh.new()
			m.size = Vector3(rng.randf_range(0.3, 1.5), rng.randf_range(0.3, 1.5), rng.randf_range(0.3, 1.5)) * s
			mi.mesh = m
		1:
			var m := SphereMesh.new()
			m.radius = 0.5 * s
			m.height = s
			mi.mesh = m
		2:
			var m := CylinderMesh.new()
			m.top_radius = rng.randf_range(0.0, 0.5) * s
			m.bottom_radius = 0.5 * s
			m.height = rng.randf_range(0.5, 2.0) * s
			mi.mesh = m
		3:
			var m := TorusMesh.new()
			m.inner_radius = 0.3 * s
			m.outer_radius = rng.randf_range(0.35, 0.6) * s
			mi.mesh = m
		4:
			var m := CapsuleMesh.new()
			m.radius = 0.25 * s
			m.height = rng.randf_range(0.6, 2.0) * s
			mi.mesh = m
		5:
			var m := PrismMesh.new()
			m.size = Vector3(s, s, s * 0.5)
			mi.mesh = m
		_:
			var m := QuadMesh.new()  # a sign or card
			m.size = Vector2(rng.randf_range(0.5, 2.5), rng.randf_range(0.5, 2.0)) * s
			mi.mesh = m
	mi.material_override = _material()
	var pos := _rand_pos(0, 12)
	pos.y = rng.randf_range(0.0, 1.0) * s + (rng.randf_range(0.5, 4.0) if rng.randf() < 0.3 else 0.4 * s)
	mi.position = pos
	mi.rotation = Vector3(rng.randf_range(-0.4, 0.4), rng.randf() * TAU, rng.randf_range(-0.4, 0.4))
	world.add_child(mi)
	if rng.randf() < 0.45:
		_animate_node(mi)


func _animate_node(n: Node3D) -> void:
	var kind: String = ["spin", "orbit", "lissajous", "bob", "pendulum"][rng.randi() % 5]
	var fast := rng.randf() < 0.3
	_anim(n, kind, {
		"p": n.position, "r": n.rotation, "axis": Vector3(rng.randf_range(-1, 1), rng.randf_range(-1, 1), rng.randf_range(-1, 1)).normalized(),
		"w": rng.randf_range(1.5, 6.0) if fast else rng.randf_range(0.2, 1.5), "a": rng.randf_range(0.3, 3.0),
		"ph": rng.randf() * TAU, "f": Vector3(rng.randf_range(0.3, 1.5), rng.randf_range(0.3, 1.5), rng.randf_range(0.3, 1.5)),
	})


## Noise-displaced rock, a heightfield hill or a twisted ribbon: meshes built vertex by vertex.
func _generated_mesh() -> void:
	var st := SurfaceTool.new()
	var noise := FastNoiseLite.new()
	noise.seed = rng.randi()
	noise.frequency = rng.randf_range(0.3, 1.5)
	var mi := MeshInstance3D.new()
	var kind := rng.randi() % 3
	if kind == 0:  # rock
		var sm := SphereMesh.new()
		sm.radial_segments = 24
		sm.rings = 12
		var arr := sm.get_mesh_arrays()
		var verts: PackedVector3Array = arr[Mesh.ARRAY_VERTEX]
		var amp := rng.randf_range(0.1, 0.5)
		for i in verts.size():
			var v := verts[i]
			verts[i] = v * (1.0 + amp * noise.get_noise_3dv(v * 2.0))
		st.begin(Mesh.PRIMITIVE_TRIANGLES)
		var idx: PackedInt32Array = arr[Mesh.ARRAY_INDEX]
		var uvs: PackedVector2Array = arr[Mesh.ARRAY_TEX_UV]
		for i in idx:
			st.set_uv(uvs[i])
			st.add_vertex(verts[i])
		st.generate_normals()
		mi.mesh = st.commit()
		mi.scale = Vector3.ONE * rng.randf_range(0.5, 2.5)
	elif kind == 1:  # hill
		var n := 24
		var size := rng.randf_range(6.0, 16.0)
		var h := rng.randf_range(0.5, 3.0)
		st.begin(Mesh.PRIMITIVE_TRIANGLES)
		for z in n:
			for x in n:
				for q: Vector2i in [Vector2i(0, 0), Vector2i(1, 0), Vector2i(1, 1), Vector2i(0, 0), Vector2i(1, 1), Vector2i(0, 1)]:
					var u := float(x + q.x) / n
					var v := float(z + q.y) / n
					var edge := sin(u * PI) * sin(v * PI)
					st.set_uv(Vector2(u, v) * 4.0)
					st.add_vertex(Vector3((u - 0.5) * size, h * edge * (0.6 + 0.4 * noise.get_noise_2d(u * 8, v * 8)), (v - 0.5) * size))
		st.generate_normals()
		mi.mesh = st.commit()
	else:  # twisted ribbon
		var n := 64
		var length := rng.randf_range(3.0, 10.0)
		var width := rng.randf_range(0.1, 0.8)
		var turns := rng.randf_range(0.5, 4.0)
		st.begin(Mesh.PRIMITIVE_TRIANGLES)
		for i in n:
			var quad: Array[Vector3] = []
			for j in 2:
				var f := float(i + j) / n
				var ang := turns * TAU * f
				var c := Vector3(0.0, f * length, 0.3 * sin(f * 5.0))
				var off := Vector3(cos(ang), 0.0, sin(ang)) * width
				quad.append(c - off)
				quad.append(c + off)
			for q: int in [0, 1, 3, 0, 3, 2]:
				st.set_uv(Vector2(q % 2, (i + q / 2) * 8.0 / n))
				st.add_vertex(quad[q])
		st.generate_normals()
		mi.mesh = st.commit()
	var mat := _material(["textured", "metal", "glossy", "plain"][rng.randi() % 4])
	mat.cull_mode = BaseMaterial3D.CULL_DISABLED
	mi.material_override = mat
	mi.position = _rand_pos(2, 18)
	mi.rotation.y = rng.randf() * TAU
	world.add_child(mi)
	if kind == 2 and rng.randf() < 0.5:
		_anim(mi, "spin", {"p": mi.position, "r": mi.rotation, "axis": Vector3.UP, "w": rng.randf_range(0.3, 2.0), "a": 0.0, "ph": 0.0, "f": Vector3.ONE})


func _thin_material() -> BaseMaterial3D:
	return _material(["plain", "metal", "plain", "emissive"][rng.randi() % 4])


func _line_ends() -> Array[Vector3]:
	var a := _rand_pos(1, 12)
	var ang := rng.randf() * TAU
	var half := Vector3(cos(ang), 0.0, sin(ang)) * rng.randf_range(3.0, 12.0)
	return [a - half, a + half]


func _power_line() -> void:
	var ends := _line_ends()
	var poles := rng.randi_range(2, 5)
	var h := rng.randf_range(3.0, 8.0)
	var pole_mat := _thin_material()
	var wire_mat := _thin_material()
	var r_pole := rng.randf_range(0.03, 0.12)
	var r_wire := rng.randf_range(0.004, 0.025)
	var n_wires := rng.randi_range(1, 4)
	var sag := rng.randf_range(0.1, 1.2)
	var tops: Array[Vector3] = []
	for i in poles:
		var p := ends[0].lerp(ends[1], float(i) / (poles - 1))
		_cyl(r_pole, h, p + Vector3(0, h * 0.5, 0), pole_mat)
		_wire(p + Vector3(-0.6, h - 0.3, 0), p + Vector3(0.6, h - 0.3, 0), r_pole * 0.5, pole_mat)  # cross arm
		tops.append(p + Vector3(0, h - 0.25, 0))
	for i in poles - 1:
		for w in n_wires:
			var off := Vector3((float(w) / maxf(1.0, n_wires - 1) - 0.5) * 1.1, 0.0, 0.0)
			var segs := 8
			var prev := tops[i] + off
			for s in range(1, segs + 1):
				var f := float(s) / segs
				var p := (tops[i] + off).lerp(tops[i + 1] + off, f) - Vector3(0, sag * 4.0 * f * (1.0 - f), 0)
				_wire(prev, p, r_wire, wire_mat)
				prev = p


func _fence() -> void:
	var ends := _line_ends()
	var spacing := rng.randf_range(0.4, 2.0)
	var n := int(ends[0].distance_to(ends[1]) / spacing) + 1
	var h := rng.randf_range(0.6, 2.0)
	var mat := _thin_material()
	var r := rng.randf_range(0.015, 0.06)
	for i in n:
		var p := ends[0].lerp(ends[1], float(i) / maxi(1, n - 1))
		_cyl(r, h, p + Vector3(0, h * 0.5, 0), mat)
	for k in rng.randi_range(1, 3):
		var y := h * (0.3 + 0.65 * k / 3.0)
		_wire(ends[0] + Vector3(0, y, 0), ends[1] + Vector3(0, y, 0), r * rng.randf_range(0.3, 1.0), mat)


func _railing() -> void:
	var ends := _line_ends()
	var spacing := rng.randf_range(0.08, 0.25)
	var n := int(ends[0].distance_to(ends[1]) / spacing) + 1
	var h := rng.randf_range(0.8, 1.2)
	var mat := _thin_material()
	var r := rng.randf_range(0.008, 0.02)
	for i in n:
		var p := ends[0].lerp(ends[1], float(i) / maxi(1, n - 1))
		_cyl(r, h, p + Vector3(0, h * 0.5, 0), mat, null, 4)
	_wire(ends[0] + Vector3(0, h, 0), ends[1] + Vector3(0, h, 0), r * 2.5, mat)


func _chainlink_panel() -> void:
	var ends := _line_ends()
	var mi := MeshInstance3D.new()
	var q := QuadMesh.new()
	var length := ends[0].distance_to(ends[1])
	var h := rng.randf_range(1.0, 3.0)
	q.size = Vector2(length, h)
	mi.mesh = q
	var m := _material("scissor")
	m.uv1_scale = Vector3(length / rng.randf_range(0.3, 1.5), h / rng.randf_range(0.3, 1.5), 1.0)
	mi.material_override = m
	world.add_child(mi)
	mi.look_at_from_position((ends[0] + ends[1]) * 0.5 + Vector3(0, h * 0.5, 0), ends[1] + Vector3(0, h * 0.5, 0), Vector3.UP)
	mi.rotate_object_local(Vector3.UP, PI * 0.5)


func _foliage_material(img: Image) -> StandardMaterial3D:
	var m := StandardMaterial3D.new()
	m.albedo_texture = Tex.to_texture(img)
	m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA_SCISSOR
	m.alpha_scissor_threshold = 0.5
	m.cull_mode = BaseMaterial3D.CULL_DISABLED
	m.roughness = 0.9
	return m


func _grass_patch() -> void:
	var mat := _foliage_material(Tex.grass(rng))
	var centre := _rand_pos(0, 14)
	var radius := rng.randf_range(1.0, 4.0)
	var sway := rng.randf_range(0.03, 0.25)
	var w := rng.randf_range(1.0, 4.0)
	for i in rng.randi_range(8, 30):
		var card := Node3D.new()
		card.position = centre + Vector3(rng.randf_range(-radius, radius), 0.0, rng.randf_range(-radius, radius))
		card.rotation.y = rng.randf() * TAU
		world.add_child(card)
		var h := rng.randf_range(0.3, 1.2)
		for c in 2:  # crossed quads
			var mi := MeshInstance3D.new()
			var q := QuadMesh.new()
			q.size = Vector2(h * rng.randf_range(0.8, 1.5), h)
			mi.mesh = q
			mi.material_override = mat
			mi.position = Vector3(0, h * 0.5, 0)
			mi.rotation.y = c * PI * 0.5
			card.add_child(mi)
		_anim(card, "sway", {"r": card.rotation, "a": sway, "w": w, "ph": rng.randf() * TAU + card.position.x * 0.7})


func _tree() -> void:
	var base := _rand_pos(4, 20)
	var h := rng.randf_range(2.0, 6.0)
	var trunk_mat := _material("textured")
	_cyl(rng.randf_range(0.05, 0.25), h, base + Vector3(0, h * 0.5, 0), trunk_mat)
	var leaf_mat := _foliage_material(Tex.leaves(rng))
	var crown := Node3D.new()
	crown.position = base + Vector3(0, h, 0)
	world.add_child(crown)
	var cr := rng.randf_range(0.8, 2.5)
	for i in rng.randi_range(10, 28):
		var mi := MeshInstance3D.new()
		var q := QuadMesh.new()
		var s := rng.randf_range(0.6, 1.6)
		q.size = Vector2(s, s)
		mi.mesh = q
		mi.material_override = leaf_mat
		mi.position = Vector3(rng.randf_range(-cr, cr), rng.randf_range(-cr * 0.6, cr * 0.6), rng.randf_range(-cr, cr))
		mi.rotation = Vector3(rng.randf_range(-1, 1), rng.randf() * TAU, rng.randf_range(-1, 1))
		crown.add_child(mi)
	_anim(crown, "sway", {"r": crown.rotation, "a": rng.randf_range(0.01, 0.06), "w": rng.randf_range(0.5, 2.0), "ph": rng.randf() * TAU})


func _label() -> void:
	var l := Label3D.new()
	var text: String = WORDS[rng.randi() % WORDS.size()]
	if rng.randf() < 0.3:
		text += "\n" + WORDS[rng.randi() % WORDS.size()]
	l.text = text
	l.font_size = rng.randi_range(16, 96)
	l.pixel_size = rng.randf_range(0.003, 0.03)
	l.modulate = Tex.rand_colour(rng, 0.6, 1.0)
	l.outline_size = rng.randi_range(0, 12)
	l.outline_modulate = Tex.rand_colour(rng, 0.0, 0.3)
	l.shaded = rng.randf() < 0.5
	l.double_sided = true
	l.alpha_cut = Label3D.ALPHA_CUT_DISCARD if rng.randf() < 0.5 else Label3D.ALPHA_CUT_DISABLED
	l.billboard = BaseMaterial3D.BILLBOARD_ENABLED if rng.randf() < 0.2 else BaseMaterial3D.BILLBOARD_DISABLED
	var p := _rand_pos(1, 14)
	p.y = rng.randf_range(0.3, 4.0)
	l.position = p
	l.rotation.y = rng.randf() * TAU
	world.add_child(l)
	if rng.randf() < 0.3:
		_animate_node(l)


func _decal() -> void:
	var d := Decal.new()
	d.texture_albedo = Tex.to_texture(Tex.decal(rng))
	var s := rng.randf_range(0.8, 4.0)
	d.size = Vector3(s, 1.0, s)
	d.modulate = Tex.rand_colour(rng, 0.6, 1.0)
	d.albedo_mix = rng.randf_range(0.7, 1.0)
	if rng.randf() < 0.3:
		d.texture_emission = d.texture_albedo
		d.emission_energy = rng.randf_range(0.5, 4.0)
	d.position = _rand_pos(0, 14) + Vector3(0, 0.3, 0)
	d.rotation.y = rng.randf() * TAU
	world.add_child(d)


func _particles() -> void:
	var p := CPUParticles3D.new()
	if "use_fixed_seed" in p:
		p.set("use_fixed_seed", true)
		p.set("seed", rng.randi())
	var q := QuadMesh.new()
	var m := StandardMaterial3D.new()
	m.billboard_mode = BaseMaterial3D.BILLBOARD_PARTICLES
	m.vertex_color_use_as_albedo = true
	m.shading_mode = BaseMaterial3D.SHADING_MODE_UNSHADED
	var kind := rng.randi() % 3
	p.position = _rand_pos(0, 12) + Vector3(0, rng.randf_range(0.2, 2.0), 0)
	match kind:
		0:  # sparks: small, bright, fast, falling
			q.size = Vector2.ONE * rng.randf_range(0.02, 0.08)
			m.emission_enabled = true
			m.emission = Tex.rand_colour(rng, 0.8, 1.0)
			m.emission_energy_multiplier = rng.randf_range(2.0, 10.0)
			p.amount = rng.randi_range(40, 200)
			p.lifetime = rng.randf_range(0.5, 1.5)
			p.direction = Vector3.UP
			p.spread = rng.randf_range(15, 60)
			p.initial_velocity_min = 2.0
			p.initial_velocity_max = 6.0
			p.color = m.emission
		1:  # smoke: big, soft, alpha-blended
			q.size = Vector2.ONE * rng.randf_range(0.4, 1.5)
			m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA
			m.albedo_texture = Tex.to_texture(Tex.decal(rng))
			p.amount = rng.randi_range(10, 40)
			p.lifetime = rng.randf_range(2.0, 5.0)
			p.direction = Vector3.UP
			p.spread = 20
			p.gravity = Vector3(rng.randf_range(-0.5, 0.5), 0.3, 0.0)
			p.initial_velocity_min = 0.2
			p.initial_velocity_max = 0.8
			var c := Tex.rand_colour(rng, 0.4, 1.0)
			c.a = rng.randf_range(0.2, 0.6)
			p.color = c
		_:  # snow / dust over a box
			q.size = Vector2.ONE * rng.randf_range(0.015, 0.05)
			p.amount = rng.randi_range(200, 800)
			p.lifetime = rng.randf_range(3.0, 6.0)
			p.emission_shape = CPUParticles3D.EMISSION_SHAPE_BOX
			p.emission_box_extents = Vector3(10, 4, 10)
			p.gravity = Vector3(0, -rng.randf_range(0.2, 1.5), 0)
			p.direction = Vector3(1, 0, 0)
			p.initial_velocity_min = 0.0
			p.initial_velocity_max = 0.5
			p.color = Tex.rand_colour(rng, 0.7, 1.0)
			p.position.y = 4.0
	q.material = m
	p.mesh = q
	p.preprocess = p.lifetime
	world.add_child(p)


func _neon() -> void:
	var m := _material("emissive")
	var a := _rand_pos(2, 16) + Vector3(0, rng.randf_range(0.2, 4.0), 0)
	var b := a + Vector3(rng.randf_range(-4, 4), rng.randf_range(-1, 1), rng.randf_range(-4, 4))
	var w := _wire(a, b, rng.randf_range(0.01, 0.05), m)
	if rng.randf() < 0.5:
		_anim(w, "blink", {"m": m, "e": m.emission_energy_multiplier, "w": rng.randf_range(0.5, 6.0), "ph": rng.randf() * TAU})


## A rotor with thin blades spinning fast (hard for motion vectors and history).
func _fan() -> void:
	var hub := Node3D.new()
	hub.position = _rand_pos(2, 12) + Vector3(0, rng.randf_range(1.0, 5.0), 0)
	hub.rotation.y = rng.randf() * TAU
	world.add_child(hub)
	var rotor := Node3D.new()
	hub.add_child(rotor)
	var mat := _thin_material()
	var blades := rng.randi_range(2, 8)
	var length := rng.randf_range(0.6, 3.0)
	for i in blades:
		var ang := TAU * i / blades
		var tip := Vector3(cos(ang), sin(ang), 0.0) * length
		_wire(Vector3.ZERO, tip, rng.randf_range(0.01, 0.06), mat, rotor)
	_cyl(0.05, h_or(length), Vector3(0, -h_or(length) * 0.5, 0), mat, hub)
	_anim(rotor, "fan", {"w": rng.randf_range(2.0, 20.0) * (1 if rng.randf() < 0.5 else -1)})


func h_or(length: float) -> float:
	return clampf(length * 1.5, 0.5, 5.0)


func _anim(n: Node, kind: String, params: Dictionary) -> void:
	params["node"] = n
	params["kind"] = kind
	anims.append(params)


func _anim_material(m: BaseMaterial3D) -> void:
	# scrolling texture: writes no motion vectors (a known gap of real games too)
	anims.append({"kind": "scroll", "m": m, "v": Vector3(rng.randf_range(-0.5, 0.5), rng.randf_range(-0.5, 0.5), 0.0)})


# --- camera -------------------------------------------------------------------------------------

func _camera_path() -> void:
	camera.fov = rng.randf_range(45.0, 85.0)
	camera.near = 0.05
	camera.far = 250.0
	var length := frames / fps * time_scale
	description["length_s"] = length
	var cuts: Array[float] = [0.0]
	if rng.randf() < 0.35 and frames >= 8:
		for c in rng.randi_range(1, 2):
			cuts.append(roundf(rng.randf_range(0.25, 0.85) * frames) / fps * time_scale)
	cuts.sort()
	var modes: Array[String] = []
	for t0 in cuts:
		var mode: String = CAMERA_MODES[rng.randi() % CAMERA_MODES.size()]
		modes.append(mode)
		# the camera looks into the populated middle of the world (objects lie within ~12 units)
		var focus := _rand_pos(0, 7) + Vector3(0, rng.randf_range(0.3, 2.5), 0)
		var pos := focus + _rand_pos(2.5, 12) + Vector3(0, rng.randf_range(0.3, 4.0), 0)
		var dir := Vector3(focus.x - pos.x, 0.0, focus.z - pos.z).normalized()
		var speed := 0.0
		match mode:
			"slow":
				speed = rng.randf_range(0.3, 1.5)
			"fast":
				speed = rng.randf_range(4.0, 12.0)
			"strafe":
				speed = rng.randf_range(1.0, 5.0)
		segments.append({"t0": t0, "mode": mode, "focus": focus, "pos": pos, "dir": dir, "speed": speed,
				"w": rng.randf_range(0.1, 1.0) * (1.0 if rng.randf() < 0.5 else -1.0),
				"radius": rng.randf_range(3.0, 12.0), "height": rng.randf_range(0.4, 4.0),
				"shake": rng.randf_range(0.0, 0.02) if rng.randf() < 0.3 else 0.0, "ph": rng.randf() * TAU})
	description["camera"] = modes
	description["cuts"] = cuts.size() - 1
	description["length_s"] = length


func _segment(t: float) -> int:
	var s := 0
	for i in segments.size():
		if t >= segments[i]["t0"] - 1e-6:
			s = i
	return s


func _camera_pose(seg: Dictionary, t: float) -> Transform3D:
	var focus: Vector3 = seg["focus"]
	var pos: Vector3 = seg["pos"]
	var dir: Vector3 = seg["dir"]
	var speed: float = seg["speed"]
	var w: float = seg["w"]
	var eye := pos
	var target := focus
	match seg["mode"]:
		"still":
			pass
		"slow":
			eye = pos + dir * speed * t
			target = focus + Vector3(sin(0.3 * t), 0.0, cos(0.3 * t)) * 0.5
		"fast":  # flies through the middle of the world half-way through the sequence
			var length: float = description["length_s"]
			eye = focus - dir * speed * length * 0.5 + Vector3(0, pos.y - focus.y, 0) + dir * speed * t
			target = eye + (dir.rotated(Vector3.UP, 0.5 * sin(w * t)) + Vector3(0, -0.15, 0)) * 10.0
		"orbit":
			var a: float = seg["ph"] + w * 1.5 * t
			var r: float = seg["radius"]
			eye = focus + Vector3(cos(a) * r, seg["height"], sin(a) * r)
		"strafe":  # sideways past the focus, looking at the world's middle
			var length: float = description["length_s"]
			var side := dir.cross(Vector3.UP)
			eye = pos + side * speed * (t - 0.5 * length)
			target = eye + (focus - pos)
		"pan":
			var f0 := (focus - pos)
			f0.y = 0.0
			var yaw := w * 1.2 * t
			target = pos + f0.rotated(Vector3.UP, yaw) + Vector3(0, 0.5 * sin(0.7 * t), 0)
	var shake: float = seg["shake"]
	if shake > 0.0:
		eye += Vector3(sin(13.0 * t + seg["ph"]), sin(17.0 * t), cos(11.0 * t)) * shake
	eye.y = maxf(eye.y, 0.3)
	var fwd := (target - eye)
	if fwd.length() < 1e-3:
		fwd = Vector3.FORWARD
	var up := Vector3.UP if absf(fwd.normalized().dot(Vector3.UP)) < 0.98 else Vector3.BACK
	return Transform3D.IDENTITY.looking_at(fwd, up).translated(eye)


func _animate(t: float) -> void:
	if segments.is_empty():
		return
	var si := _segment(t)
	var seg := segments[si]
	camera.transform = _camera_pose(seg, t - float(seg["t0"]))
	if si != _last_segment:
		if _last_segment >= 0 and _ns != null:
			_ns.mark_camera_cut()
		_last_segment = si
	for a in anims:
		var kind: String = a["kind"]
		if kind == "scroll":
			(a["m"] as BaseMaterial3D).uv1_offset = a["v"] * t
			continue
		if kind == "blink":
			var m: BaseMaterial3D = a["m"]
			m.emission_energy_multiplier = a["e"] * (1.0 if sin(a["w"] * t + a["ph"]) > 0.0 else 0.15)
			continue
		var n := a["node"] as Node3D
		if n == null:
			continue
		match kind:
			"spin":
				n.rotation = a["r"]
				n.rotate(a["axis"], a["w"] * t)
			"orbit":
				var ang: float = a["w"] * t + a["ph"]
				n.position = a["p"] + Vector3(cos(ang) - cos(a["ph"]), 0.0, sin(ang) - sin(a["ph"])) * a["a"]
			"lissajous":
				var f: Vector3 = a["f"]
				n.position = a["p"] + Vector3(sin(f.x * a["w"] * t + a["ph"]), 0.3 * sin(f.y * a["w"] * t),
						sin(f.z * a["w"] * t)) * a["a"] * 0.5
			"bob":
				n.position = a["p"] + Vector3(0.0, 0.4 * a["a"] * sin(a["w"] * t + a["ph"]), 0.0)
			"pendulum":
				n.rotation = a["r"] + Vector3(0.6 * sin(a["w"] * t + a["ph"]), 0.0, 0.0)
			"sway":
				n.rotation = a["r"] + Vector3(0.5 * a["a"] * sin(a["w"] * t * 1.3 + a["ph"]), 0.0, a["a"] * sin(a["w"] * t + a["ph"]))
			"fan":
				n.rotation = Vector3(0.0, 0.0, a["w"] * t)
			"light":
				var l := n as Light3D
				l.light_energy = a["e"] * (0.6 + 0.4 * sin(a["w"] * t + a["ph"]))
				if a["orbit"]:
					var ang: float = 0.5 * a["w"] * t + a["ph"]
					l.position = a["c"] + Vector3(cos(ang), 0.0, sin(ang)) * a["r"]
