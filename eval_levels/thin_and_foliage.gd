extends EvalLevel
## Footbridge over a meadow: thin geometry and foliage.
##
## A 70 m footbridge with dense railing balusters and a see-through steel-grate section, a
## chain-link fence with barbed wire, a power line (poles, insulators, sagging wires), a lattice
## transmission tower in the distance, a farm windpump whose thin blades spin fast, trees made of
## alpha-tested leaf cards and thousands of grass cards swaying in the wind. Afternoon sun with
## shadows, procedural sky, light distance fog, Filmic tonemapping.
##
## Camera: walks along the bridge (dolly, 1.9 m/s at t = 0) while panning left and right
## (+-32 degrees, 22 degrees/s at t = 0) with a slight bob; frame-locked (see EvalLevel).

const DOLLY_AMPLITUDE := 18.0  # metres either side of the start
const DOLLY_PERIOD := 60.0
const PAN_DEG := 32.0
const PAN_PERIOD := 9.0
const ROTOR_RPS := 1.6  # windpump rotor turns per second

var _foliage: Array[ShaderMaterial] = []
var _rotor: Node3D


func _seed() -> int:
	return 20260101


func _build() -> void:
	_ground()
	_bridge()
	_fence(7.0)
	_power_line(-10.0)
	_tower(Vector3(-38.0, 0.0, -34.0))
	_windpump(Vector3(11.0, 0.0, -16.0))
	_trees()
	_grass()


func _animate(t: float) -> void:
	var cam := camera()
	var z := 2.0 - DOLLY_AMPLITUDE * sin(TAU * t / DOLLY_PERIOD)
	var yaw := deg_to_rad(PAN_DEG) * sin(TAU * t / PAN_PERIOD) + deg_to_rad(8.0)
	var pitch := deg_to_rad(-6.0 + 3.0 * sin(TAU * t / 5.3))
	var bob := 0.03 * sin(TAU * t / 0.55)
	cam.transform = Transform3D(Basis.from_euler(Vector3(pitch, yaw, 0.0)), Vector3(0.35, 2.65 + bob, z))
	if _rotor != null:
		_rotor.rotation.z = TAU * ROTOR_RPS * t
	for m in _foliage:
		m.set_shader_parameter("wind_time", t)


func _foliage_mat(tex: Texture2D, sway: float, up_normal: float, tint: Color) -> ShaderMaterial:
	var m := ShaderMaterial.new()
	m.shader = preload("res://common/foliage.gdshader")
	m.set_shader_parameter("albedo_tex", tex)
	m.set_shader_parameter("sway", sway)
	m.set_shader_parameter("up_normal", up_normal)
	m.set_shader_parameter("tint", tint)
	_foliage.append(m)
	return m


func _ground() -> void:
	var pm := PlaneMesh.new()
	pm.size = Vector2(240.0, 240.0)
	var tex := EvalTextures.noise(256, 11, 0.03, Color(0.16, 0.22, 0.07), Color(0.33, 0.3, 0.16))
	add_mesh(pm, textured(tex, Vector2(60.0, 60.0), 0.95), Transform3D())
	# a gravel path under the bridge
	var path := PlaneMesh.new()
	path.size = Vector2(2.4, 90.0)
	var gravel := EvalTextures.noise(128, 12, 0.2, Color(0.25, 0.24, 0.22), Color(0.6, 0.58, 0.52), 2)
	add_mesh(path, textured(gravel, Vector2(2.0, 75.0), 0.9), Transform3D(Basis(), Vector3(0.0, 0.01, -10.0)))


