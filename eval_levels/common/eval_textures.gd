class_name EvalTextures
extends RefCounted
## Textures made by code (no files): high-contrast patterns that alias, shimmer and moire when
## undersampled, and alpha cut-outs for foliage, chain-link and grates. Every function is
## deterministic (fixed seeds), and every texture has mipmaps, as a game's would.


static func _finish(img: Image) -> ImageTexture:
	img.generate_mipmaps()
	return ImageTexture.create_from_image(img)


static func _blank(size: int, color: Color, alpha: bool = false) -> Image:
	var img := Image.create_empty(size, size, false, Image.FORMAT_RGBA8 if alpha else Image.FORMAT_RGB8)
	img.fill(color)
	return img


## Checkerboard of `cells` x `cells` squares.
static func checker(size: int, cells: int, a: Color, b: Color) -> ImageTexture:
	var img := _blank(size, a)
	var c := size / cells
	for y in cells:
		for x in cells:
			if (x + y) % 2 == 1:
				img.fill_rect(Rect2i(x * c, y * c, c, c), b)
	return _finish(img)


## `count` stripes across the texture (vertical: stripes run top to bottom), `duty` = share of a.
static func stripes(size: int, count: int, a: Color, b: Color, vertical: bool = true,
		duty: float = 0.5) -> ImageTexture:
	var img := _blank(size, b)
	var period := size / count
	var w := maxi(1, int(round(period * duty)))
	for i in count:
		if vertical:
			img.fill_rect(Rect2i(i * period, 0, w, size), a)
		else:
			img.fill_rect(Rect2i(0, i * period, size, w), a)
	return _finish(img)


## Diagonal stripes (45 degrees, tiles seamlessly): a spiral on a cylinder.
static func diagonal_stripes(size: int, count: int, a: Color, b: Color) -> ImageTexture:
	var img := _blank(size, b)
	var period := size / count
	for y in size:
		for x in size:
			if (x + y) % period < period / 2:
				img.set_pixel(x, y, a)
	return _finish(img)


## Running-bond bricks with thin mortar lines and per-brick colour variation.
static func bricks(size: int, rows: int, cols: int, mortar_px: int, base: Color, mortar: Color,
		seed: int) -> ImageTexture:
	var rng := RandomNumberGenerator.new()
	rng.seed = seed
	var img := _blank(size, mortar)
	var bh := size / rows
	var bw := size / cols
	for r in rows:
		var off := (bw / 2) if r % 2 == 1 else 0
		for c in cols + 1:
			var x0 := c * bw - off
			var tint := base.darkened(rng.randf_range(0.0, 0.35)).lightened(rng.randf_range(0.0, 0.15))
			var rect := Rect2i(x0 + mortar_px, r * bh + mortar_px, bw - mortar_px, bh - mortar_px)
			rect = rect.intersection(Rect2i(0, 0, size, size))
			if rect.size.x > 0:
				img.fill_rect(rect, tint)
				# a few dark speckles per brick: fine detail inside the flat areas
				for k in 6:
					var px := rng.randi_range(rect.position.x, rect.end.x - 2)
					var py := rng.randi_range(rect.position.y, rect.end.y - 2)
					img.fill_rect(Rect2i(px, py, 2, 1), tint.darkened(0.45))
	return _finish(img)


## Square floor tiles with grout, alternating two colours (a checker with gaps).
static func tiles(size: int, cells: int, grout_px: int, a: Color, b: Color, grout: Color) -> ImageTexture:
	var img := _blank(size, grout)
	var c := size / cells
	for y in cells:
		for x in cells:
			img.fill_rect(Rect2i(x * c + grout_px, y * c + grout_px, c - grout_px, c - grout_px),
					a if (x + y) % 2 == 0 else b)
	return _finish(img)


## Concentric rings (a zone plate-like target: every spatial frequency at once).
static func rings(size: int, period_px: float, a: Color, b: Color) -> ImageTexture:
	var img := _blank(size, a)
	var h := size * 0.5
	for y in size:
		for x in size:
			var r := Vector2(x - h + 0.5, y - h + 0.5).length()
			var k := r * r / (period_px * h)
			if int(k) % 2 == 1:
				img.set_pixel(x, y, b)
	return _finish(img)


## Chain-link fence: a diamond wire mesh, transparent between the wires. Tiles seamlessly.
static func chain_link(size: int, cells: int, wire_px: float) -> ImageTexture:
	var img := _blank(size, Color(0.0, 0.0, 0.0, 0.0), true)
	var c := float(size) / cells
	for y in size:
		for x in size:
			var u := fposmod((x + y + 1.0) / c, 1.0) * c
			var v := fposmod((x - y) / c, 1.0) * c
			var d := minf(minf(u, c - u), minf(v, c - v))
			if d < wire_px * 0.7:
				var shade := 0.55 + 0.45 * (1.0 - d / (wire_px * 0.7))
				img.set_pixel(x, y, Color(0.62 * shade, 0.64 * shade, 0.66 * shade, 1.0))
	return _finish(img)


