extends EvalLevel
## Test hall at dusk: fast motion, disocclusion, transparency, particles, emissive surfaces, fog.
##
## Three carts race round a circular track (9 m/s) behind a ring of pillars, so the orbiting
## camera keeps uncovering what the pillars and carts hid; a five-blade fan spins at 2.5 turns/s
## (wagon-wheel aliasing at 30 fps); chrome pendulums swing in front of an alpha-blended glass
## wall; a glass cabinet and a glass sphere; a grinder throws emissive sparks (GPUParticles3D,
## fixed seed) and a vent puffs smoke (CPUParticles3D, fixed seed); neon strips, lamps and a
## glowing sign; dusk sky, depth and height fog, ACES tonemapping, glow.
##
## Camera: orbits the track (radius 14 m, 9 degrees/s) while rising and falling and looking at the
## centre; frame-locked (see EvalLevel).

const TRACK_R := 7.0
const CART_SPEED := 1.3  # rad/s round the track
const FAN_RPS := 2.5
const ORBIT_PERIOD := 40.0

var _carts: Array[Node3D] = []
var _fan: Node3D
var _pendulums: Array[Node3D] = []
var _door: Node3D
var _sphere: Node3D


func _seed() -> int:
	return 271828


func _build() -> void:
	_floor()
	_track()
	_pillars()
	_fan_wall()
	_hall()
	_glass()
	_particles()
	_lights()


func _animate(t: float) -> void:
	var a := TAU * t / ORBIT_PERIOD + 0.6
	var r := 14.0 + 1.0 * sin(TAU * t / 13.0)
	var eye := Vector3(r * cos(a), 3.2 + 1.2 * sin(TAU * t / 9.0), r * sin(a))
	var target := Vector3(0.0, 1.2, 0.0)
	camera().transform = Transform3D(Basis.looking_at(target - eye, Vector3.UP), eye)
	for i in _carts.size():
		var ca := -CART_SPEED * t + TAU * i / _carts.size() + 0.4 * sin(t * 0.7 + i)
		_carts[i].transform = Transform3D(Basis(Vector3.UP, -ca), Vector3(TRACK_R * cos(ca), 0.0, TRACK_R * sin(ca)))
	_fan.rotation.z = TAU * FAN_RPS * t
	for i in _pendulums.size():
		_pendulums[i].rotation.x = 0.7 * sin(TAU * t / (1.6 + 0.25 * i) + i)
	_door.position.x = 3.0 * sin(TAU * t / 6.0)
	_sphere.rotation.y = t * 1.1


func _floor() -> void:
	var pm := PlaneMesh.new()
	pm.size = Vector2(120.0, 120.0)
	var concrete := EvalTextures.noise(256, 77, 0.05, Color(0.22, 0.22, 0.22), Color(0.42, 0.41, 0.4), 5)
	var fm := textured(concrete, Vector2(40.0, 40.0), 0.55)
	add_mesh(pm, fm, Transform3D())
	# painted hazard border and grid lines
	var hazard := EvalTextures.diagonal_stripes(128, 4, Color(0.9, 0.7, 0.05), Color(0.05, 0.05, 0.05))
	var ring := TorusMesh.new()
	ring.inner_radius = TRACK_R + 1.5
	ring.outer_radius = TRACK_R + 1.9
	ring.rings = 96
	ring.ring_segments = 4
	var hm := textured(hazard, Vector2(80.0, 1.0), 0.6)
	add_mesh(ring, hm, Transform3D(Basis().scaled(Vector3(1.0, 0.02, 1.0)), Vector3(0.0, 0.005, 0.0)))
	var paint := mat(Color(0.85, 0.85, 0.8), 0.6)
	for k in 13:
		box(Vector3(-24.0 + k * 4.0, 0.004, 0.0), Vector3(0.08, 0.008, 48.0), paint)
		box(Vector3(0.0, 0.004, -24.0 + k * 4.0), Vector3(48.0, 0.008, 0.08), paint)


