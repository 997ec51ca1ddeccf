class_name NeuralSSGpuKernels
extends RefCounted
## GLSL compute kernels of the GPU runtime (NeuralSSGpuRunner), one per op of the NSS GPU program
## (addons/neural_ss/runtime/nss_runtime/gpu_program.py is the reference of every op; docs/runtime.md).
##
## Tensors live in storage buffers as vec4-packed channels: element (c, y, x) of a [C, H, W] tensor is
## component c % 4 of vec4 number ((c / 4) * H + y) * W + x; padding lanes (c >= C) hold 0. Every kernel
## runs 8x8 threads per work group over (x, y) and one z slice per output vec4 group, except conv2d (z =
## a block of OCB output groups). All share one push-constant block (96 bytes):
##   o  = out W, H, C4, C        a  = first input W, H, C4, C
##   i1, i2 = op-specific ints   f0 = act id, mul, add, act parameter   f1 = op-specific floats
## Sources are compiled at run time (RenderingDevice.shader_compile_spirv_from_source) with #defines.

const ACTS := ["none", "relu", "sigmoid", "tanh", "softplus", "reinhard", "inv_reinhard", "depth_norm", "abs",
		"clamp01"]

const HEADER := """
#version 450
layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;
layout(push_constant, std430) uniform Params {
	ivec4 o;
	ivec4 a;
	ivec4 i1;
	ivec4 i2;
	vec4 f0;
	vec4 f1;
} p;

vec4 act(vec4 x) {
	int id = int(p.f0.x + 0.5);
	if (id == 1) {
		x = max(x, vec4(0.0));
	} else if (id == 2) {
		x = 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0)));
	} else if (id == 3) {
		x = tanh(clamp(x, -15.0, 15.0));
	} else if (id == 4) {
		x = max(x, vec4(0.0)) + log(1.0 + exp(-abs(x)));
	} else if (id == 5) {
		x = max(x, vec4(0.0));
		x = x / (1.0 + x);
	} else if (id == 6) {
		x = clamp(x, vec4(0.0), vec4(p.f0.w));
		x = x / (1.0 - x);
	} else if (id == 7) {
		x = max(mix(x, vec4(0.0), isnan(x)), vec4(0.0));
		x = 1.0 / (1.0 + x / p.f0.w);
	} else if (id == 8) {
		x = abs(x);
	} else if (id == 9) {
		x = clamp(x, vec4(0.0), vec4(1.0));
	}
	return x * p.f0.y + p.f0.z;
}

// lanes at or past C are zero
vec4 lane_mask(int c4, int C) {
	return vec4(greaterThan(ivec4(C) - ivec4(4 * c4) - ivec4(0, 1, 2, 3), ivec4(0)));
}

#define OUT_IDX(CC, YY, XX) (((CC) * p.o.y + (YY)) * p.o.x + (XX))
#define IN_IDX(CC, YY, XX) (((CC) * p.a.y + (YY)) * p.a.x + (XX))
#define GUARD ivec3 g = ivec3(gl_GlobalInvocationID); if (g.x >= p.o.x || g.y >= p.o.y || g.z >= p.o.z) { return; }
"""

# --- kernels: [storage buffers, body]; source() puts HEADER and the buffers' declarations first ---
# Buffer i is declared at binding i: buffer 0 is the writeonly output, the others readonly inputs; elements
# are vec4 unless the name says "float NAME". input and output (images) declare their own bindings.

const INPUT := [[], """
layout(rgba32f, set = 0, binding = 0) uniform restrict readonly image2D rgbd_in;
layout(rg32f, set = 0, binding = 1) uniform restrict readonly image2D motion_in;
layout(std430, set = 0, binding = 2) restrict writeonly buffer C { vec4 colour[]; };
layout(std430, set = 0, binding = 3) restrict writeonly buffer D { vec4 depth[]; };
layout(std430, set = 0, binding = 4) restrict writeonly buffer M { vec4 motion[]; };
void main() {
	GUARD
	vec4 c = imageLoad(rgbd_in, g.xy);
	vec2 m = imageLoad(motion_in, g.xy).xy;
	int i = g.y * p.o.x + g.x;
	colour[i] = vec4(c.rgb, 0.0);
	depth[i] = vec4(c.a, 0.0, 0.0, 0.0);
	motion[i] = vec4(m, 0.0, 0.0);
}
"""]

