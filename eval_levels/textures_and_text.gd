extends EvalLevel
## Shopping street: fine high-contrast textures, small text and specular highlights.
##
## A row of eight shopfronts (brick walls of several sizes, striped awnings, roller shutters with
## 1.5 cm slats, upper-floor windows with thin mullions), signs and posters with small text, a
## tram-stop timetable, a zone-plate and a checker poster, a chequered café floor, zebra crossing,
## chrome bollards, a rotating chrome sculpture, a spinning barber pole, a swinging hanging sign,
## strings of glowing bulbs and neon text. Daylight, AgX tonemapping, glow. (No ReflectionProbe:
## with one, Godot 4.6 hangs at exit under lavapipe.)
##
## Camera: strafes along the street (2.1 m/s at t = 0) looking at the shops, yawing +-12 degrees;
## frame-locked (see EvalLevel).

const STRAFE_AMPLITUDE := 16.0
const STRAFE_PERIOD := 48.0
const SHOP_W := 6.0
const FRONT_Z := -6.0  # the shopfront plane (facing +Z)
const SHOPS: Array[String] = ["BAKERY & CAFE", "HARDWARE", "PHARMACY", "BOOKS & MAPS",
		"NOODLE BAR", "TAILOR", "WATCH REPAIR", "FLORIST"]
const WORDS: Array[String] = ["open", "daily", "fresh", "bread", "keys", "cut", "while", "you",
		"wait", "prices", "from", "only", "new", "season", "sale", "every", "monday", "closed",
		"sunday", "call", "repairs", "all", "brands", "free", "delivery", "over", "order", "ask",
		"inside", "cash", "card", "tel", "since", "1987", "quality", "service", "hours", "best"]

var _sculpture: Node3D
var _barber: Node3D
var _hanging: Node3D
var _ticker: Label3D


func _seed() -> int:
	return 31415


func _build() -> void:
	_street()
	for i in SHOPS.size():
		_shop(i, -24.0 + SHOP_W * (i + 0.5))
	_street_furniture()
	_bulb_strings()


func _animate(t: float) -> void:
	var x := -2.0 + STRAFE_AMPLITUDE * sin(TAU * t / STRAFE_PERIOD)
	var yaw := deg_to_rad(12.0) * sin(TAU * t / 7.0)
	var pitch := deg_to_rad(6.0 + 2.0 * sin(TAU * t / 4.1))
	camera().transform = Transform3D(Basis.from_euler(Vector3(pitch, yaw, 0.0)), Vector3(x, 1.65, 1.8))
	_sculpture.rotation = Vector3(0.0, t * 0.9, 0.0)
	_sculpture.get_child(0).rotation = Vector3(t * 1.7, 0.0, 0.0)
	_barber.rotation.y = t * 3.0
	_hanging.rotation.x = 0.35 * sin(TAU * t / 2.2)
	_ticker.position.x = -9.0 + 0.5 * sin(t * 1.3)


func _words(n: int) -> String:
	var out := PackedStringArray()
	for i in n:
		out.append(WORDS[_rng.randi() % WORDS.size()])
	return " ".join(out)


func _street() -> void:
	# pavement: small black/white tiles (0.2 m), high contrast at grazing angles
	var pave := PlaneMesh.new()
	pave.size = Vector2(60.0, 4.0)
	var tiles := EvalTextures.tiles(256, 8, 2, Color(0.82, 0.8, 0.76), Color(0.2, 0.2, 0.22), Color(0.45, 0.44, 0.42))
	add_mesh(pave, textured(tiles, Vector2(37.5, 2.5), 0.6), Transform3D(Basis(), Vector3(0.0, 0.12, FRONT_Z + 2.0)))
	box(Vector3(0.0, 0.06, FRONT_Z + 4.0), Vector3(60.0, 0.12, 0.2), mat(Color(0.6, 0.6, 0.58), 0.7))  # kerb
	# road: asphalt, lane stripes and a zebra crossing
	var road := PlaneMesh.new()
	road.size = Vector2(60.0, 16.0)
	var asphalt := EvalTextures.noise(256, 41, 0.09, Color(0.1, 0.1, 0.11), Color(0.3, 0.3, 0.31), 3)
	add_mesh(road, textured(asphalt, Vector2(30.0, 8.0), 0.85), Transform3D(Basis(), Vector3(0.0, 0.0, FRONT_Z + 12.0)))
	var paint := mat(Color(0.92, 0.92, 0.88), 0.6)
	for i in 9:
		box(Vector3(-3.0 + i * 0.9, 0.005, FRONT_Z + 8.0), Vector3(0.45, 0.01, 3.6), paint)
	var x := -29.0
	while x < 30.0:
		box(Vector3(x, 0.005, FRONT_Z + 12.0), Vector3(1.5, 0.01, 0.12), paint)
		x += 3.0
	# the opposite side of the street: a low wall with a striped hoarding
	var hoarding := textured(EvalTextures.stripes(128, 8, Color(0.95, 0.75, 0.1), Color(0.08, 0.08, 0.08)),
			Vector2(40.0, 1.0), 0.7)
	box(Vector3(0.0, 1.0, FRONT_Z + 20.0), Vector3(60.0, 2.0, 0.2), hoarding)


