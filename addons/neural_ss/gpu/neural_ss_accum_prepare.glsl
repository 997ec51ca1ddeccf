#version 450
// accum_prepare pass of the NSS GPU runtime (nss_runtime.gpu_program.accum_prepare is its definition): one
// invocation per low-res pixel reads the capture's textures and the output-resolution history and writes the
// network input net_in in accum_in_layout order: Reinhard colour (3), normalised depth (1), jitter (2), the
// history warped by the closest-depth dilated motion (bicubic a = -0.75 or bilinear, grid_sample border
// semantics) times its validity (zero on reset), folded to s*s channels per low-res pixel (4*s*s, channel
// c*s*s + q), the folded validity (s*s), |motion| (2), the 3x3 box mean and std of the Reinhard colour (6).
// #defines from the runner: S (scale), BICUBIC (1/0), DILATE (1/0), LX, LY.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = LX, local_size_y = LY, local_size_z = 1) in;
layout(push_constant, std430) uniform Params {
	ivec4 dims;  // low-res w, h
	vec4 f0;  // jitter x, jitter y, reset (1 = no valid history), box std eps
	vec4 f1;  // depth_ref
} p;
layout(rgba32f, set = 0, binding = 0) uniform restrict readonly image2D rgbd_in;  // linear rgb, view depth
layout(rg32f, set = 0, binding = 1) uniform restrict readonly image2D motion_in;  // low-res px, prev = p + m
layout(std430, set = 0, binding = 2) restrict readonly buffer Hist { vec4 hist[]; };  // s*h x s*w, 4 channels
layout(std430, set = 0, binding = 3) restrict writeonly buffer NetIn { vec4 net_in[]; };

#define Q (S * S)
#define NIN (14 + 5 * Q)
#define NIN4 ((NIN + 3) / 4)

float depth_norm(float d) {
	d = max(mix(d, 0.0, isnan(d)), 0.0);
	return 1.0 / (1.0 + d / p.f1.x);
}

vec4 cubic_weights(float t) {
	const float a = -0.75;
	float t1 = t + 1.0;
	float t2 = 1.0 - t;
	float t3 = 2.0 - t;
	return vec4(((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a, ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0,
			((a + 2.0) * t2 - (a + 3.0)) * t2 * t2 + 1.0, ((a * t3 - 5.0 * a) * t3 + 8.0 * a) * t3 - 4.0 * a);
}

void main() {
	ivec2 g = ivec2(gl_GlobalInvocationID.xy);
	int w = p.dims.x;
	int h = p.dims.y;
	if (g.x >= w || g.y >= h) {
		return;
	}
	vec4 c0 = imageLoad(rgbd_in, g);
	float best = depth_norm(c0.a);
	float dn = best;
	vec2 m = imageLoad(motion_in, g).xy;
	vec3 sum = vec3(0.0);
	vec3 sum2 = vec3(0.0);
	[[unroll]] for (int t = 0; t < 9; t++) {
		ivec2 o = ivec2(t % 3 - 1, t / 3 - 1);
		ivec2 q = g + o;
		bool inside = q.x >= 0 && q.y >= 0 && q.x < w && q.y < h;
		vec4 c = imageLoad(rgbd_in, clamp(q, ivec2(0), ivec2(w - 1, h - 1)));
		vec3 y = max(c.rgb, vec3(0.0));
		y = y / (1.0 + y);
		sum += y;
		sum2 += y * y;
#if DILATE == 1
		if (t != 4 && inside) {  // the centre first, then row-major; only a strictly closer pixel wins
			float d = depth_norm(c.a);
			if (d > best) {
				best = d;
				m = imageLoad(motion_in, q).xy;
			}
		}
#endif
	}
	vec3 mean = sum / 9.0;
	vec3 std = sqrt(max(sum2 / 9.0 - mean * mean, vec3(0.0)) + p.f0.w);
	vec3 y0 = max(c0.rgb, vec3(0.0));
	y0 = y0 / (1.0 + y0);
	float ch[NIN4 * 4];
	ch[0] = y0.r;
	ch[1] = y0.g;
	ch[2] = y0.b;
	ch[3] = dn;
	ch[4] = p.f0.x;
	ch[5] = p.f0.y;
	int W = w * S;
	int H = h * S;
	[[unroll]] for (int q = 0; q < Q; q++) {
		ivec2 P = g * S + ivec2(q % S, q / S);
		float px = float(P.x) + 0.5 + float(S) * m.x;
		float py = float(P.y) + 0.5 + float(S) * m.y;
		float valid = (px >= 0.0 && px <= float(W) && py >= 0.0 && py <= float(H)) ? 1.0 : 0.0;
		if (p.f0.z > 0.5) {
			valid = 0.0;
		}
		float ix = px - 0.5;
		float iy = py - 0.5;
		float x0 = floor(ix);
		float y0f = floor(iy);
		int xi0 = int(x0);
		int yi0 = int(y0f);
		vec4 acc = vec4(0.0);
#if BICUBIC == 1
		vec4 wx = cubic_weights(ix - x0);
		vec4 wy = cubic_weights(iy - y0f);
		[[unroll]] for (int j = 0; j < 4; j++) {
			int yy = clamp(yi0 - 1 + j, 0, H - 1);
			vec4 row = vec4(0.0);
			[[unroll]] for (int i = 0; i < 4; i++) {
				row += hist[yy * W + clamp(xi0 - 1 + i, 0, W - 1)] * wx[i];
			}
			acc += row * wy[j];
		}
#else
		float tx = ix - x0;
		float ty = iy - y0f;
		int xa = clamp(xi0, 0, W - 1);
		int xb = clamp(xi0 + 1, 0, W - 1);
		int ya = clamp(yi0, 0, H - 1);
		int yb = clamp(yi0 + 1, 0, H - 1);
		acc = (hist[ya * W + xa] * (1.0 - tx) + hist[ya * W + xb] * tx) * (1.0 - ty)
				+ (hist[yb * W + xa] * (1.0 - tx) + hist[yb * W + xb] * tx) * ty;
#endif
		acc *= valid;
		[[unroll]] for (int c = 0; c < 4; c++) {
			ch[6 + c * Q + q] = acc[c];
		}
		ch[6 + 4 * Q + q] = valid;
	}
	ch[6 + 5 * Q] = abs(m.x);
	ch[7 + 5 * Q] = abs(m.y);
	[[unroll]] for (int c = 0; c < 3; c++) {
		ch[8 + 5 * Q + c] = mean[c];
		ch[11 + 5 * Q + c] = std[c];
	}
	[[unroll]] for (int c = NIN; c < NIN4 * 4; c++) {
		ch[c] = 0.0;
	}
	[[unroll]] for (int k = 0; k < NIN4; k++) {
		net_in[(k * h + g.y) * w + g.x] = vec4(ch[4 * k], ch[4 * k + 1], ch[4 * k + 2], ch[4 * k + 3]);
	}
}