func _track() -> void:
	# track surface and neon kerbs
	var track := TorusMesh.new()
	track.inner_radius = TRACK_R - 1.0
	track.outer_radius = TRACK_R + 1.0
	track.rings = 96
	track.ring_segments = 4
	add_mesh(track, mat(Color(0.08, 0.08, 0.09), 0.35, 0.2),
			Transform3D(Basis().scaled(Vector3(1.0, 0.03, 1.0)), Vector3(0.0, 0.02, 0.0)))
	for rr: float in [TRACK_R - 1.05, TRACK_R + 1.05]:
		var kerb := TorusMesh.new()
		kerb.inner_radius = rr - 0.04
		kerb.outer_radius = rr + 0.04
		kerb.rings = 128
		kerb.ring_segments = 6
		add_mesh(kerb, emissive(Color(0.1, 0.6, 1.0) if rr < TRACK_R else Color(1.0, 0.2, 0.5), 5.0),
				Transform3D(Basis(), Vector3(0.0, 0.05, 0.0)))
	var liveries: Array[Color] = [Color(0.85, 0.1, 0.08), Color(0.95, 0.8, 0.1), Color(0.1, 0.35, 0.9)]
	for i in 3:
		var cart := Node3D.new()
		add_child(cart)
		_carts.append(cart)
		var body := textured(EvalTextures.stripes(64, 4, liveries[i], Color(0.95, 0.95, 0.95)), Vector2(2.0, 1.0), 0.2, 0.6)
		box(Vector3(0.0, 0.45, 0.0), Vector3(0.9, 0.5, 1.8), body, cart)
		box(Vector3(0.0, 0.85, 0.15), Vector3(0.7, 0.32, 0.8), glass(Color(0.2, 0.3, 0.35, 0.45)), cart)
		for sx: float in [-0.3, 0.3]:  # lamps front (white) and back (red), both directions of travel
			box(Vector3(sx, 0.5, -0.91), Vector3(0.16, 0.08, 0.02), emissive(Color(1.0, 0.95, 0.85), 8.0), cart)
			box(Vector3(sx, 0.5, 0.91), Vector3(0.16, 0.08, 0.02), emissive(Color(1.0, 0.05, 0.02), 6.0), cart)
		for wz: float in [-0.6, 0.6]:
			for wx: float in [-0.48, 0.48]:
				var wheel := cylinder(Vector3(wx, 0.2, wz), 0.2, 0.1, mat(Color(0.05, 0.05, 0.05), 0.8), 12, cart)
				wheel.rotation.z = PI * 0.5
		cylinder(Vector3(0.3, 1.3, 0.6), 0.008, 0.9, mat(Color(0.8, 0.8, 0.8), 0.3, 1.0), 4, cart)  # antenna


func _pillars() -> void:
	var conc := textured(EvalTextures.noise(128, 78, 0.08, Color(0.45, 0.44, 0.42), Color(0.62, 0.6, 0.58), 3),
			Vector2(2.0, 4.0), 0.8)
	var steel := mat(Color(0.2, 0.22, 0.25), 0.3, 0.9)
	for k in 10:
		var a := TAU * k / 10.0
		var p := Vector3(10.0 * cos(a), 0.0, 10.0 * sin(a))
		box(p + Vector3(0.0, 3.5, 0.0), Vector3(0.45, 7.0, 0.45), conc)
		var lamp := box(p + Vector3(0.0, 5.0, 0.0) - p.normalized() * 0.26, Vector3(0.3, 0.1, 0.06),
				emissive(Color(1.0, 0.85, 0.6), 10.0))
		lamp.rotation.y = -a
	# ring beam and roof trusses overhead (thin steel against the sky)
	for k in 10:
		var a0 := TAU * k / 10.0
		var a1 := TAU * (k + 1) / 10.0
		var p0 := Vector3(10.0 * cos(a0), 7.0, 10.0 * sin(a0))
		var p1 := Vector3(10.0 * cos(a1), 7.0, 10.0 * sin(a1))
		beam(p0, p1, 0.3, steel)
		beam(p0, Vector3(0.0, 9.0, 0.0), 0.12, steel)
		beam(p0, (p1 + Vector3(0.0, 9.0, 0.0)) * 0.5, 0.05, steel)
	# a sliding steel door panel with a perforated pattern between two pillars
	_door = Node3D.new()
	_door.position = Vector3(0.0, 0.0, -11.5)
	add_child(_door)
	var holes := cutout(EvalTextures.grate(64, 4, 6, Color(0.5, 0.52, 0.55)), Vector2(8.0, 10.0))
	holes.metallic = 0.8
	holes.roughness = 0.3
	var panel := QuadMesh.new()
	panel.size = Vector2(3.0, 3.8)
	add_mesh(panel, holes, Transform3D(Basis(), Vector3(0.0, 1.9, 0.0)), _door)
	beam(Vector3(-8.0, 3.9, -11.5), Vector3(8.0, 3.9, -11.5), 0.1, steel)


