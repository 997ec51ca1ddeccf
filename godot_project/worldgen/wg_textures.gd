extends RefCounted
## Procedural textures for the training-world generator (worldgen/world_gen.gd). Every pattern is
## drawn from the caller's RandomNumberGenerator, so a world seed gives the same pixels.

const OPAQUE_KINDS := ["checker", "stripes", "bricks", "noise", "glyphs", "tiles", "fine_lines", "dots",
		"planks", "diagonal"]


static func rand_colour(rng: RandomNumberGenerator, v_min: float = 0.1, v_max: float = 1.0) -> Color:
	return Color.from_hsv(rng.randf(), rng.randf_range(0.0, 0.9), rng.randf_range(v_min, v_max))


## Two colours of a random contrast (mostly high: the hard cases for an upscaler).
static func pair(rng: RandomNumberGenerator) -> Array[Color]:
	var a := rand_colour(rng, 0.6, 1.0)
	var b := rand_colour(rng, 0.0, 0.35)
	if rng.randf() < 0.3:
		b = a.darkened(rng.randf_range(0.2, 0.6))
	return [a, b]


static func to_texture(img: Image, mipmaps: bool = true) -> ImageTexture:
	if mipmaps:
		img.generate_mipmaps()
	return ImageTexture.create_from_image(img)


static func opaque(rng: RandomNumberGenerator, kind: String = "") -> Image:
	if kind == "":
		kind = OPAQUE_KINDS[rng.randi() % OPAQUE_KINDS.size()]
	match kind:
		"checker":
			return checker(rng)
		"stripes":
			return stripes(rng)
		"bricks":
			return bricks(rng)
		"noise":
			return noise(rng)
		"glyphs":
			return glyphs(rng)
		"tiles":
			return tiles(rng)
		"fine_lines":
			return fine_lines(rng)
		"dots":
			return dots(rng)
		"planks":
			return planks(rng)
	return diagonal(rng)


