class_name EvalLevel
extends Node3D
## Base of every evaluation level: frame-locked scene time and small builders for meshes and
## materials.
##
## Scene time is locked to the frame: it advances only by the engine's process delta, and this
## project sets physics/common/physics_jitter_fix = 0, so under `--fixed-fps F` (as the comparison
## tool and the tests run it) every delta is exactly 1 / F * Engine.time_scale (with the default
## jitter fix Godot nudges the first few deltas to align physics ticks). Frame n (0-based,
## counting this scene's drawn frames) shows t = n / F * time_scale in every run, and
## `--time-scale 4` makes everything move 4x faster. No wall clock, and every random choice comes
## from a RandomNumberGenerator with a fixed seed.
##
## A level overrides `_build()` (make the world once) and `_animate(t)` (pose everything at
## time t; it must depend on t only, never on the previous frame).

## Scene time in seconds shown by the frame being processed.
var scene_time: float = 0.0
## Drawn frames so far.
var frame: int = 0

var _rng := RandomNumberGenerator.new()


func _ready() -> void:
	_rng.seed = _seed()
	_build()
	_animate(0.0)


func _process(delta: float) -> void:
	_animate(scene_time)
	frame += 1
	scene_time += delta


## The level's fixed random seed (override to change the layout on purpose).
func _seed() -> int:
	return 1


func _build() -> void:
	pass


func _animate(_t: float) -> void:
	pass


## The level's camera (the scene's current Camera3D).
func camera() -> Camera3D:
	return get_node("Camera3D") as Camera3D


# --- builders --------------------------------------------------------------------------------

func add_mesh(mesh: Mesh, mat: Material, xform: Transform3D, parent: Node = self) -> MeshInstance3D:
	var mi := MeshInstance3D.new()
	mi.mesh = mesh
	mi.material_override = mat
	mi.transform = xform
	parent.add_child(mi)
	return mi


func box(pos: Vector3, size: Vector3, mat: Material, parent: Node = self) -> MeshInstance3D:
	var m := BoxMesh.new()
	m.size = size
	return add_mesh(m, mat, Transform3D(Basis(), pos), parent)


func cylinder(pos: Vector3, radius: float, height: float, mat: Material, sides: int = 12,
		parent: Node = self) -> MeshInstance3D:
	var m := CylinderMesh.new()
	m.top_radius = radius
	m.bottom_radius = radius
	m.height = height
	m.radial_segments = sides
	m.rings = 1
	return add_mesh(m, mat, Transform3D(Basis(), pos), parent)


## A thin box from a to b (square cross-section `thickness`): beams, rails, braces.
func beam(a: Vector3, b: Vector3, thickness: float, mat: Material, parent: Node = self) -> MeshInstance3D:
	var m := BoxMesh.new()
	m.size = Vector3(thickness, thickness, a.distance_to(b))
	return add_mesh(m, mat, Transform3D(_basis_along(b - a), (a + b) * 0.5), parent)


## A closed tube along `points` (wires, cables, pipes) as one mesh.
func tube(points: PackedVector3Array, radius: float, mat: Material, sides: int = 6,
		parent: Node = self) -> MeshInstance3D:
	var st := SurfaceTool.new()
	st.begin(Mesh.PRIMITIVE_TRIANGLES)
	var n := points.size()
	for i in n:
		var dir := (points[mini(i + 1, n - 1)] - points[maxi(i - 1, 0)]).normalized()
		var b := _basis_along(dir)
		for s in sides + 1:
			var a := TAU * s / sides
			var nrm := b.x * cos(a) + b.y * sin(a)
			st.set_normal(nrm)
			st.set_uv(Vector2(float(s) / sides, float(i) / (n - 1)))
			st.add_vertex(points[i] + nrm * radius)
	for i in n - 1:
		for s in sides:
			var p0 := i * (sides + 1) + s
			var p1 := p0 + sides + 1
			st.add_index(p0)
			st.add_index(p1)
			st.add_index(p0 + 1)
			st.add_index(p0 + 1)
			st.add_index(p1)
			st.add_index(p1 + 1)
	return add_mesh(st.commit(), mat, Transform3D(), parent)