func _fan_wall() -> void:
	# brick wall behind the fan, with a lit sign
	var wall_mat := textured(EvalTextures.bricks(256, 16, 4, 2, Color(0.45, 0.2, 0.14), Color(0.5, 0.48, 0.45), 7),
			Vector2(16.0, 5.0), 0.85)
	box(Vector3(-17.0, 3.5, 0.0), Vector3(0.4, 7.0, 20.0), wall_mat)
	_fan = Node3D.new()
	_fan.transform = Transform3D(Basis(Vector3.UP, PI * 0.5), Vector3(-16.5, 3.2, 3.0))
	add_child(_fan)
	var steel := mat(Color(0.7, 0.72, 0.75), 0.2, 1.0)
	for k in 5:
		var blade := box(Vector3.ZERO, Vector3(0.35, 1.4, 0.03), steel, _fan)
		blade.transform = Transform3D(Basis(Vector3.BACK, TAU * k / 5.0) * Basis(Vector3.UP, 0.4),
				Basis(Vector3.BACK, TAU * k / 5.0) * Vector3(0.0, 0.8, 0.0))
	var hub := SphereMesh.new()
	hub.radius = 0.2
	hub.height = 0.3
	add_mesh(hub, steel, Transform3D(), _fan)
	# guard: concentric rings and spokes in front of the blades (thin, static)
	var guard := Node3D.new()
	guard.transform = _fan.transform.translated_local(Vector3(0.0, 0.0, 0.25))
	add_child(guard)
	for rr: float in [0.5, 0.9, 1.3, 1.65]:
		var ring := TorusMesh.new()
		ring.inner_radius = rr - 0.012
		ring.outer_radius = rr + 0.012
		ring.rings = 64
		ring.ring_segments = 4
		add_mesh(ring, steel, Transform3D(Basis(Vector3.RIGHT, PI * 0.5), Vector3.ZERO), guard)
	for k in 12:
		var a := TAU * k / 12.0
		beam(Vector3.ZERO, Vector3(cos(a), sin(a), 0.0) * 1.66, 0.02, steel, guard)
	box(Vector3(-16.75, 6.0, -5.0), Vector3(0.1, 1.0, 5.0), mat(Color(0.02, 0.02, 0.02), 0.4))
	var sign := label("TEST HALL B  -  KEEP CLEAR", Vector3(-16.69, 6.0, -5.0), 90.0, 64, 0.005, Color(0.3, 4.0, 5.0))
	sign.shaded = false


func _hall() -> void:
	# back and front walls of corrugated sheet (fine vertical ribs), a roller door, stacked crates
	var ribs := textured(EvalTextures.stripes(64, 8, Color(0.55, 0.58, 0.6), Color(0.3, 0.32, 0.34), true, 0.5),
			Vector2(34.0 / 0.6, 1.0), 0.35, 0.7)
	for z: float in [-17.0, 17.0]:
		box(Vector3(-1.0, 3.5, z), Vector3(32.0, 7.0, 0.2), ribs)
	var door := textured(EvalTextures.stripes(64, 16, Color(0.7, 0.5, 0.1), Color(0.35, 0.25, 0.05), false, 0.6),
			Vector2(1.0, 3.0), 0.5, 0.5)
	box(Vector3(6.0, 2.0, -16.85), Vector3(5.0, 4.0, 0.1), door)
	label("GATE 3", Vector3(6.0, 4.5, -16.74), 0.0, 64, 0.006, Color(0.95, 0.9, 0.8))
	var crate := BoxMesh.new()
	crate.size = Vector3(1.2, 1.2, 1.2)
	var wood := textured(EvalTextures.planks(128, 6, 21), Vector2.ONE, 0.8)
	var xforms: Array[Transform3D] = []
	for k in 14:
		var col := k % 5
		var lvl := k / 5
		xforms.append(Transform3D(Basis(Vector3.UP, _rng.randf_range(-0.15, 0.15)),
				Vector3(-12.0 + col * 1.3, 0.6 + lvl * 1.2, -15.8)))
	multimesh(crate, wood, xforms)
	# an overhead crane rail with a hook block travelling along it
	var steel := mat(Color(0.8, 0.55, 0.1), 0.4, 0.6)
	beam(Vector3(-16.0, 6.4, -13.0), Vector3(15.0, 6.4, -13.0), 0.35, steel)
	tube(catenary(Vector3(-16.0, 5.8, -16.6), Vector3(15.0, 5.8, -16.6), 0.6, 24), 0.03, mat(Color(0.05, 0.05, 0.05), 0.5), 5)