static func checker(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	var n: int = [2, 4, 8, 16, 32][rng.randi() % 5]
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(c[1])
	var cell := 256 / n
	for y in n:
		for x in n:
			if (x + y) % 2 == 0:
				img.fill_rect(Rect2i(x * cell, y * cell, cell, cell), c[0])
	return img


static func stripes(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(c[1])
	var period: int = [4, 6, 8, 16, 32, 64][rng.randi() % 6]
	var width := maxi(1, int(period * rng.randf_range(0.2, 0.6)))
	var vertical := rng.randf() < 0.5
	for p in range(0, 256, period):
		img.fill_rect(Rect2i(p, 0, width, 256) if vertical else Rect2i(0, p, 256, width), c[0])
	return img


static func diagonal(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	var period: int = [4, 8, 16, 32][rng.randi() % 4]
	var width := maxi(1, period / 2)
	var both := rng.randf() < 0.4
	for y in 128:
		for x in 128:
			var on := (x + y) % period < width or both and posmod(x - y, period) < width
			img.set_pixel(x, y, c[0] if on else c[1])
	return img


static func bricks(rng: RandomNumberGenerator) -> Image:
	var mortar := rand_colour(rng, 0.6, 0.95) if rng.randf() < 0.6 else rand_colour(rng, 0.0, 0.2)
	var base := rand_colour(rng, 0.25, 0.8)
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(mortar)
	var bh: int = [8, 16, 32][rng.randi() % 3]
	var bw := bh * 2
	var gap := maxi(1, bh / 8)
	for row in 256 / bh:
		var off := (bw / 2) if row % 2 == 1 else 0
		for col in range(-1, 256 / bw + 1):
			var x := col * bw + off
			var tint := base.darkened(rng.randf_range(0.0, 0.35)).lightened(rng.randf_range(0.0, 0.15))
			img.fill_rect(Rect2i(x + gap, row * bh + gap, bw - 2 * gap, bh - 2 * gap).intersection(
					Rect2i(0, 0, 256, 256)), tint)
	return img


static func planks(rng: RandomNumberGenerator) -> Image:
	var base := rand_colour(rng, 0.3, 0.8)
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(base.darkened(0.7))
	var ph: int = [8, 16, 32][rng.randi() % 3]
	for row in 256 / ph:
		var x := 0
		while x < 256:
			var w := rng.randi_range(32, 160)
			var tint := base.darkened(rng.randf_range(0.0, 0.4))
			img.fill_rect(Rect2i(x + 1, row * ph + 1, w - 2, ph - 2).intersection(Rect2i(0, 0, 256, 256)), tint)
			for g in rng.randi_range(0, 3):  # grain lines
				var gy := row * ph + rng.randi_range(2, ph - 3)
				img.fill_rect(Rect2i(x + 2, gy, maxi(1, w - 4), 1).intersection(Rect2i(0, 0, 256, 256)),
						tint.darkened(0.3))
			x += w
	return img


static func noise(rng: RandomNumberGenerator) -> Image:
	var n := FastNoiseLite.new()
	n.seed = rng.randi()
	n.noise_type = [FastNoiseLite.TYPE_SIMPLEX, FastNoiseLite.TYPE_CELLULAR, FastNoiseLite.TYPE_VALUE,
			FastNoiseLite.TYPE_PERLIN][rng.randi() % 4]
	n.frequency = rng.randf_range(0.01, 0.2)
	n.fractal_octaves = rng.randi_range(1, 5)
	var grey := n.get_seamless_image(128, 128)
	grey.convert(Image.FORMAT_RGBA8)
	var c := pair(rng)
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	var hard := rng.randf() < 0.4
	for y in 128:
		for x in 128:
			var v := grey.get_pixel(x, y).r
			if hard:
				v = 1.0 if v > 0.5 else 0.0
			img.set_pixel(x, y, c[1].lerp(c[0], v))
	return img


static func tiles(rng: RandomNumberGenerator) -> Image:
	var grout := rand_colour(rng, 0.0, 1.0)
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(grout)
	var n: int = [4, 8, 16][rng.randi() % 3]
	var cell := 256 / n
	var g := maxi(1, cell / 10)
	for y in n:
		for x in n:
			img.fill_rect(Rect2i(x * cell + g, y * cell + g, cell - 2 * g, cell - 2 * g), rand_colour(rng))
	return img


static func fine_lines(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(c[1])
	var period := rng.randi_range(2, 6)
	var grid := rng.randf() < 0.5
	for p in range(0, 128, period):
		img.fill_rect(Rect2i(p, 0, 1, 128), c[0])
		if grid:
			img.fill_rect(Rect2i(0, p, 128, 1), c[0])
	return img


static func dots(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(c[1])
	var period: int = [4, 8, 16][rng.randi() % 3]
	var r := period * rng.randf_range(0.2, 0.45)
	for y in 128:
		for x in 128:
			var dx := float(x % period) + 0.5 - period * 0.5
			var dy := float(y % period) + 0.5 - period * 0.5
			if dx * dx + dy * dy < r * r:
				img.set_pixel(x, y, c[0])
	return img


## Text-like rows of random 5x7 glyphs (sharp, high contrast: signs, labels, book spines).
static func glyphs(rng: RandomNumberGenerator) -> Image:
	var c := pair(rng)
	if rng.randf() < 0.5:
		c.reverse()
	var img := Image.create(256, 256, false, Image.FORMAT_RGBA8)
	img.fill(c[1])
	var px: int = [1, 2, 3][rng.randi() % 3]
	var gw := 6 * px
	var gh := 9 * px
	for row in 256 / gh:
		var col := 0
		while col < 256 / gw:
			if rng.randf() < 0.15:  # word gap
				col += 1
				continue
			var bits := rng.randi()
			for gy in 7:
				for gx in 5:
					if (bits >> ((gy * 5 + gx) % 31)) & 1 == 1 and rng.randf() < 0.8:
						img.fill_rect(Rect2i(col * gw + gx * px, row * gh + gy * px, px, px), c[0])
			col += 1
	return img


# --- textures with alpha (alpha scissor / blend / decals) ------------------------------------

## A chain-link / wire-mesh pattern: thin diagonal wires, transparent between.
static func chainlink(rng: RandomNumberGenerator) -> Image:
	var wire := rand_colour(rng, 0.3, 0.9)
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(Color(0, 0, 0, 0))
	var period: int = [8, 16, 32][rng.randi() % 3]
	var square := rng.randf() < 0.4
	for y in 128:
		for x in 128:
			var on := false
			if square:
				on = x % period < 2 or y % period < 2
			else:
				on = (x + y) % period < 2 or posmod(x - y, period) < 2
			if on:
				img.set_pixel(x, y, wire)
	return img


## Grass blades (alpha): thin tapering vertical strokes from the bottom edge.
static func grass(rng: RandomNumberGenerator) -> Image:
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(Color(0, 0, 0, 0))
	var hue := rng.randf_range(0.15, 0.4)
	for b in rng.randi_range(12, 30):
		var x0 := rng.randf_range(4, 124)
		var lean := rng.randf_range(-20, 20)
		var height := rng.randf_range(50, 127)
		var col := Color.from_hsv(hue + rng.randf_range(-0.05, 0.05), rng.randf_range(0.4, 0.9), rng.randf_range(0.3, 0.9))
		for yy in int(height):
			var f := yy / height
			var half := maxf(0.5, 2.5 * (1.0 - f))
			var cx := x0 + lean * f * f
			for xx in range(int(cx - half), int(cx + half) + 1):
				if xx >= 0 and xx < 128:
					img.set_pixel(xx, 127 - yy, col.darkened(0.3 * (1.0 - f)))
	return img


## Leaves (alpha): many small ellipses.
static func leaves(rng: RandomNumberGenerator) -> Image:
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(Color(0, 0, 0, 0))
	var hue := rng.randf_range(0.05, 0.4)
	for l in rng.randi_range(25, 60):
		var cx := rng.randf_range(8, 120)
		var cy := rng.randf_range(8, 120)
		var rx := rng.randf_range(2, 7)
		var ry := rx * rng.randf_range(1.5, 2.5)
		var col := Color.from_hsv(hue + rng.randf_range(-0.06, 0.06), rng.randf_range(0.4, 0.95), rng.randf_range(0.2, 0.8))
		for y in range(maxi(0, int(cy - ry)), mini(128, int(cy + ry) + 1)):
			for x in range(maxi(0, int(cx - rx)), mini(128, int(cx + rx) + 1)):
				var dx := (x - cx) / rx
				var dy := (y - cy) / ry
				if dx * dx + dy * dy < 1.0:
					img.set_pixel(x, y, col)
	return img


## Decal images (alpha): rings, arrows, stripes, glyph labels, splats.
static func decal(rng: RandomNumberGenerator) -> Image:
	var img := Image.create(128, 128, false, Image.FORMAT_RGBA8)
	img.fill(Color(0, 0, 0, 0))
	var col := rand_colour(rng, 0.5, 1.0)
	match rng.randi() % 4:
		0:  # ring / disc
			var r0 := rng.randf_range(0.0, 40.0)
			var r1 := rng.randf_range(r0 + 4.0, 62.0)
			for y in 128:
				for x in 128:
					var d := Vector2(x - 63.5, y - 63.5).length()
					if d >= r0 and d <= r1:
						img.set_pixel(x, y, col)
		1:  # hazard stripes
			var period := rng.randi_range(8, 24)
			for y in 128:
				for x in 128:
					if (x + y) % period < period / 2:
						img.set_pixel(x, y, col)
		2:  # arrow
			img.fill_rect(Rect2i(54, 40, 20, 80), col)
			for y in 40:
				var half := 40 - y
				img.fill_rect(Rect2i(64 - half, y + 4, 2 * half, 1), col)
		_:  # glyph label
			var g := glyphs(rng)
			g.resize(128, 128, Image.INTERPOLATE_NEAREST)
			for y in range(32, 96):
				for x in 128:
					var p := g.get_pixel(x, y)
					if p.get_luminance() > 0.5:
						img.set_pixel(x, y, col)
	return img