func _bridge() -> void:
	var z0 := 25.0
	var z1 := -45.0
	var deck_y := 1.6
	var wood := textured(EvalTextures.planks(256, 8, 3), Vector2(1.0, 1.0), 0.8)
	wood.uv1_triplanar = true
	wood.uv1_scale = Vector3(0.8, 0.8, 0.8)
	var steel := mat(Color(0.16, 0.3, 0.2), 0.45, 0.6)  # painted green steel
	var galv := mat(Color(0.6, 0.62, 0.63), 0.35, 0.9)
	# deck in two wooden parts around a steel-grate span (z in [-14, -4])
	box(Vector3(0.0, deck_y, (z0 + -4.0) * 0.5), Vector3(3.0, 0.12, z0 + 4.0), wood)
	box(Vector3(0.0, deck_y, (-14.0 + z1) * 0.5), Vector3(3.0, 0.12, -14.0 - z1), wood)
	var grate := PlaneMesh.new()
	grate.size = Vector2(3.0, 10.0)
	add_mesh(grate, cutout(EvalTextures.grate(128, 8, 3, Color(0.45, 0.46, 0.44)), Vector2(12.0, 40.0)),
			Transform3D(Basis(), Vector3(0.0, deck_y + 0.05, -9.0)))
	for x: float in [-1.35, -0.45, 0.45, 1.35]:  # stringers seen through the grate
		box(Vector3(x, deck_y - 0.15, -9.0), Vector3(0.08, 0.28, 10.0), galv)
	# side girders and piers
	for x: float in [-1.55, 1.55]:
		box(Vector3(x, deck_y - 0.2, (z0 + z1) * 0.5), Vector3(0.1, 0.45, z0 - z1), steel)
	var z := z0
	while z >= z1:
		for x: float in [-1.2, 1.2]:
			cylinder(Vector3(x, deck_y * 0.5 - 0.1, z), 0.12, deck_y, mat(Color(0.5, 0.5, 0.48), 0.9))
		z -= 6.0
	# railings: top rail, mid rails, and a baluster every 11 cm on both sides
	var xforms: Array[Transform3D] = []
	for side: float in [-1.5, 1.5]:
		beam(Vector3(side, deck_y + 1.05, z0), Vector3(side, deck_y + 1.05, z1), 0.06, steel)
		for h: float in [0.55, 0.12]:
			beam(Vector3(side, deck_y + h, z0), Vector3(side, deck_y + h, z1), 0.03, steel)
		var bz := z0
		while bz >= z1:
			xforms.append(Transform3D(Basis(), Vector3(side, deck_y + 0.58, bz)))
			bz -= 0.11
	var baluster := BoxMesh.new()
	baluster.size = Vector3(0.018, 0.92, 0.018)
	multimesh(baluster, steel, xforms)
	# lamp posts on the bridge with thin arms
	z = z0 - 3.0
	var lamp := 0
	while z >= z1:
		var side := 1.45 if lamp % 2 == 0 else -1.45
		lamp += 1
		cylinder(Vector3(side, deck_y + 2.0, z), 0.04, 4.0, steel, 8)
		beam(Vector3(side, deck_y + 3.9, z), Vector3(side * 0.55, deck_y + 4.05, z), 0.03, steel)
		box(Vector3(side * 0.5, deck_y + 4.0, z), Vector3(0.25, 0.06, 0.12), mat(Color(0.9, 0.9, 0.85), 0.3))
		z -= 12.0


func _fence(x: float) -> void:
	var z0 := 28.0
	var z1 := -48.0
	var h := 2.2
	var wire := mat(Color(0.55, 0.57, 0.58), 0.4, 0.8)
	var mesh := QuadMesh.new()
	mesh.size = Vector2(z0 - z1, h)
	var cell := 0.45  # one texture tile: 8 diamonds of 5.6 cm
	add_mesh(mesh, cutout(EvalTextures.chain_link(128, 8, 2.2), Vector2((z0 - z1) / cell, h / cell)),
			Transform3D(Basis(Vector3.UP, PI * 0.5), Vector3(x, h * 0.5, (z0 + z1) * 0.5)))
	var z := z0
	while z >= z1:
		cylinder(Vector3(x, h * 0.5 + 0.2, z), 0.035, h + 0.4, wire, 8)
		beam(Vector3(x, h + 0.35, z), Vector3(x + 0.35, h + 0.6, z), 0.03, wire)  # barbed-wire arm
		z -= 3.0
	beam(Vector3(x, h, z0), Vector3(x, h, z1), 0.045, wire)
	for k in 3:  # barbed wires, slightly sagging between the arms
		var off := 0.1 + 0.11 * k
		var pts := PackedVector3Array()
		var zz := z0
		while zz > z1:
			pts.append_array(catenary(Vector3(x + off, h + 0.35 + off * 0.7, zz),
					Vector3(x + off, h + 0.35 + off * 0.7, zz - 3.0), 0.04, 6))
			zz -= 3.0
		tube(pts, 0.006, wire, 4)