func _glass() -> void:
	var frame_mat := mat(Color(0.1, 0.1, 0.11), 0.3, 0.8)
	# glass wall: six panes with thin frames, on the far side of the track
	var pane := glass(Color(0.55, 0.75, 0.8, 0.28))
	for k in 6:
		var z := -7.5 + k * 2.5
		box(Vector3(15.0, 2.0, z), Vector3(0.03, 3.6, 2.4), pane)
		box(Vector3(15.0, 2.0, z - 1.25), Vector3(0.08, 4.0, 0.08), frame_mat)
	box(Vector3(15.0, 2.0, 7.5 - 1.25 + 2.5), Vector3(0.08, 4.0, 0.08), frame_mat)
	box(Vector3(15.0, 3.9, 0.0), Vector3(0.1, 0.1, 15.0), frame_mat)
	box(Vector3(15.0, 0.1, 0.0), Vector3(0.1, 0.2, 15.0), frame_mat)
	# behind the glass: shelves of coloured crates (seen through the blended panes)
	var crate := BoxMesh.new()
	crate.size = Vector3(0.6, 0.4, 0.6)
	var xforms: Array[Transform3D] = []
	var colors := PackedColorArray()
	for k in 60:
		xforms.append(Transform3D(Basis(), Vector3(16.5 + (k % 3) * 0.7, 0.2 + ((k / 3) % 4) * 0.9, -7.0 + (k / 12) * 3.0)))
		colors.append(Color.from_hsv(_rng.randf(), 0.7, 0.8))
	var crate_mat := mat(Color.WHITE, 0.6)
	crate_mat.vertex_color_use_as_albedo = true
	multimesh(crate, crate_mat, xforms, self, colors)
	# pendulums: chrome balls on thin rods, swinging in front of the glass
	for i in 4:
		var pivot := Node3D.new()
		pivot.position = Vector3(13.5, 4.5, -4.5 + i * 3.0)
		add_child(pivot)
		_pendulums.append(pivot)
		beam(Vector3.ZERO, Vector3(0.0, -3.3, 0.0), 0.02, frame_mat, pivot)
		var ball := SphereMesh.new()
		ball.radius = 0.3
		ball.height = 0.6
		add_mesh(ball, mat(Color(0.95, 0.95, 0.97), 0.04, 1.0), Transform3D(Basis(), Vector3(0.0, -3.5, 0.0)), pivot)
	box(Vector3(13.5, 4.5, 0.0), Vector3(0.1, 0.1, 11.0), frame_mat)
	# glass cabinet with an emissive core, and a rotating glass sphere
	box(Vector3(4.0, 0.9, 13.0), Vector3(1.4, 1.8, 1.4), glass(Color(0.8, 0.9, 1.0, 0.22)))
	box(Vector3(4.0, 0.9, 13.0), Vector3(0.3, 1.0, 0.3), emissive(Color(1.0, 0.5, 0.1), 4.0))
	_sphere = Node3D.new()
	_sphere.position = Vector3(-5.0, 1.3, 12.0)
	add_child(_sphere)
	var sm := SphereMesh.new()
	sm.radius = 1.0
	sm.height = 2.0
	add_mesh(sm, glass(Color(0.3, 1.0, 0.6, 0.3)), Transform3D(), _sphere)
	var core := TorusMesh.new()
	core.inner_radius = 0.45
	core.outer_radius = 0.55
	add_mesh(core, mat(Color(0.9, 0.3, 0.1), 0.2, 1.0), Transform3D(Basis(Vector3.RIGHT, 1.2), Vector3.ZERO), _sphere)


