"""Built-in procedural scenes for training data: no downloads, seeded, reproducible.

Each scene is built from nothing with the bpy data API into the current (empty)
Blender file. The mix is chosen for what a supersampler has to learn: thin
wires and fences (sub-pixel geometry), text-like and checker textures (high
frequencies that alias), specular and emissive materials, foliage cards with
alpha, animated objects on non-linear paths and a moving camera, with varied
lighting. Same seed -> same scene, same animation.
"""
from __future__ import annotations

import math
import random
import string

import bpy
import bmesh

# Scene units: the camera looks at a region roughly 12 x 12 units around the origin
# from 6-14 units away, so per-frame motion of a few tenths of a unit is a few low-res pixels.


def _link(ob: bpy.types.Object) -> bpy.types.Object:
    bpy.context.scene.collection.objects.link(ob)
    return ob


def _mesh_object(name: str, build, material=None) -> bpy.types.Object:
    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    build(bm)
    bm.to_mesh(me)
    bm.free()
    ob = _link(bpy.data.objects.new(name, me))
    if material is not None:
        me.materials.append(material)
    return ob


def _cube(bm, size=1.0):
    bmesh.ops.create_cube(bm, size=size)


def _sphere(bm, r=0.5):
    bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=12, radius=r)
    for f in bm.faces:
        f.smooth = True


def _cylinder(bm, r=0.5, depth=1.0, seg=16):
    bmesh.ops.create_cone(bm, cap_ends=True, segments=seg, radius1=r, radius2=r, depth=depth)


def _cone(bm, r=0.5, depth=1.0):
    bmesh.ops.create_cone(bm, cap_ends=True, segments=20, radius1=r, radius2=0.0, depth=depth)


def _plane(bm, size=1.0):
    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=size / 2)


# --- materials -------------------------------------------------------------------

def _material(name: str, rng: random.Random, kind: str) -> bpy.types.Material:
    """kind: diffuse | checker | brick | stripes | text | metal | glossy | emissive | glass | leaf."""
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    inp = bsdf.inputs

    def colour():
        h, s, v = rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9)
        import colorsys
        return (*colorsys.hsv_to_rgb(h, s, v), 1.0)

    def coords(scale: float):
        tc = nt.nodes.new("ShaderNodeTexCoord")
        mp = nt.nodes.new("ShaderNodeMapping")
        mp.inputs["Scale"].default_value = (scale, scale, scale)
        mp.inputs["Rotation"].default_value = (0.0, 0.0, rng.uniform(0, math.pi))
        nt.links.new(tc.outputs["Object"], mp.inputs["Vector"])
        return mp.outputs["Vector"]

    inp["Base Color"].default_value = colour()
    inp["Roughness"].default_value = rng.uniform(0.3, 0.9)
    if kind in ("metal", "glossy", "emissive", "glass"):
        _surface(kind, inp, colour, rng)
    elif kind != "diffuse":
        _texture(kind, nt, inp, colour, coords, rng)
    return mat