func _shop(i: int, cx: float) -> void:
	var rng := _rng
	var h := rng.randf_range(8.0, 11.0)
	var shop := Node3D.new()
	shop.position = Vector3(cx, 0.0, FRONT_Z)
	add_child(shop)
	# facade: bricks of a different size and colour per shop, or plaster with fine vertical ribs
	var facade: StandardMaterial3D
	if i % 3 == 2:
		var ribs := EvalTextures.stripes(128, 32, Color(0.78, 0.74, 0.66), Color(0.55, 0.52, 0.46), true, 0.6)
		facade = textured(ribs, Vector2(SHOP_W / 0.8, h / 0.8), 0.8)
	else:
		var base: Color = [Color(0.55, 0.22, 0.15), Color(0.62, 0.45, 0.3), Color(0.4, 0.3, 0.28)][i % 3]
		var tex := EvalTextures.bricks(256, 16, 4, 2, base, Color(0.7, 0.68, 0.62), 100 + i)
		var tile := 1.2 if i % 2 == 0 else 0.9  # metres per texture tile (16 courses)
		facade = textured(tex, Vector2(SHOP_W / tile, h / tile), 0.85)
	var wall := BoxMesh.new()
	wall.size = Vector3(SHOP_W, h, 0.3)
	add_mesh(wall, facade, Transform3D(Basis(), Vector3(0.0, h * 0.5, -0.15)), shop)
	var trim := mat(Color(0.15, 0.16, 0.18), 0.35, 0.3)
	# ground floor: window (dark reflective glass) and door, or a roller shutter
	if i % 4 == 1:
		var slats := EvalTextures.stripes(64, 16, Color(0.7, 0.72, 0.74), Color(0.35, 0.36, 0.38), false, 0.55)
		var shutter := textured(slats, Vector2(1.0, 2.6 / 0.24), 0.4, 0.8)  # 1.5 cm slats
		box(Vector3(0.0, 1.45, 0.02), Vector3(SHOP_W - 0.8, 2.6, 0.04), shutter, shop)
		label(_words(6).to_upper(), Vector3(0.0, 1.2, 0.05), 0.0, 32, 0.004, Color(0.1, 0.1, 0.1), shop)
	else:
		box(Vector3(-0.7, 1.5, 0.02), Vector3(3.6, 2.4, 0.04), mat(Color(0.04, 0.05, 0.06), 0.05, 0.6), shop)
		box(Vector3(2.0, 1.25, 0.02), Vector3(1.1, 2.3, 0.05), mat(Color(0.35, 0.12, 0.08), 0.4), shop)
		cylinder(Vector3(1.65, 1.15, 0.1), 0.02, 0.3, mat(Color(0.95, 0.8, 0.4), 0.1, 1.0), 8, shop)  # brass handle
		for k in 4:  # window mullions
			box(Vector3(-2.5 + k * 1.2, 1.5, 0.06), Vector3(0.04, 2.4, 0.04), trim, shop)
		box(Vector3(-0.7, 1.5, 0.06), Vector3(3.6, 0.04, 0.04), trim, shop)
		# poster in the window: a headline and a paragraph of small text
		box(Vector3(-1.3, 1.55, 0.05), Vector3(0.9, 1.2, 0.01), mat(Color(0.95, 0.93, 0.86), 0.9), shop)
		label(_words(2).to_upper(), Vector3(-1.3, 2.0, 0.06), 0.0, 48, 0.0018, Color(0.7, 0.05, 0.05), shop)
		var para := label("\n".join([_words(5), _words(5), _words(4), _words(5), _words(5), _words(3),
				_words(5), _words(4), _words(5)]), Vector3(-1.3, 1.45, 0.06), 0.0, 24, 0.0016,
				Color(0.05, 0.05, 0.05), shop)
		para.horizontal_alignment = HORIZONTAL_ALIGNMENT_LEFT
		para.width = 500.0
		para.autowrap_mode = TextServer.AUTOWRAP_WORD
		label("%s\n%s" % [_words(3), "%02d.%02d  %d,%02d" % [rng.randi_range(1, 28), rng.randi_range(1, 12),
				rng.randi_range(2, 99), rng.randi_range(0, 99)]], Vector3(0.6, 0.85, 0.05), 0.0, 24, 0.0015,
				Color(0.9, 0.9, 0.9), shop)
	# sign board with the shop's name and small print
	box(Vector3(0.0, 3.15, 0.08), Vector3(SHOP_W - 0.4, 0.7, 0.08), mat(Color(0.12, 0.2, 0.3).lightened(0.1 * (i % 4)), 0.5), shop)
	label(SHOPS[i], Vector3(0.0, 3.22, 0.13), 0.0, 64, 0.0045, Color(0.96, 0.9, 0.7), shop)
	label("est. %d  -  tel %03d %04d  -  %s" % [1950 + rng.randi_range(0, 60), rng.randi_range(100, 999),
			rng.randi_range(0, 9999), _words(3)], Vector3(0.0, 2.93, 0.13), 0.0, 24, 0.0016,
			Color(0.9, 0.9, 0.9), shop)
	# striped awning on every other shop
	if i % 2 == 0:
		var colors: Array[Color] = [Color(0.75, 0.1, 0.1), Color(0.1, 0.45, 0.25), Color(0.1, 0.25, 0.6)]
		var stripe_tex := EvalTextures.stripes(128, 8, colors[(i / 2) % 3], Color(0.95, 0.94, 0.9))
		var awning := BoxMesh.new()
		awning.size = Vector3(SHOP_W - 0.6, 0.03, 1.4)
		var am := textured(stripe_tex, Vector2(3.0 * 3.0, 1.0), 0.8)  # 12.5 cm stripes
		am.cull_mode = BaseMaterial3D.CULL_DISABLED
		add_mesh(awning, am, Transform3D(Basis(Vector3.RIGHT, 0.45), Vector3(0.0, 2.8, 0.62)), shop)
	# upper floors: windows with thin frames and glazing bars
	var floors := int((h - 4.0) / 2.6)
	for f in floors:
		for k in 3:
			var wx := -1.9 + k * 1.9
			var wy := 4.6 + f * 2.6
			box(Vector3(wx, wy, 0.02), Vector3(1.1, 1.5, 0.04), mat(Color(0.06, 0.08, 0.1), 0.04, 0.7), shop)
			box(Vector3(wx, wy - 0.8, 0.08), Vector3(1.3, 0.08, 0.16), mat(Color(0.85, 0.84, 0.8), 0.6), shop)
			for bx: float in [-0.55, 0.0, 0.55]:
				box(Vector3(wx + bx, wy, 0.06), Vector3(0.03, 1.5, 0.03), mat(Color(0.95, 0.95, 0.93), 0.5), shop)
			for by: float in [-0.75, -0.25, 0.25, 0.75]:
				box(Vector3(wx, wy + by, 0.06), Vector3(1.1, 0.03, 0.03), mat(Color(0.95, 0.95, 0.93), 0.5), shop)
	# cornice and drainpipe
	box(Vector3(0.0, h - 0.1, 0.1), Vector3(SHOP_W, 0.25, 0.5), mat(Color(0.8, 0.78, 0.72), 0.7), shop)
	cylinder(Vector3(SHOP_W * 0.5 - 0.12, h * 0.5, 0.12), 0.05, h, mat(Color(0.3, 0.32, 0.33), 0.3, 0.9), 10, shop)