func _particles() -> void:
	# grinder on a bench throwing sparks (GPU particles, fixed seed: the same sparks every run)
	box(Vector3(-9.0, 0.5, 9.0), Vector3(1.6, 1.0, 0.8), mat(Color(0.25, 0.3, 0.2), 0.6, 0.4))
	cylinder(Vector3(-9.0, 1.2, 9.0), 0.25, 0.1, mat(Color(0.4, 0.4, 0.42), 0.5, 0.7), 16).rotation.x = PI * 0.5
	var sparks := GPUParticles3D.new()
	sparks.position = Vector3(-9.0, 1.25, 9.3)
	sparks.amount = 600
	sparks.lifetime = 0.9
	sparks.preprocess = 1.0
	sparks.use_fixed_seed = true
	sparks.seed = 4242
	sparks.visibility_aabb = AABB(Vector3(-5, -2, -5), Vector3(10, 6, 10))
	var pm := ParticleProcessMaterial.new()
	pm.direction = Vector3(0.0, 0.6, 1.0)
	pm.spread = 25.0
	pm.initial_velocity_min = 4.0
	pm.initial_velocity_max = 7.0
	pm.gravity = Vector3(0.0, -9.8, 0.0)
	pm.collision_mode = ParticleProcessMaterial.COLLISION_DISABLED
	sparks.process_material = pm
	var spark_mesh := QuadMesh.new()
	spark_mesh.size = Vector2(0.045, 0.045)
	var spark_mat := emissive(Color(1.0, 0.45, 0.1), 16.0)
	spark_mat.shading_mode = BaseMaterial3D.SHADING_MODE_UNSHADED
	spark_mat.albedo_color = Color(1.0, 0.7, 0.3)
	spark_mat.billboard_mode = BaseMaterial3D.BILLBOARD_PARTICLES
	spark_mesh.material = spark_mat
	sparks.draw_pass_1 = spark_mesh
	add_child(sparks)
	# steam vent: soft, alpha-blended smoke puffs (CPU particles, fixed seed)
	cylinder(Vector3(9.0, 0.3, 9.0), 0.5, 0.6, mat(Color(0.3, 0.3, 0.3), 0.5, 0.8), 16)
	var smoke := CPUParticles3D.new()
	smoke.position = Vector3(9.0, 0.7, 9.0)
	smoke.amount = 64
	smoke.lifetime = 3.0
	smoke.preprocess = 3.0
	smoke.use_fixed_seed = true
	smoke.seed = 99
	smoke.direction = Vector3.UP
	smoke.spread = 12.0
	smoke.initial_velocity_min = 1.0
	smoke.initial_velocity_max = 1.6
	smoke.gravity = Vector3(0.3, 0.2, 0.0)
	smoke.scale_amount_min = 0.8
	smoke.scale_amount_max = 1.6
	var curve := Curve.new()
	curve.add_point(Vector2(0.0, 0.3))
	curve.add_point(Vector2(1.0, 1.5))
	smoke.scale_amount_curve = curve
	var puff := QuadMesh.new()
	puff.size = Vector2(1.0, 1.0)
	var puff_mat := StandardMaterial3D.new()
	puff_mat.albedo_texture = _puff_texture()
	puff_mat.albedo_color = Color(0.75, 0.76, 0.8, 0.9)
	puff_mat.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA
	puff_mat.billboard_mode = BaseMaterial3D.BILLBOARD_PARTICLES
	puff_mat.vertex_color_use_as_albedo = true
	puff.material = puff_mat
	smoke.mesh = puff
	var fade := Gradient.new()
	fade.set_color(0, Color(1, 1, 1, 0.0))
	fade.set_color(1, Color(1, 1, 1, 0.0))
	fade.add_point(0.15, Color(1, 1, 1, 1.0))
	smoke.color_ramp = fade
	add_child(smoke)


func _puff_texture() -> ImageTexture:
	var img := Image.create_empty(64, 64, false, Image.FORMAT_RGBA8)
	for y in 64:
		for x in 64:
			var d := Vector2(x - 31.5, y - 31.5).length() / 32.0
			img.set_pixel(x, y, Color(1, 1, 1, clampf(1.0 - d, 0.0, 1.0) ** 2))
	img.generate_mipmaps()
	return ImageTexture.create_from_image(img)


func _lights() -> void:
	var spots: Array[Vector3] = [Vector3(-9.0, 2.0, 9.0), Vector3(9.0, 3.0, -9.0), Vector3(0.0, 6.5, 0.0)]
	var colors: Array[Color] = [Color(1.0, 0.6, 0.3), Color(0.4, 0.6, 1.0), Color(1.0, 0.9, 0.8)]
	for i in spots.size():
		var l := OmniLight3D.new()
		l.position = spots[i]
		l.light_color = colors[i]
		l.light_energy = 3.0 if i < 2 else 2.0
		l.omni_range = 10.0 if i < 2 else 14.0
		add_child(l)