func _power_line(x: float) -> void:
	var wood := mat(Color(0.3, 0.22, 0.15), 0.9)
	var dark := mat(Color(0.05, 0.05, 0.05), 0.5, 0.3)
	var ceramic := mat(Color(0.75, 0.8, 0.78), 0.15)
	var poles: Array[float] = [42.0, 20.0, -2.0, -24.0, -46.0, -68.0]
	var tops: Array[Vector3] = [Vector3(-1.1, 8.3, 0), Vector3(-0.35, 8.3, 0), Vector3(0.4, 8.3, 0),
			Vector3(1.1, 8.3, 0), Vector3(-0.6, 6.6, 0), Vector3(0.6, 6.6, 0)]
	for z in poles:
		cylinder(Vector3(x, 4.5, z), 0.13, 9.0, wood, 10)
		box(Vector3(x, 8.15, z), Vector3(2.6, 0.12, 0.12), wood)
		box(Vector3(x, 6.45, z), Vector3(1.5, 0.1, 0.1), wood)
		beam(Vector3(x - 0.9, 8.1, z), Vector3(x, 7.3, z), 0.05, wood)  # crossarm braces
		beam(Vector3(x + 0.9, 8.1, z), Vector3(x, 7.3, z), 0.05, wood)
		for p in tops:
			cylinder(Vector3(x + p.x, p.y - 0.05, z), 0.035, 0.22, ceramic, 8)
		# a transformer drum on one pole
		if is_equal_approx(z, -2.0):
			cylinder(Vector3(x + 0.35, 5.2, z), 0.3, 0.8, mat(Color(0.5, 0.52, 0.5), 0.4, 0.6), 16)
	for i in poles.size() - 1:
		for p in tops:
			var a := Vector3(x + p.x, p.y + 0.06, poles[i])
			var b := Vector3(x + p.x, p.y + 0.06, poles[i + 1])
			tube(catenary(a, b, 0.9 if p.y > 7.0 else 1.2, 28), 0.011, dark, 5)
	# service drop from a pole to the bridge lamp
	tube(catenary(Vector3(x + 0.6, 6.6, -2.0), Vector3(-1.45, 5.6, -3.0), 0.5, 20), 0.008, dark, 4)


func _tower(at: Vector3) -> void:
	var steel := mat(Color(0.5, 0.52, 0.53), 0.5, 0.7)
	var h := 30.0
	var levels := 10
	var half := func(y: float) -> float: return lerpf(3.0, 0.6, y / h)
	for k in levels:
		var y0 := h * k / levels
		var y1 := h * (k + 1) / levels
		var w0: float = half.call(y0)
		var w1: float = half.call(y1)
		var c0: Array[Vector3] = [Vector3(-w0, y0, -w0), Vector3(w0, y0, -w0), Vector3(w0, y0, w0), Vector3(-w0, y0, w0)]
		var c1: Array[Vector3] = [Vector3(-w1, y1, -w1), Vector3(w1, y1, -w1), Vector3(w1, y1, w1), Vector3(-w1, y1, w1)]
		for j in 4:
			var n := (j + 1) % 4
			beam(at + c0[j], at + c1[j], 0.14, steel)  # legs
			beam(at + c0[j], at + c1[n], 0.06, steel)  # X bracing
			beam(at + c0[n], at + c1[j], 0.06, steel)
			beam(at + c1[j], at + c1[n], 0.06, steel)  # horizontals
	for y: float in [h * 0.72, h * 0.9]:  # crossarms and conductors leaving the frame
		var w := 6.0
		beam(at + Vector3(-w, y, 0), at + Vector3(w, y, 0), 0.2, steel)
		for s: float in [-w + 0.4, w - 0.4]:
			var a := at + Vector3(s, y - 0.8, 0.0)
			tube(catenary(a, a + Vector3(0.0, 0.0, 80.0), 4.0, 24), 0.03, mat(Color(0.1, 0.1, 0.1), 0.4, 0.5), 5)
			tube(catenary(a, a + Vector3(0.0, 0.0, -80.0), 4.0, 24), 0.03, mat(Color(0.1, 0.1, 0.1), 0.4, 0.5), 5)


func _windpump(at: Vector3) -> void:
	var steel := mat(Color(0.62, 0.63, 0.6), 0.4, 0.85)
	var h := 9.0
	for j in 4:
		var c := Vector3([-1.0, 1.0, 1.0, -1.0][j], 0.0, [-1.0, -1.0, 1.0, 1.0][j])
		beam(at + c * 1.3, at + Vector3(0.0, h, 0.0) + c * 0.15, 0.06, steel)
	for k in 5:
		var y := 1.5 + k * 1.5
		var w := lerpf(1.3, 0.15, y / h)
		for j in 4:
			var a := Vector3([-w, w, w, -w][j], y, [-w, -w, w, w][j])
			var b := Vector3([w, w, -w, -w][j], y, [-w, w, w, -w][j])
			beam(at + a, at + b, 0.03, steel)
	# rotor facing the bridge (-X), 18 thin sheet blades on two rings
	_rotor = Node3D.new()
	_rotor.transform = Transform3D(Basis(Vector3.UP, -PI * 0.5), at + Vector3(-0.45, h + 0.3, 0.0))
	add_child(_rotor)
	var blade := BoxMesh.new()
	blade.size = Vector3(0.16, 1.2, 0.01)
	var xforms: Array[Transform3D] = []
	for i in 18:
		var a := TAU * i / 18.0
		var b := Basis(Vector3.BACK, a) * Basis(Vector3.UP, 0.5)
		xforms.append(Transform3D(b, Basis(Vector3.BACK, a) * Vector3(0.0, 1.05, 0.0)))
	multimesh(blade, mat(Color(0.75, 0.75, 0.72), 0.35, 0.8), xforms, _rotor)
	for r: float in [0.45, 1.6]:
		var ring := TorusMesh.new()
		ring.inner_radius = r - 0.015
		ring.outer_radius = r + 0.015
		ring.rings = 48
		ring.ring_segments = 4
		add_mesh(ring, steel, Transform3D(Basis(Vector3.RIGHT, PI * 0.5), Vector3.ZERO), _rotor)
	# tail vane
	beam(at + Vector3(0.0, h + 0.3, 0.0), at + Vector3(2.2, h + 0.3, 0.0), 0.04, steel)
	box(at + Vector3(2.3, h + 0.5, 0.0), Vector3(0.9, 0.7, 0.01), mat(Color(0.7, 0.15, 0.1), 0.5, 0.3))