const OUTPUT := [[], """
layout(rgba32f, set = 0, binding = 0) uniform restrict writeonly image2D img;
layout(std430, set = 0, binding = 1) restrict readonly buffer X { vec4 x[]; };
void main() {
	GUARD
	imageStore(img, g.xy, vec4(x[OUT_IDX(0, g.y, g.x)].rgb, 1.0));
}
"""]

const MAP := [["o_buf", "a_buf"], """
void main() {
	GUARD
	int i = OUT_IDX(g.z, g.y, g.x);
	o_buf[i] = act(a_buf[i]) * lane_mask(g.z, p.o.w);
}
"""]

# concat / slice / copy, one dispatch per input: channels [i1.y, i1.y + i1.z) of the input (binding 1)
# go to channels [i1.x, i1.x + i1.z) of the output (binding 0, written as floats: no read-modify-write of
# the vec4s other dispatches fill); z runs over ceil(i1.z / 4)
const COPY_CHANNELS := [["float o_f", "a_buf"], """
void main() {
	ivec3 g = ivec3(gl_GlobalInvocationID);
	if (g.x >= p.o.x || g.y >= p.o.y || 4 * g.z >= p.i1.z) {
		return;
	}
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.i1.z) break;
		int src = p.i1.y + c;
		v[r] = a_buf[OUT_IDX(src / 4, g.y, g.x)][src % 4];
	}
	v = act(v);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.i1.z) break;
		int dst = p.i1.x + c;
		o_f[OUT_IDX(dst / 4, g.y, g.x) * 4 + dst % 4] = v[r];
	}
}
"""]