## Steel grate: square bars, transparent holes.
static func grate(size: int, cells: int, bar_px: int, color: Color) -> ImageTexture:
	var img := _blank(size, Color(0.0, 0.0, 0.0, 0.0), true)
	var c := size / cells
	for i in cells:
		img.fill_rect(Rect2i(i * c, 0, bar_px, size), color)
		img.fill_rect(Rect2i(0, i * c, size, bar_px), color.darkened(0.2))
	return _finish(img)


## A tuft of grass blades (alpha cut-out), bases at the bottom edge.
static func grass(size: int, blades: int, seed: int) -> ImageTexture:
	var rng := RandomNumberGenerator.new()
	rng.seed = seed
	var img := _blank(size, Color(0.2, 0.3, 0.1, 0.0), true)
	for i in blades:
		var x0 := rng.randf_range(size * 0.08, size * 0.92)
		var lean := rng.randf_range(-0.35, 0.35) * size
		var height := rng.randf_range(0.45, 0.98) * size
		var width := rng.randf_range(1.5, 4.0) * size / 128.0
		var col := Color(rng.randf_range(0.18, 0.42), rng.randf_range(0.42, 0.7), rng.randf_range(0.08, 0.2))
		var rows := int(height)
		for r in rows:
			var u := float(r) / rows  # 0 at the base, 1 at the tip
			var cx := x0 + lean * u * u
			var w := maxf(1.0, width * (1.0 - u))
			var y := size - 1 - r
			img.fill_rect(Rect2i(int(cx - w * 0.5), y, int(ceil(w)), 1), col.darkened(0.4 * (1.0 - u)))
	return _finish(img)


## A cluster of leaves (alpha cut-out) with a darker midrib on each leaf.
static func leaves(size: int, count: int, seed: int, base: Color) -> ImageTexture:
	var rng := RandomNumberGenerator.new()
	rng.seed = seed
	var img := _blank(size, Color(base, 0.0), true)
	for i in count:
		var cx := rng.randf_range(0.18, 0.82) * size
		var cy := rng.randf_range(0.18, 0.82) * size
		var rx := rng.randf_range(0.05, 0.09) * size
		var ry := rx * rng.randf_range(1.8, 2.6)
		var col := base.darkened(rng.randf_range(-0.15, 0.35))
		for dy in range(-int(ry), int(ry) + 1):
			var hw := rx * sqrt(maxf(0.0, 1.0 - pow(dy / ry, 2.0)))
			var y := int(cy) + dy
			if y < 0 or y >= size or hw < 0.5:
				continue
			var x0 := clampi(int(cx - hw), 0, size - 1)
			var x1 := clampi(int(cx + hw), 0, size - 1)
			img.fill_rect(Rect2i(x0, y, x1 - x0 + 1, 1), col)
			img.set_pixel(clampi(int(cx), 0, size - 1), y, col.darkened(0.5))
	return _finish(img)


## Smooth value noise between two colours (FastNoiseLite, fixed seed): ground, wood, concrete.
static func noise(size: int, seed: int, frequency: float, a: Color, b: Color,
		octaves: int = 4) -> ImageTexture:
	var n := FastNoiseLite.new()
	n.seed = seed
	n.frequency = frequency
	n.fractal_octaves = octaves
	var gray := n.get_seamless_image(size, size)
	var img := _blank(size, a)
	for y in size:
		for x in size:
			img.set_pixel(x, y, a.lerp(b, gray.get_pixel(x, y).r))
	return _finish(img)


## Wood planks along U with dark gaps between boards and grain lines.
static func planks(size: int, boards: int, seed: int) -> ImageTexture:
	var rng := RandomNumberGenerator.new()
	rng.seed = seed
	var img := _blank(size, Color(0.08, 0.06, 0.04))
	var bh := size / boards
	for i in boards:
		var col := Color(0.55, 0.38, 0.22).darkened(rng.randf_range(0.0, 0.35))
		img.fill_rect(Rect2i(0, i * bh + 2, size, bh - 2), col)
		for g in 5:
			var gy := i * bh + 3 + rng.randi_range(0, bh - 6)
			img.fill_rect(Rect2i(0, gy, size, 1), col.darkened(0.25))
		# butt joint of the board
		img.fill_rect(Rect2i(rng.randi_range(0, size - 3), i * bh, 2, bh), Color(0.08, 0.06, 0.04))
	return _finish(img)