## Points of a wire hanging from a to b with `sag` metres of drop at the middle.
func catenary(a: Vector3, b: Vector3, sag: float, segments: int = 24) -> PackedVector3Array:
	var pts := PackedVector3Array()
	for i in segments + 1:
		var u := float(i) / segments
		var p := a.lerp(b, u)
		p.y -= sag * 4.0 * u * (1.0 - u)
		pts.append(p)
	return pts


## Many copies of one mesh (one draw call): balusters, grass cards, leaves, crates.
func multimesh(mesh: Mesh, mat: Material, xforms: Array[Transform3D], parent: Node = self,
		colors: PackedColorArray = PackedColorArray()) -> MultiMeshInstance3D:
	var mm := MultiMesh.new()
	mm.transform_format = MultiMesh.TRANSFORM_3D
	mm.use_colors = not colors.is_empty()
	mm.mesh = mesh
	mm.instance_count = xforms.size()
	for i in xforms.size():
		mm.set_instance_transform(i, xforms[i])
		if mm.use_colors:
			mm.set_instance_color(i, colors[i])
	var mmi := MultiMeshInstance3D.new()
	mmi.multimesh = mm
	mmi.material_override = mat
	parent.add_child(mmi)
	return mmi


func mat(color: Color, roughness: float = 0.8, metallic: float = 0.0) -> StandardMaterial3D:
	var m := StandardMaterial3D.new()
	m.albedo_color = color
	m.roughness = roughness
	m.metallic = metallic
	return m


func textured(tex: Texture2D, uv_scale: Vector2, roughness: float = 0.8,
		metallic: float = 0.0) -> StandardMaterial3D:
	var m := mat(Color.WHITE, roughness, metallic)
	m.albedo_texture = tex
	m.uv1_scale = Vector3(uv_scale.x, uv_scale.y, 1.0)
	m.texture_filter = BaseMaterial3D.TEXTURE_FILTER_LINEAR_WITH_MIPMAPS_ANISOTROPIC
	return m


## Alpha-tested (cut-out) material: foliage, chain-link, grates. Two-sided.
func cutout(tex: Texture2D, uv_scale: Vector2 = Vector2.ONE, color: Color = Color.WHITE) -> StandardMaterial3D:
	var m := textured(tex, uv_scale, 0.9)
	m.albedo_color = color
	m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA_SCISSOR
	m.alpha_scissor_threshold = 0.5
	m.cull_mode = BaseMaterial3D.CULL_DISABLED
	return m


func emissive(color: Color, energy: float) -> StandardMaterial3D:
	var m := mat(color * 0.2, 0.6)
	m.emission_enabled = true
	m.emission = color
	m.emission_energy_multiplier = energy
	return m


## Alpha-blended glass (no depth write, sorted back to front by Godot).
func glass(tint: Color) -> StandardMaterial3D:
	var m := mat(tint, 0.02, 0.0)
	m.transparency = BaseMaterial3D.TRANSPARENCY_ALPHA
	m.specular_mode = BaseMaterial3D.SPECULAR_SCHLICK_GGX
	m.cull_mode = BaseMaterial3D.CULL_DISABLED
	return m


func label(text: String, pos: Vector3, yaw_deg: float, font_size: int, pixel_size: float,
		color: Color = Color.BLACK, parent: Node = self) -> Label3D:
	var l := Label3D.new()
	l.text = text
	l.font_size = font_size
	l.pixel_size = pixel_size
	l.modulate = color
	l.outline_size = 0
	l.shaded = true
	l.double_sided = false
	l.alpha_cut = Label3D.ALPHA_CUT_DISCARD
	l.texture_filter = BaseMaterial3D.TEXTURE_FILTER_LINEAR_WITH_MIPMAPS_ANISOTROPIC
	l.position = pos
	l.rotation_degrees = Vector3(0.0, yaw_deg, 0.0)
	parent.add_child(l)
	return l


## A basis whose Z axis points along `dir` (X and Y span the cross-section).
static func _basis_along(dir: Vector3) -> Basis:
	var z := dir.normalized()
	var up := Vector3.UP if absf(z.dot(Vector3.UP)) < 0.99 else Vector3.RIGHT
	var x := up.cross(z).normalized()
	var y := z.cross(x)
	return Basis(x, y, z)


## Smooth back-and-forth between 0 and 1 with the given period (seconds): camera paths that never
## leave the level however long a run lasts.
static func ping_pong(t: float, period: float) -> float:
	return 0.5 - 0.5 * cos(TAU * t / period)