# i1 = channel counts of inputs 0..3 (0 = unused), i2.x = first channel read from input 0 (slice)
const CONCAT := [["o_buf", "in0", "in1", "in2", "in3"], """
float fetch(int k, int c, int y, int x) {
	int i = OUT_IDX(c / 4, y, x);
	int l = c % 4;
	if (k == 0) return in0[i][l];
	if (k == 1) return in1[i][l];
	if (k == 2) return in2[i][l];
	return in3[i][l];
}
void main() {
	GUARD
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int k = 0;
		int cc = c + p.i2.x;
		if (p.i2.x == 0) {
			cc = c;
			while (k < 3 && cc >= p.i1[k]) { cc -= p.i1[k]; k++; }
		}
		v[r] = fetch(k, cc, g.y, g.x);
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# i1.x: 0 add, 1 mul (b may have 1 channel: broadcast), 2 blend a * x + (1 - a) * y (a broadcast when
# it has 1 channel), 3 where_reset (binding 3 = reset; i1.y = 1 when the "if reset" input is zeros)
const BINARY := [["o_buf", "a_buf", "b_buf", "c_buf"], """
void main() {
	GUARD
	int i = OUT_IDX(g.z, g.y, g.x);
	int mode = p.i1.x;
	vec4 v;
	if (mode == 0) {
		v = a_buf[i] + b_buf[i];
	} else if (mode == 1) {  // b's channel = c % b.C
		vec4 av = a_buf[i];
		v = vec4(0.0);
		for (int r = 0; r < 4; r++) {
			int cb = (4 * g.z + r) % p.i2.x;
			v[r] = av[r] * b_buf[OUT_IDX(cb / 4, g.y, g.x)][cb % 4];
		}
	} else if (mode == 2) {  // a's channel = c % a.C
		vec4 xv = b_buf[i];
		vec4 yv = c_buf[i];
		v = vec4(0.0);
		for (int r = 0; r < 4; r++) {
			int ca = (4 * g.z + r) % p.a.w;
			float al = a_buf[OUT_IDX(ca / 4, g.y, g.x)][ca % 4];
			v[r] = al * xv[r] + (1.0 - al) * yv[r];
		}
	} else {
		bool reset = c_buf[0].x > 0.5;
		v = reset ? (p.i1.y == 1 ? vec4(0.0) : a_buf[i]) : b_buf[i];
	}
	o_buf[i] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

const GATHER_NEAREST := [["o_buf", "x_buf", "flow"], """
void main() {
	GUARD
	vec2 f = flow[OUT_IDX(0, g.y, g.x)].xy;
	int u = clamp(int(roundEven(float(g.x) + f.x)), 0, p.o.x - 1);
	int v = clamp(int(roundEven(float(g.y) + f.y)), 0, p.o.y - 1);
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(x_buf[OUT_IDX(g.z, v, u)]) * lane_mask(g.z, p.o.w);
}
"""]

# conv2d, K x K, stride 1, same size. #define K, OCB (output vec4 groups per thread), PX (pixels per thread,
# 8 apart along x: a work group covers 8*PX x 8 pixels). Register blocking: every weight vec4 read is used
# for PX pixels, every staged input for OCB*4 output channels.
# Weights (binding 2): for each output group og, tap t, input group ci, input lane j: one vec4 of the
# 4 output channels' weights, at p.i1.x + ((og * K*K + t) * cin4 + ci) * 4 + j; bias vec4 og at
# p.i1.y + og (p.i1.y < 0: none). p.i1.z: padding 0 zeros, 1 replicate. Each work group stages an
# (8*PX + K - 1) x (8 + K - 1) tile of one input group in shared memory per step over the input groups.
const CONV := [["o_buf", "x_buf", "w"], """
#define R (K / 2)
#define TWX (8 * PX + K - 1)
#define TWY (8 + K - 1)
shared vec4 tile[TWX * TWY];
void main() {
	ivec2 lx = ivec2(gl_LocalInvocationID.xy);
	ivec2 base = ivec2(gl_WorkGroupID.xy) * ivec2(8 * PX, 8);
	ivec2 org = base - R;
	int og0 = int(gl_WorkGroupID.z) * OCB;
	int W_ = p.a.x;
	int H_ = p.a.y;
	int cin4 = p.a.z;
	int cout4 = p.o.z;
	int gy = base.y + lx.y;
	vec4 acc[OCB][PX];
	for (int o = 0; o < OCB; o++) {
		vec4 b0 = (p.i1.y >= 0 && og0 + o < cout4) ? w[p.i1.y + og0 + o] : vec4(0.0);
		for (int i = 0; i < PX; i++) {
			acc[o][i] = b0;
		}
	}
	int li = lx.y * 8 + lx.x;
	for (int ci = 0; ci < cin4; ci++) {
		for (int t = li; t < TWX * TWY; t += 64) {
			ivec2 q = org + ivec2(t % TWX, t / TWX);
			vec4 v = vec4(0.0);
			if (p.i1.z == 1) {
				q = clamp(q, ivec2(0), ivec2(W_ - 1, H_ - 1));
				v = x_buf[(ci * H_ + q.y) * W_ + q.x];
			} else if (q.x >= 0 && q.y >= 0 && q.x < W_ && q.y < H_) {
				v = x_buf[(ci * H_ + q.y) * W_ + q.x];
			}
			tile[t] = v;
		}
		barrier();
		for (int ky = 0; ky < K; ky++) {
			for (int kx = 0; kx < K; kx++) {
				vec4 v[PX];
				for (int i = 0; i < PX; i++) {
					v[i] = tile[(lx.y + ky) * TWX + lx.x + 8 * i + kx];
				}
				int tap = ky * K + kx;
				for (int o = 0; o < OCB; o++) {
					if (og0 + o >= cout4) break;
					int b = p.i1.x + (((og0 + o) * K * K + tap) * cin4 + ci) * 4;
					vec4 w0 = w[b];
					vec4 w1 = w[b + 1];
					vec4 w2 = w[b + 2];
					vec4 w3 = w[b + 3];
					for (int i = 0; i < PX; i++) {
						acc[o][i] += w0 * v[i].x + w1 * v[i].y + w2 * v[i].z + w3 * v[i].w;
					}
				}
			}
		}
		barrier();
	}
	if (gy < H_) {
		for (int o = 0; o < OCB; o++) {
			int og = og0 + o;
			if (og < cout4) {
				vec4 m = lane_mask(og, p.o.w);
				for (int i = 0; i < PX; i++) {
					int gx = base.x + lx.x + 8 * i;
					if (gx < W_) {
						o_buf[(og * H_ + gy) * W_ + gx] = act(acc[o][i]) * m;
					}
				}
			}
		}
	}
}
"""]

# i1.x: 0 max, 1 average
const POOL2 := [["o_buf", "a_buf"], """
void main() {
	GUARD
	vec4 v00 = a_buf[IN_IDX(g.z, 2 * g.y, 2 * g.x)];
	vec4 v01 = a_buf[IN_IDX(g.z, 2 * g.y, 2 * g.x + 1)];
	vec4 v10 = a_buf[IN_IDX(g.z, 2 * g.y + 1, 2 * g.x)];
	vec4 v11 = a_buf[IN_IDX(g.z, 2 * g.y + 1, 2 * g.x + 1)];
	vec4 v = p.i1.x == 0 ? max(max(v00, v01), max(v10, v11)) : (v00 + v01 + v10 + v11) * 0.25;
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# 2x; i1.x: 0 bilinear (align_corners = False, like torch), 1 nearest
const UPSAMPLE2 := [["o_buf", "a_buf"], """
void main() {
	GUARD
	vec4 v;
	if (p.i1.x == 1) {
		v = a_buf[IN_IDX(g.z, g.y / 2, g.x / 2)];
	} else {
		vec2 src = max((vec2(g.xy) + 0.5) * 0.5 - 0.5, vec2(0.0));
		ivec2 i0 = ivec2(floor(src));
		ivec2 i1 = min(i0 + 1, ivec2(p.a.x - 1, p.a.y - 1));
		vec2 f = src - vec2(i0);
		vec4 top = a_buf[IN_IDX(g.z, i0.y, i0.x)] * (1.0 - f.x) + a_buf[IN_IDX(g.z, i0.y, i1.x)] * f.x;
		vec4 bot = a_buf[IN_IDX(g.z, i1.y, i0.x)] * (1.0 - f.x) + a_buf[IN_IDX(g.z, i1.y, i1.x)] * f.x;
		v = top * (1.0 - f.y) + bot * f.y;
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# i1.x = s. Output channel c*s*s + q is x[c] where q is the jittered sample's block position, else 0.
const FOLD_ONEHOT := [["o_buf", "a_buf", "jit"], """
void main() {
	GUARD
	int s = p.i1.x;
	ivec2 off = ivec2(clamp(floor(float(s) * (0.5 + jit[0].xy)), vec2(0.0), vec2(float(s - 1))));
	int pos = off.y * s + off.x;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c / (s * s);
		if (c % (s * s) == pos) {
			v[r] = a_buf[IN_IDX(ci / 4, g.y, g.x)][ci % 4];
		}
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# One previous frame n of fold_warp (one dispatch per frame): writes the vec4 groups of channels
# (c, n, py, px), i.e. group ((c * N + n) * s*s + q) / 4 for q in 0..s*s-1 (s*s is a multiple of 4).
# i1 = s, n, N, input channels C; z runs over C * s*s / 4 groups. Weight: lane n of the weight tensor.
const FOLD_WARP := [["o_buf", "x_buf", "jit", "flow", "wts"], """
void main() {
	ivec3 g = ivec3(gl_GlobalInvocationID);
	int s = p.i1.x;
	int n = p.i1.y;
	int N = p.i1.z;
	int C = p.i1.w;
	int qg = (s * s) / 4;
	if (g.x >= p.o.x || g.y >= p.o.y || g.z >= C * qg) {
		return;
	}
	int c = g.z / qg;
	int q0 = (g.z % qg) * 4;
	vec2 off = clamp(floor(float(s) * (0.5 + jit[0].xy)), vec2(0.0), vec2(float(s - 1)));
	vec2 f = flow[OUT_IDX(0, g.y, g.x)].xy;
	float wn = wts[OUT_IDX(n / 4, g.y, g.x)][n % 4];
	vec4 v;
	for (int r = 0; r < 4; r++) {
		int q = q0 + r;
		vec2 ph = vec2(float(q % s), float(q / s));
		vec2 pos = float(s) * vec2(g.xy) + ph + float(s) * f;
		vec2 cell = roundEven((pos - off) / float(s));
		vec2 wt = max(1.0 - abs(pos - (float(s) * cell + off)), vec2(0.0));
		bool ok = cell.x >= 0.0 && cell.y >= 0.0 && cell.x <= float(p.o.x - 1) && cell.y <= float(p.o.y - 1);
		ivec2 ci = clamp(ivec2(cell), ivec2(0), ivec2(p.o.x - 1, p.o.y - 1));
		float x = x_buf[OUT_IDX(c / 4, ci.y, ci.x)][c % 4];
		v[r] = ok ? x * wt.x * wt.y * wn : 0.0;
	}
	int grp = ((c * N + n) * s * s + q0) / 4;
	o_buf[OUT_IDX(grp, g.y, g.x)] = act(v);
}
"""]

# i1.x = s. Output (high res) channel c at (x, y) = input channel c*s*s + (y % s)*s + (x % s) at (x/s, y/s).
const DEPTH_TO_SPACE := [["o_buf", "a_buf"], """
void main() {
	GUARD
	int s = p.i1.x;
	int q = (g.y % s) * s + (g.x % s);
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c * s * s + q;
		v[r] = a_buf[IN_IDX(ci / 4, g.y / s, g.x / s)][ci % 4];
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# i1.x = s. Output (low res) channel c*s*s + q at (x, y) = input channel c at (x*s + q % s, y*s + q / s).
const SPACE_TO_DEPTH := [["o_buf", "a_buf"], """
void main() {
	GUARD
	int s = p.i1.x;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c / (s * s);
		int q = c % (s * s);
		v[r] = a_buf[IN_IDX(ci / 4, g.y * s + q / s, g.x * s + q % s)][ci % 4];
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]


# i1.x = s: the bilinear interpolation of the jittered samples (binding 2: jitter) at the output pixel
# centres, folded (channel c*s*s + py*s + px), 3x3 replicate-clamped taps with tent weights.
const UP_FOLDED_JITTERED := [["o_buf", "a_buf", "jit"], """
void main() {
	GUARD
	int s = p.i1.x;
	vec2 j = jit[0].xy;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c / (s * s);
		int q = c % (s * s);
		vec2 t = (vec2(float(q % s), float(q / s)) + 0.5) / float(s) - 0.5 - j;
		float acc = 0.0;
		for (int i = 0; i < 3; i++) {
			float wy = max(1.0 - abs(t.y - float(i - 1)), 0.0);
			int yy = clamp(g.y + i - 1, 0, p.o.y - 1);
			for (int k = 0; k < 3; k++) {
				float wx = max(1.0 - abs(t.x - float(k - 1)), 0.0);
				int xx = clamp(g.x + k - 1, 0, p.o.x - 1);
				acc += wy * wx * a_buf[OUT_IDX(ci / 4, yy, xx)][ci % 4];
			}
		}
		v[r] = acc;
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# a 'one' tensor (binding 1) repeated over the output's pixels
const BROADCAST := [["o_buf", "a_buf"], """
void main() {
	GUARD
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(a_buf[g.z]) * lane_mask(g.z, p.o.w);
}
"""]

# motion (binding 1) of the 3x3 neighbour with the largest normalised depth (binding 2); centre first,
# then row-major; strict comparison (ties keep the earlier); outside pixels never win
const DILATE_MOTION := [["o_buf", "mot", "dn"], """
void main() {
	GUARD
	int i = OUT_IDX(0, g.y, g.x);
	float best = dn[i].x;
	vec2 m = mot[i].xy;
	for (int dy = -1; dy <= 1; dy++) {
		for (int dx = -1; dx <= 1; dx++) {
			ivec2 q = g.xy + ivec2(dx, dy);
			if ((dx == 0 && dy == 0) || q.x < 0 || q.y < 0 || q.x >= p.o.x || q.y >= p.o.y) continue;
			int k = OUT_IDX(0, q.y, q.x);
			float d = dn[k].x;
			if (d > best) {
				best = d;
				m = mot[k].xy;
			}
		}
	}
	o_buf[i] = act(vec4(m, 0.0, 0.0)) * lane_mask(0, p.o.w);
}
"""]

# x (binding 1, high res, C channels) sampled at P + s * motion(block(P)) (binding 2, low res), torch
# grid_sample semantics (align_corners = False, border: tap indices clamped), i1 = s, mode (0 bicubic
# a = -0.75, 1 bilinear), C; output channel C = validity (sample position inside [0, W] x [0, H]).
const WARP_HISTORY := [["o_buf", "x_buf", "mot"], """
vec4 cubic(float t) {
	const float A = -0.75;
	float t1 = t + 1.0;
	float t2 = 1.0 - t;
	float t3 = 2.0 - t;
	return vec4(((A * t1 - 5.0 * A) * t1 + 8.0 * A) * t1 - 4.0 * A,
			((A + 2.0) * t - (A + 3.0)) * t * t + 1.0,
			((A + 2.0) * t2 - (A + 3.0)) * t2 * t2 + 1.0,
			((A * t3 - 5.0 * A) * t3 + 8.0 * A) * t3 - 4.0 * A);
}
void main() {
	GUARD
	int s = p.i1.x;
	int C = p.i1.z;
	int W = p.o.x;
	int H = p.o.y;
	vec2 m = mot[(g.y / s) * (W / s) + g.x / s].xy * float(s);
	vec2 pos = vec2(g.xy) + 0.5 + m;
	float valid = (pos.x >= 0.0 && pos.x <= float(W) && pos.y >= 0.0 && pos.y <= float(H)) ? 1.0 : 0.0;
	vec4 v = vec4(0.0);
	if (g.z < p.a.z) {
		vec2 ip = pos - 0.5;
		vec2 f0 = floor(ip);
		vec2 t = ip - f0;
		ivec2 b = ivec2(f0);
		if (p.i1.y == 0) {
			vec4 wx = cubic(t.x);
			vec4 wy = cubic(t.y);
			for (int j = 0; j < 4; j++) {
				int yy = clamp(b.y - 1 + j, 0, H - 1);
				vec4 row = vec4(0.0);
				for (int i = 0; i < 4; i++) {
					int xx = clamp(b.x - 1 + i, 0, W - 1);
					row += x_buf[(g.z * H + yy) * W + xx] * wx[i];
				}
				v += row * wy[j];
			}
		} else {
			for (int j = 0; j < 2; j++) {
				int yy = clamp(b.y + j, 0, H - 1);
				float wy = j == 0 ? 1.0 - t.y : t.y;
				for (int i = 0; i < 2; i++) {
					int xx = clamp(b.x + i, 0, W - 1);
					float wx = i == 0 ? 1.0 - t.x : t.x;
					v += x_buf[(g.z * H + yy) * W + xx] * (wx * wy);
				}
			}
		}
		v *= lane_mask(g.z, C);
	}
	for (int r = 0; r < 4; r++) {
		if (4 * g.z + r == C) v[r] = valid;
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v);
}
"""]

# 3x3 mean (channels 0..C-1) and std = sqrt(max(E[x^2] - mean^2, 0) + eps) (channels C..2C-1) of x
# (binding 1, C = i1.x channels), replicate border; eps = f1.x
const NEIGH_STATS := [["o_buf", "a_buf"], """
void main() {
	GUARD
	int C = p.i1.x;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= 2 * C) break;
		int cs = c < C ? c : c - C;
		float s1 = 0.0;
		float s2 = 0.0;
		for (int dy = -1; dy <= 1; dy++) {
			for (int dx = -1; dx <= 1; dx++) {
				int yy = clamp(g.y + dy, 0, p.o.y - 1);
				int xx = clamp(g.x + dx, 0, p.o.x - 1);
				float x = a_buf[OUT_IDX(cs / 4, yy, xx)][cs % 4];
				s1 += x;
				s2 += x * x;
			}
		}
		float mean = s1 / 9.0;
		v[r] = c < C ? mean : sqrt(max(s2 / 9.0 - mean * mean, 0.0) + p.f1.x);
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# softmax over each group of i1.x (<= 32) consecutive channels: one thread per pixel and group (z), the
# group read once, written as floats
const SOFTMAX_GROUPS := [["float o_f", "a_buf"], """
void main() {
	ivec3 g = ivec3(gl_GlobalInvocationID);
	int n = p.i1.x;
	if (g.x >= p.o.x || g.y >= p.o.y || g.z * n >= p.o.w) {
		return;
	}
	int c0 = g.z * n;
	float v[32];
	float mx = -3.0e38;
	for (int k = 0; k < n; k++) {
		int c = c0 + k;
		v[k] = a_buf[OUT_IDX(c / 4, g.y, g.x)][c % 4];
		mx = max(mx, v[k]);
	}
	float sum = 0.0;
	for (int k = 0; k < n; k++) {
		v[k] = exp(v[k] - mx);
		sum += v[k];
	}
	for (int k = 0; k < n; k++) {
		int c = c0 + k;
		o_f[OUT_IDX(c / 4, g.y, g.x) * 4 + c % 4] = act(vec4(v[k] / sum)).x;
	}
}
"""]

# kern (binding 1, Q*9 channels: q*9 + tap, taps row-major dy, dx in -1..1) applied to x (binding 2):
# output channel c*Q + q = sum_k kern[q*9+k] * x[c](p + off_k), replicate border; i1.x = Q
const APPLY_KERNEL3X3 := [["o_buf", "kern", "x_buf"], """
void main() {
	GUARD
	int Q = p.i1.x;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c / Q;
		int q = c % Q;
		float acc = 0.0;
		for (int k = 0; k < 9; k++) {
			int kc = q * 9 + k;
			int yy = clamp(g.y + k / 3 - 1, 0, p.o.y - 1);
			int xx = clamp(g.x + k % 3 - 1, 0, p.o.x - 1);
			acc += kern[OUT_IDX(kc / 4, g.y, g.x)][kc % 4] * x_buf[OUT_IDX(ci / 4, yy, xx)][ci % 4];
		}
		v[r] = acc;
	}
	o_buf[OUT_IDX(g.z, g.y, g.x)] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# x (binding 1, folded c*Q + q) clamped to mean +- gamma * std of its colour channel c (binding 2:
# stats = mean c, std c; binding 3: gamma, 1 channel); i1.x = Q, i1.y = c
const CLAMP_BOX := [["o_buf", "x_buf", "st", "gam"], """
void main() {
	GUARD
	int Q = p.i1.x;
	int C = p.i1.y;
	int i = OUT_IDX(g.z, g.y, g.x);
	float gm = gam[OUT_IDX(0, g.y, g.x)].x;
	vec4 xv = x_buf[i];
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int c = 4 * g.z + r;
		if (c >= p.o.w) break;
		int ci = c / Q;
		float mean = st[OUT_IDX(ci / 4, g.y, g.x)][ci % 4];
		float sd = st[OUT_IDX((ci + C) / 4, g.y, g.x)][(ci + C) % 4];
		v[r] = min(max(xv[r], mean - gm * sd), mean + gm * sd);
	}
	o_buf[i] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# sigmoid(logit - log(1 - clamp(acc, 0, hi))) * valid, element-wise (bindings 1, 2, 3); hi = f1.x
const ALPHA_PRIOR := [["o_buf", "logit", "acc", "valid"], """
void main() {
	GUARD
	int i = OUT_IDX(g.z, g.y, g.x);
	vec4 prior = -log(1.0 - clamp(acc[i], vec4(0.0), vec4(p.f1.x)));
	vec4 z = clamp(logit[i] + prior, -80.0, 80.0);
	o_buf[i] = act(1.0 / (1.0 + exp(-z)) * valid[i]) * lane_mask(g.z, p.o.w);
}
"""]


# per sub-pixel q (output: s*s channels, 1 x 1): sum over the 3x3 taps of a Gaussian (sigma = f1.x) of
# the distance of the jittered sample (binding 1) to q's centre, divided by f1.y; i1.x = s
const SAMPLE_WEIGHT := [["o_buf", "jit"], """
void main() {
	GUARD
	int s = p.i1.x;
	vec2 j = jit[0].xy;
	vec4 v = vec4(0.0);
	for (int r = 0; r < 4; r++) {
		int q = 4 * g.z + r;
		if (q >= p.o.w) break;
		float acc = 0.0;
		for (int k = 0; k < 9; k++) {
			vec2 e = vec2(float(k % 3 - 1) + 0.5 - (float(q % s) + 0.5) / float(s),
					float(k / 3 - 1) + 0.5 - (float(q / s) + 0.5) / float(s)) + j;
			acc += exp(-dot(e, e) / (2.0 * p.f1.x * p.f1.x));
		}
		v[r] = acc / p.f1.y;
	}
	o_buf[g.z] = act(v) * lane_mask(g.z, p.o.w);
}
"""]

# i1.x: 0 = alpha (bindings logit, acc, valid, w): sigmoid(logit + log(clamp(acc, 0, 1) * cap + 1e-3)
# - log(w)) * valid; 1 = total weight (bindings a, w): min(w / (1 - a + 1e-4), cap) / cap. cap = f1.x;
# w is a 1 x 1 tensor (one value per channel)
const WEIGHTED := [["o_buf", "a_buf", "b_buf", "c_buf", "w_buf"], """
void main() {
	GUARD
	int i = OUT_IDX(g.z, g.y, g.x);
	float cap = p.f1.x;
	vec4 v;
	if (p.i1.x == 0) {
		vec4 z = a_buf[i] + log(clamp(b_buf[i], vec4(0.0), vec4(1.0)) * cap + 1e-3) - log(w_buf[g.z]);
		z = clamp(z, -80.0, 80.0);
		v = 1.0 / (1.0 + exp(-z)) * c_buf[i];
	} else {
		v = min(w_buf[g.z] / (1.0 - a_buf[i] + 1e-4), vec4(cap)) / cap;
	}
	o_buf[i] = act(v) * lane_mask(g.z, p.o.w);
}
"""]


static func source(kernel: String, defines: Dictionary = {}) -> String:
	var k: Array = {
		"input": INPUT, "output": OUTPUT, "map": MAP, "concat": CONCAT, "copy_channels": COPY_CHANNELS,
		"binary": BINARY,
		"gather_nearest": GATHER_NEAREST, "conv2d": CONV, "pool2": POOL2, "upsample2": UPSAMPLE2,
		"fold_onehot": FOLD_ONEHOT, "fold_warp": FOLD_WARP, "depth_to_space": DEPTH_TO_SPACE,
		"space_to_depth": SPACE_TO_DEPTH, "up_folded_jittered": UP_FOLDED_JITTERED, "broadcast": BROADCAST,
		"dilate_motion": DILATE_MOTION, "warp_history": WARP_HISTORY, "neigh_stats3x3": NEIGH_STATS,
		"softmax_groups": SOFTMAX_GROUPS, "apply_kernel3x3": APPLY_KERNEL3X3, "clamp_box": CLAMP_BOX,
		"alpha_prior": ALPHA_PRIOR, "sample_weight": SAMPLE_WEIGHT, "weighted": WEIGHTED,
	}.get(kernel, [])
	if k.is_empty():
		return ""
	var defs := ""
	for d: String in defines:
		defs += "#define %s %s\n" % [d, str(defines[d])]
	# #version must stay the first line
	return HEADER.replace("#version 450\n", "#version 450\n" + defs) + _buffers(k[0]) + k[1]


## "layout(...) buffer" lines of a kernel's storage buffers (see the kernels' comment above)
static func _buffers(names: Array) -> String:
	var out := ""
	for i in names.size():
		var decl: PackedStringArray = String(names[i]).split(" ")
		var elem: String = decl[0] if decl.size() == 2 else "vec4"
		out += "layout(std430, set = 0, binding = %d) restrict %s buffer B%d { %s %s[]; };\n" % [
				i, "writeonly" if i == 0 else "readonly", i, elem, decl[-1]]
	return out