func _trees() -> void:
	var bark := textured(EvalTextures.stripes(64, 8, Color(0.25, 0.18, 0.12), Color(0.15, 0.1, 0.07)),
			Vector2(3.0, 2.0), 0.95)
	var spots: Array[Vector3] = [Vector3(-5.5, 0, 14), Vector3(4.5, 0, 6), Vector3(-6.0, 0, -6),
			Vector3(-4.0, 0, -22), Vector3(4.0, 0, -30), Vector3(-16, 0, 4), Vector3(15, 0, -2),
			Vector3(-14, 0, -40), Vector3(18, 0, -36), Vector3(-22, 0, -16), Vector3(3.5, 0, 20)]
	var card := QuadMesh.new()
	card.size = Vector2(1.1, 1.1)
	var xforms: Array[Transform3D] = []
	var colors := PackedColorArray()
	for p in spots:
		var h := _rng.randf_range(5.0, 8.0)
		cylinder(p + Vector3(0.0, h * 0.5, 0.0), 0.18, h, bark, 10)
		for k in 3:  # branches
			var a := p + Vector3(0.0, h * (0.55 + 0.12 * k), 0.0)
			var d := Vector3(_rng.randf_range(-1, 1), 0.6, _rng.randf_range(-1, 1)).normalized()
			beam(a, a + d * 1.8, 0.06, bark)
		var centre := p + Vector3(0.0, h + 0.5, 0.0)
		var radius := _rng.randf_range(2.0, 2.8)
		for i in 220:
			var dir := Vector3(_rng.randfn(), _rng.randfn() * 0.7, _rng.randfn()).normalized()
			var pos := centre + dir * radius * pow(_rng.randf(), 0.4)
			var b := Basis.from_euler(Vector3(_rng.randf_range(-1.2, 1.2), _rng.randf() * TAU, _rng.randf() * TAU))
			xforms.append(Transform3D(b, pos))
			colors.append(Color(1, 1, 1).darkened(_rng.randf_range(0.0, 0.3)))
	var m := _foliage_mat(EvalTextures.leaves(128, 16, 5, Color(0.2, 0.42, 0.12)), 0.05, 0.0, Color.WHITE)
	multimesh(card, m, xforms, self, colors)


func _grass() -> void:
	# two crossed cards per tuft, as one mesh
	var st := SurfaceTool.new()
	st.begin(Mesh.PRIMITIVE_TRIANGLES)
	for k in 2:
		var a := PI * 0.5 * k + 0.3
		var d := Vector3(cos(a), 0.0, sin(a)) * 0.45
		var corners: Array[Vector3] = [-d, d, d + Vector3(0, 0.7, 0), -d + Vector3(0, 0.7, 0)]
		var uvs: Array[Vector2] = [Vector2(0, 1), Vector2(1, 1), Vector2(1, 0), Vector2(0, 0)]
		for i: int in [0, 1, 2, 0, 2, 3]:
			st.set_normal(Vector3.UP)
			st.set_uv(uvs[i])
			st.add_vertex(corners[i])
	var tuft := st.commit()
	var xforms: Array[Transform3D] = []
	var colors := PackedColorArray()
	for i in 5200:
		# denser near the bridge, where the camera looks down
		var x := _rng.randfn(0.0, 6.0) if i % 3 != 0 else _rng.randf_range(-30.0, 30.0)
		var z := _rng.randf_range(-50.0, 30.0)
		if absf(x) < 1.3 and i % 4 != 0:
			x += signf(x + 0.001) * 1.3
		var s := _rng.randf_range(0.7, 1.4)
		xforms.append(Transform3D(Basis(Vector3.UP, _rng.randf() * TAU).scaled(Vector3(s, s, s)), Vector3(x, 0.0, z)))
		colors.append(Color(1, 1, 1).darkened(_rng.randf_range(0.0, 0.35)))
	var m := _foliage_mat(EvalTextures.grass(128, 28, 9), 0.12, 1.0, Color.WHITE)
	multimesh(tuft, m, xforms, self, colors).cast_shadow = GeometryInstance3D.SHADOW_CASTING_SETTING_OFF