func _street_furniture() -> void:
	var chrome := mat(Color(0.95, 0.95, 0.97), 0.06, 1.0)
	var brushed := mat(Color(0.8, 0.8, 0.82), 0.25, 1.0)
	# chrome bollards along the kerb
	var x := -27.0
	while x < 28.0:
		cylinder(Vector3(x, 0.6, FRONT_Z + 3.7), 0.07, 0.95, chrome, 16)
		var cap := SphereMesh.new()
		cap.radius = 0.07
		cap.height = 0.14
		add_mesh(cap, chrome, Transform3D(Basis(), Vector3(x, 1.08, FRONT_Z + 3.7)))
		x += 1.5
	# café corner: chequered floor, chrome tables
	var floor_mesh := PlaneMesh.new()
	floor_mesh.size = Vector2(5.0, 2.6)
	add_mesh(floor_mesh, textured(EvalTextures.checker(256, 8, Color(0.92, 0.92, 0.9), Color(0.06, 0.06, 0.07)),
			Vector2(5.0 / 0.8, 2.6 / 0.8), 0.15), Transform3D(Basis(), Vector3(-21.0, 0.125, FRONT_Z + 1.5)))
	for k in 3:
		var p := Vector3(-22.8 + k * 1.8, 0.0, FRONT_Z + 1.5)
		cylinder(p + Vector3(0, 0.37, 0), 0.03, 0.74, chrome, 10)
		cylinder(p + Vector3(0, 0.75, 0), 0.35, 0.02, brushed, 24)
	# tram stop: shelter, timetable with rows of tiny text, a zone-plate advert and a checker flag
	var stop := Node3D.new()
	stop.position = Vector3(8.0, 0.12, FRONT_Z + 3.0)
	add_child(stop)
	for px: float in [-1.6, 1.6]:
		cylinder(Vector3(px, 1.25, 0.0), 0.04, 2.5, brushed, 12, stop)
	box(Vector3(0.0, 2.52, 0.0), Vector3(3.6, 0.06, 1.0), brushed, stop)
	box(Vector3(-0.8, 1.3, -0.02), Vector3(1.2, 1.6, 0.03), mat(Color(0.97, 0.97, 0.95), 0.8), stop)
	var rows := PackedStringArray(["LINE  DESTINATION          MON-FRI   SAT   SUN"])
	for r in 22:
		rows.append("%2d    %-22s %02d:%02d    %02d:%02d  %02d:%02d" % [1 + r % 7, _words(2),
				5 + r / 2, (r * 17) % 60, 6 + r / 2, (r * 23) % 60, 7 + r / 2, (r * 31) % 60])
	var tt := label("\n".join(rows), Vector3(-0.8, 1.3, 0.0), 0.0, 20, 0.0011, Color(0.05, 0.05, 0.1), stop)
	tt.horizontal_alignment = HORIZONTAL_ALIGNMENT_LEFT
	var plate := QuadMesh.new()
	plate.size = Vector2(1.2, 1.6)
	var zone := textured(EvalTextures.rings(256, 6.0, Color(0.95, 0.95, 0.95), Color(0.05, 0.05, 0.05)),
			Vector2.ONE, 0.7)
	add_mesh(plate, zone, Transform3D(Basis(), Vector3(0.8, 1.3, 0.0)), stop)
	label("TRAM 4  7  11", Vector3(0.0, 2.7, 0.0), 0.0, 48, 0.004, Color(1.0, 0.85, 0.2), stop)
	var flag := QuadMesh.new()
	flag.size = Vector2(1.2, 0.8)
	var chk := textured(EvalTextures.checker(128, 16, Color.WHITE, Color.BLACK), Vector2.ONE, 0.8)
	chk.cull_mode = BaseMaterial3D.CULL_DISABLED
	add_mesh(flag, chk, Transform3D(Basis(), Vector3(-12.0, 3.8, FRONT_Z + 0.9)))
	cylinder(Vector3(-12.7, 3.2, FRONT_Z + 0.9), 0.025, 2.4, chrome, 8)
	# rotating chrome sculpture on a plinth
	box(Vector3(16.0, 0.5, FRONT_Z + 2.0), Vector3(1.0, 1.0, 1.0), mat(Color(0.3, 0.3, 0.3), 0.5))
	_sculpture = Node3D.new()
	_sculpture.position = Vector3(16.0, 1.75, FRONT_Z + 2.0)
	add_child(_sculpture)
	var inner := Node3D.new()
	_sculpture.add_child(inner)
	for k in 3:
		var torus := TorusMesh.new()
		torus.inner_radius = 0.42 - k * 0.1
		torus.outer_radius = 0.5 - k * 0.1
		torus.rings = 48
		torus.ring_segments = 16
		add_mesh(torus, chrome, Transform3D(Basis.from_euler(Vector3(k * 1.1, k * 0.7, 0.0)), Vector3.ZERO), inner)
	var ball := SphereMesh.new()
	ball.radius = 0.16
	ball.height = 0.32
	add_mesh(ball, mat(Color(1.0, 0.78, 0.35), 0.05, 1.0), Transform3D(), inner)
	# barber pole: spiral stripes spinning
	_barber = Node3D.new()
	_barber.position = Vector3(-9.0 + 2.75, 1.7, FRONT_Z + 0.25)
	add_child(_barber)
	var pole := CylinderMesh.new()
	pole.top_radius = 0.1
	pole.bottom_radius = 0.1
	pole.height = 0.9
	var spiral := textured(EvalTextures.diagonal_stripes(128, 4, Color(0.85, 0.1, 0.1), Color(0.97, 0.97, 0.97)),
			Vector2(1.0, 1.5), 0.15)
	add_mesh(pole, spiral, Transform3D(), _barber)
	# hanging sign on an arm, swinging
	beam(Vector3(4.0, 3.9, FRONT_Z), Vector3(4.0, 3.9, FRONT_Z + 1.0), 0.04, mat(Color(0.1, 0.1, 0.1), 0.4, 0.8))
	_hanging = Node3D.new()
	_hanging.position = Vector3(4.0, 3.88, FRONT_Z + 0.75)
	add_child(_hanging)
	box(Vector3(0.0, -0.4, 0.0), Vector3(0.05, 0.6, 0.8), mat(Color(0.9, 0.85, 0.6), 0.5), _hanging)
	label("OPEN", Vector3(0.03, -0.33, 0.0), 90.0, 48, 0.004, Color(0.6, 0.1, 0.05), _hanging)
	label("mon-sat 9-18", Vector3(0.03, -0.5, 0.0), 90.0, 24, 0.002, Color(0.1, 0.1, 0.1), _hanging)
	# LED ticker above the pharmacy: dark panel, glowing text scrolling
	box(Vector3(-9.0, 4.0, FRONT_Z + 0.05), Vector3(3.2, 0.35, 0.1), mat(Color(0.02, 0.02, 0.02), 0.3))
	_ticker = label("+++ FLU SHOTS TODAY +++", Vector3(-9.0, 4.0, FRONT_Z + 0.11), 0.0, 32, 0.003,
			Color(0.5, 6.0, 1.2))
	_ticker.shaded = false
	# neon sign
	var neon := label("NOODLES", Vector3(3.0, 5.3, FRONT_Z + 0.2), 0.0, 96, 0.006, Color(8.0, 1.2, 4.4))
	neon.shaded = false
	neon.outline_size = 10
	neon.outline_modulate = Color(1.5, 0.1, 0.8)


func _bulb_strings() -> void:
	var bulb := SphereMesh.new()
	bulb.radius = 0.04
	bulb.height = 0.08
	bulb.radial_segments = 8
	bulb.rings = 4
	var wire := mat(Color(0.05, 0.05, 0.05), 0.5)
	var xforms: Array[Transform3D] = []
	for s in 3:
		var a := Vector3(-26.0 + s * 18.0, 5.5, FRONT_Z + 0.3)
		var b := Vector3(-26.0 + (s + 1) * 18.0, 5.5, FRONT_Z + 0.3)
		var pts := catenary(a, b, 1.0, 36)
		tube(pts, 0.008, wire, 4)
		for k in range(1, pts.size() - 1, 2):
			xforms.append(Transform3D(Basis(), pts[k] + Vector3(0.0, -0.06, 0.0)))
	multimesh(bulb, emissive(Color(1.0, 0.8, 0.45), 6.0), xforms)