def _texture(kind: str, nt, inp, colour, coords, rng: random.Random) -> None:
    """The node graph of a textured material (checker | brick | stripes | text | leaf) into its BSDF inputs."""
    if kind == "checker":
        tex = nt.nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = rng.uniform(4.0, 16.0)
        tex.inputs["Color1"].default_value = colour()
        tex.inputs["Color2"].default_value = colour()
        nt.links.new(coords(1.0), tex.inputs["Vector"])
        nt.links.new(tex.outputs["Color"], inp["Base Color"])
    elif kind == "brick":
        tex = nt.nodes.new("ShaderNodeTexBrick")
        tex.inputs["Scale"].default_value = rng.uniform(2.0, 6.0)
        tex.inputs["Mortar Size"].default_value = rng.uniform(0.01, 0.04)
        tex.inputs["Color1"].default_value = colour()
        tex.inputs["Color2"].default_value = colour()
        nt.links.new(coords(1.0), tex.inputs["Vector"])
        nt.links.new(tex.outputs["Color"], inp["Base Color"])
    elif kind == "stripes":
        tex = nt.nodes.new("ShaderNodeTexWave")
        tex.inputs["Scale"].default_value = rng.uniform(3.0, 12.0)
        tex.inputs["Distortion"].default_value = rng.uniform(0.0, 2.0)
        ramp = nt.nodes.new("ShaderNodeValToRGB")  # hard edges: high frequencies
        ramp.color_ramp.interpolation = "CONSTANT"
        ramp.color_ramp.elements[0].color = colour()
        ramp.color_ramp.elements[1].position = 0.5
        ramp.color_ramp.elements[1].color = colour()
        nt.links.new(coords(1.0), tex.inputs["Vector"])
        nt.links.new(tex.outputs["Fac"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], inp["Base Color"])
    elif kind == "text":
        # text-like glyph noise: thresholded stretched Voronoi cells read like small print
        tex = nt.nodes.new("ShaderNodeTexVoronoi")
        tex.feature = "DISTANCE_TO_EDGE"
        tex.inputs["Scale"].default_value = rng.uniform(10.0, 30.0)
        ramp = nt.nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.interpolation = "CONSTANT"
        ramp.color_ramp.elements[0].color = (0.02, 0.02, 0.02, 1.0)
        ramp.color_ramp.elements[1].position = 0.06
        ramp.color_ramp.elements[1].color = (0.9, 0.9, 0.85, 1.0)
        mp = nt.nodes.new("ShaderNodeMapping")
        mp.inputs["Scale"].default_value = (1.0, 3.0, 1.0)
        tc = nt.nodes.new("ShaderNodeTexCoord")
        nt.links.new(tc.outputs["Object"], mp.inputs["Vector"])
        nt.links.new(mp.outputs["Vector"], tex.inputs["Vector"])
        nt.links.new(tex.outputs["Distance"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], inp["Base Color"])
    elif kind == "leaf":
        # foliage card: alpha from a thresholded noise, like a cut-out leaf texture
        tex = nt.nodes.new("ShaderNodeTexVoronoi")
        tex.inputs["Scale"].default_value = rng.uniform(3.0, 8.0)
        ramp = nt.nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.interpolation = "CONSTANT"
        ramp.color_ramp.elements[0].color = (1.0, 1.0, 1.0, 1.0)
        ramp.color_ramp.elements[1].position = rng.uniform(0.3, 0.5)
        ramp.color_ramp.elements[1].color = (0.0, 0.0, 0.0, 1.0)
        nt.links.new(coords(1.0), tex.inputs["Vector"])
        nt.links.new(tex.outputs["Distance"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], inp["Alpha"])
        g = rng.uniform(0.25, 0.6)
        inp["Base Color"].default_value = (0.1 * g, g, 0.15 * g, 1.0)


def _surface(kind: str, inp, colour, rng: random.Random) -> None:
    """The BSDF settings of an untextured material: metal | glossy | emissive | glass."""
    if kind == "metal":
        inp["Metallic"].default_value = 1.0
        inp["Roughness"].default_value = rng.uniform(0.02, 0.25)
    elif kind == "glossy":
        inp["Roughness"].default_value = rng.uniform(0.0, 0.1)
        inp["Coat Weight"].default_value = 1.0
    elif kind == "emissive":
        inp["Emission Color"].default_value = colour()
        inp["Emission Strength"].default_value = rng.uniform(2.0, 12.0)
    elif kind == "glass":
        inp["Transmission Weight"].default_value = 1.0
        inp["Roughness"].default_value = rng.uniform(0.0, 0.1)


# --- animation -------------------------------------------------------------------

def _smooth_keys(ob, path: str, values: list, frames: list[int]) -> None:
    """Keyframes with Bezier interpolation: velocity changes along the path (non-linear motion)."""
    for v, f in zip(values, frames):
        setattr(ob, path, v)
        ob.keyframe_insert(path, frame=f)


def _key_frames(rng: random.Random, start: int, end: int, n: int) -> list[int]:
    if end <= start:
        return [start]
    inner = sorted(rng.sample(range(start + 1, end), k=min(n - 2, max(0, end - start - 1))))
    return [start, *inner, end]


def _vec_add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _random_walk(rng: random.Random, p0, n: int, step: float, z_range=None) -> list[tuple]:
    pts = [tuple(p0)]
    for _ in range(n - 1):
        d = (rng.uniform(-1, 1) * step, rng.uniform(-1, 1) * step, rng.uniform(-0.3, 0.3) * step)
        p = _vec_add(pts[-1], d)
        if z_range:
            p = (p[0], p[1], min(max(p[2], z_range[0]), z_range[1]))
        pts.append(p)
    return pts


def _add_camera(name: str, rng: random.Random, start: int, end: int, speed: float) -> bpy.types.Object:
    cam = bpy.data.cameras.new(name)
    cam.lens = rng.uniform(28.0, 60.0)
    cam.clip_start, cam.clip_end = 0.05, 500.0
    ob = _link(bpy.data.objects.new(name, cam))
    target = _link(bpy.data.objects.new(name + "_target", None))
    ang = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(6.0, 12.0)
    p0 = (dist * math.cos(ang), dist * math.sin(ang), rng.uniform(0.8, 4.0))
    n_keys = max(2, min(5, (end - start) // 6 + 2))
    keys = _key_frames(rng, start, end, n_keys)
    span = max(1, end - start)
    step = speed * span / max(1, len(keys) - 1)
    _smooth_keys(ob, "location", _random_walk(rng, p0, len(keys), step, z_range=(0.3, 6.0)), keys)
    t0 = (rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5), rng.uniform(0.0, 1.5))
    _smooth_keys(target, "location", _random_walk(rng, t0, len(keys), step * 0.5), keys)
    c = ob.constraints.new("TRACK_TO")
    c.target = target
    c.track_axis, c.up_axis = "TRACK_NEGATIVE_Z", "UP_Y"
    return ob


def build_scene(seed: int, frames: int, cut_prob: float = 0.5) -> dict:
    """Fill the current empty Blender file with a random scene animated over frames 1..frames.

    Returns a description (for meta.json 'source'). A sequence of 8+ frames gets a
    camera cut (a second camera bound by a timeline marker) with probability cut_prob.
    The parts are added in a fixed order from one random stream, so a seed is one scene.
    """
    rng = random.Random(seed)
    sc = bpy.context.scene
    sc.frame_start, sc.frame_end = 1, frames
    start, end = 1, frames
    desc: dict = {"seed": seed, "objects": {}}

    def count(kind: str, n: int = 1):
        desc["objects"][kind] = desc["objects"].get(kind, 0) + n

    _add_world_and_lights(rng, sc, count)
    _add_ground_and_walls(rng, count)
    _add_solids(rng, start, end, count)
    _add_wires_and_fence(rng, count)
    _add_text(rng, count)
    _add_foliage(rng, start, end, count)
    desc["cut_at"] = _add_cameras(rng, sc, frames, start, end, cut_prob)
    return desc


def _add_world_and_lights(rng: random.Random, sc, count) -> None:
    """World and lights: vary the mood from midday to dusk to indoor-like."""
    world = bpy.data.worlds.new("world")
    sc.world = world
    bg = world.node_tree.nodes["Background"]
    sky = (rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.7), rng.uniform(0.5, 1.0), 1.0)
    bg.inputs["Color"].default_value = sky
    bg.inputs["Strength"].default_value = rng.uniform(0.2, 1.2)
    sun = bpy.data.lights.new("sun", "SUN")
    sun.energy = rng.uniform(1.5, 5.0)
    sun.angle = math.radians(rng.uniform(0.5, 8.0))
    sun.color = (1.0, rng.uniform(0.75, 1.0), rng.uniform(0.6, 1.0))
    sun_ob = _link(bpy.data.objects.new("sun", sun))
    sun_ob.rotation_euler = (math.radians(rng.uniform(10, 70)), 0.0, rng.uniform(0, 2 * math.pi))
    for i in range(rng.randint(0, 3)):
        kind = rng.choice(["POINT", "AREA", "SPOT"])
        li = bpy.data.lights.new(f"light{i}", kind)
        li.energy = rng.uniform(100.0, 800.0)
        li.color = (rng.uniform(0.5, 1), rng.uniform(0.5, 1), rng.uniform(0.5, 1))
        lo = _link(bpy.data.objects.new(f"light{i}", li))
        lo.location = (rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(1.5, 6))
        if kind != "POINT":
            lo.rotation_euler = (rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.0)
        count("light")


def _add_ground_and_walls(rng: random.Random, count) -> None:
    """Ground and backdrop walls with high-frequency textures."""
    ground = _mesh_object("ground", lambda bm: _plane(bm, 60.0),
                          _material("ground", rng, rng.choice(["checker", "brick", "stripes", "text"])))
    ground.location = (0, 0, 0)
    for i in range(rng.randint(1, 2)):
        wall = _mesh_object(f"wall{i}", lambda bm: _cube(bm, 1.0),
                            _material(f"wall{i}", rng, rng.choice(["brick", "text", "stripes", "checker"])))
        a = rng.uniform(0, 2 * math.pi)
        wall.location = (9 * math.cos(a), 9 * math.sin(a), 2.0)
        wall.scale = (rng.uniform(6, 14), 0.3, 4.0)
        wall.rotation_euler = (0, 0, a + math.pi / 2)
        count("wall")


def _add_solids(rng: random.Random, start: int, end: int, count) -> None:
    """Solid objects, some animated along smooth random paths and spinning."""
    kinds = ["checker", "brick", "stripes", "text", "metal", "glossy", "emissive", "glass", "diffuse"]
    shapes = [_cube, _sphere, _cylinder, _cone]
    for i in range(rng.randint(5, 10)):
        shape = rng.choice(shapes)
        ob = _mesh_object(f"obj{i}", shape, _material(f"obj{i}", rng, rng.choice(kinds)))
        s = rng.uniform(0.4, 1.6)
        ob.scale = (s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4))
        p0 = (rng.uniform(-5, 5), rng.uniform(-5, 5), s * 0.5 + rng.uniform(0, 1.5))
        ob.location = p0
        ob.rotation_euler = (0.0, 0.0, rng.uniform(0, 2 * math.pi))
        if rng.random() < 0.5:
            keys = _key_frames(rng, start, end, 4)
            step = rng.uniform(0.05, 0.3) * (end - start + 1) / max(1, len(keys) - 1)
            _smooth_keys(ob, "location", _random_walk(rng, p0, len(keys), step, z_range=(s * 0.5, 4.0)), keys)
            count("moving")
        if rng.random() < 0.5:
            spin = rng.uniform(-0.15, 0.15)
            rots = [(rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), spin * (f - start)) for f in (start, end)]
            _smooth_keys(ob, "rotation_euler", rots, [start, end])
            count("spinning")
        count("solid")


def _add_wires_and_fence(rng: random.Random, count) -> None:
    """Thin wires (power-line like) and a fence: sub-pixel geometry that aliases."""
    wire_mat = _material("wire", rng, rng.choice(["metal", "diffuse"]))
    for i in range(rng.randint(2, 6)):
        r = rng.uniform(0.006, 0.03)
        ln = rng.uniform(8, 20)
        ob = _mesh_object(f"wire{i}", lambda bm: _cylinder(bm, r, ln, seg=6), wire_mat)
        ob.location = (rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(0.5, 5.0))
        ob.rotation_euler = (math.pi / 2 + rng.uniform(-0.4, 0.4), 0.0, rng.uniform(0, math.pi))
        count("wire")
    if rng.random() < 0.8:
        fence_mat = _material("fence", rng, rng.choice(["metal", "diffuse", "stripes"]))
        a = rng.uniform(0, math.pi)
        n_posts = rng.randint(12, 30)
        gap = rng.uniform(0.15, 0.4)
        h = rng.uniform(0.8, 2.0)
        fx, fy = rng.uniform(-3, 3), rng.uniform(-3, 3)
        for k in range(n_posts):
            post = _mesh_object(f"fence_post{k}", lambda bm: _cube(bm, 1.0), fence_mat)
            d = (k - n_posts / 2) * gap
            post.location = (fx + d * math.cos(a), fy + d * math.sin(a), h / 2)
            post.scale = (0.03, 0.03, h)
        for k, z in enumerate((0.3 * h, 0.9 * h)):
            rail = _mesh_object(f"fence_rail{k}", lambda bm: _cube(bm, 1.0), fence_mat)
            rail.location = (fx, fy, z)
            rail.scale = (n_posts * gap, 0.02, 0.02)
            rail.rotation_euler = (0, 0, a)
        count("fence")


def _add_text(rng: random.Random, count) -> None:
    """Real text (Blender's built-in font): glyph edges are the hardest case for upscalers."""
    for i in range(rng.randint(1, 3)):
        cu = bpy.data.curves.new(f"text{i}", "FONT")
        cu.body = "".join(rng.choice(string.ascii_letters + string.digits + "  ") for _ in range(rng.randint(6, 18)))
        cu.size = rng.uniform(0.3, 1.0)
        cu.extrude = rng.uniform(0.0, 0.05)
        cu.align_x = "CENTER"
        ob = _link(bpy.data.objects.new(f"text{i}", cu))
        cu.materials.append(_material(f"text{i}", rng, rng.choice(["diffuse", "emissive", "metal"])))
        ob.location = (rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(0.5, 3.0))
        ob.rotation_euler = (math.pi / 2, 0.0, rng.uniform(0, 2 * math.pi))
        count("text")


def _add_foliage(rng: random.Random, start: int, end: int, count) -> None:
    """Foliage: bushes of alpha-cut cards, swaying a little."""
    for i in range(rng.randint(1, 3)):
        leaf_mat = _material(f"leaf{i}", rng, "leaf")
        c = (rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(0.3, 1.5))
        for k in range(rng.randint(6, 14)):
            ob = _mesh_object(f"leaf{i}_{k}", lambda bm: _plane(bm, rng.uniform(0.4, 1.2)), leaf_mat)
            ob.location = _vec_add(c, (rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.6)))
            r0 = (rng.uniform(0, math.pi), rng.uniform(0, math.pi), rng.uniform(0, math.pi))
            sway = rng.uniform(0.02, 0.15)
            _smooth_keys(ob, "rotation_euler", [r0, _vec_add(r0, (sway, -sway, sway)), r0],
                         [start, (start + end) // 2 if end - start >= 2 else end, end] if end > start else [start])
        count("bush")


def _add_cameras(rng: random.Random, sc, frames: int, start: int, end: int, cut_prob: float) -> int | None:
    """Camera(s): moving, looking at a moving target; maybe a cut to a second camera. Returns the cut's frame
    index (from 0) or None."""
    speed = rng.uniform(0.05, 0.3)
    cam = _add_camera("camera", rng, start, end, speed)
    sc.camera = cam
    cut_at = None
    if frames >= 8 and rng.random() < cut_prob:
        cut = rng.randint(start + frames // 3, start + 2 * frames // 3)
        cam2 = _add_camera("camera_b", rng, start, end, rng.uniform(0.05, 0.3))
        m0 = sc.timeline_markers.new("shot_a", frame=start)
        m0.camera = cam
        m1 = sc.timeline_markers.new("shot_b", frame=cut)
        m1.camera = cam2
        cut_at = cut - start
    return cut_at
