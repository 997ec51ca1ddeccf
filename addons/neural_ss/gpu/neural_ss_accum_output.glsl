#version 450
// accum_output pass of the NSS GPU runtime (nss_runtime.gpu_program.accum_output is its definition): one
// invocation per low-res pixel runs the 1x1 head on [decoder features, jitter] (all its outputs in registers),
// then per output sub-pixel q: softmax over the 9 kernel logits (+ the signed kernel), the kernel applied to
// the 3x3 Reinhard colour (replicate border), the warped history clamped to mean +- gamma * std, the blend
// weight (FSR2-style total weight from the jitter's sample weight, or the running-mean prior), the blend +
// residual; writes linear rgb to the output image and (clamp01(O), total weight) to the new history.
// #defines from the runner: S, DEC4 (decoder vec4 groups; the jitter is input group DEC4), HEAD4 (head output
// vec4 groups), NRESID, NSHARP, WEIGHTED (1/0), LX, LY, NW (vec4s in the head's weight buffer). Head weights: the convolution layout, k = 1.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = LX, local_size_y = LY, local_size_z = 1) in;
layout(push_constant, std430) uniform Params {
	ivec4 dims;  // low-res w, h, head weights offset, head bias offset (vec4 units)
	vec4 f0;  // jitter x, jitter y, colour_transform_max
	vec4 f1;  // sample weight sigma, its normaliser, weight cap, prior cap (hi)
	vec4 wq[4];  // this frame's sample weight of each sub-pixel (S <= 4; the runner computes it once per frame)
} p;
layout(std430, set = 0, binding = 0) restrict readonly buffer Dec { vec4 dec[]; };
layout(std430, set = 0, binding = 1) restrict readonly buffer NetIn { vec4 net_in[]; };
layout(std140, set = 0, binding = 2) uniform Wts { vec4 wts[NW]; };  // the head's weights + bias
layout(std430, set = 0, binding = 3) restrict writeonly buffer NewHist { vec4 new_hist[]; };
layout(rgba32f, set = 0, binding = 4) uniform restrict writeonly image2D rgb_out;

#define Q (S * S)
#define NIN (14 + 5 * Q)
#define NIN4 ((NIN + 3) / 4)
#define CIN4 (DEC4 + 1)
#define HW_F 6
#define VALID_F (6 + 4 * Q)
#define MEAN (8 + 5 * Q)
#define STD (11 + 5 * Q)

vec4 hv[HEAD4];

float head(int c) {
	return hv[c / 4][c % 4];
}

void main() {
	ivec2 g = ivec2(gl_GlobalInvocationID.xy);
	int w = p.dims.x;
	int h = p.dims.y;
	if (g.x >= w || g.y >= h) {
		return;
	}
	int pix = g.y * w + g.x;
	[[unroll]] for (int o = 0; o < HEAD4; o++) {
		hv[o] = wts[p.dims.w + o];
	}
	[[unroll]] for (int c = 0; c < CIN4; c++) {
		vec4 v = c < DEC4 ? dec[c * h * w + pix] : vec4(p.f0.xy, 0.0, 0.0);
		[[unroll]] for (int o = 0; o < HEAD4; o++) {
			int q = p.dims.z + (o * CIN4 + c) * 4;
			hv[o] += mat4(wts[q], wts[q + 1], wts[q + 2], wts[q + 3]) * v;
		}
	}
	float nin[NIN4 * 4];
	[[unroll]] for (int k = 0; k < NIN4; k++) {
		vec4 v = net_in[k * h * w + pix];
		nin[4 * k] = v.x;
		nin[4 * k + 1] = v.y;
		nin[4 * k + 2] = v.z;
		nin[4 * k + 3] = v.w;
	}
	vec3 yt[9];
	[[unroll]] for (int t = 0; t < 9; t++) {
		ivec2 q = clamp(g + ivec2(t % 3 - 1, t / 3 - 1), ivec2(0), ivec2(w - 1, h - 1));
		yt[t] = net_in[q.y * w + q.x].rgb;
	}
	float gl = head(10 * Q);
	float gamma = max(gl, 0.0) + log(1.0 + exp(-abs(gl)));
	vec3 mean = vec3(nin[MEAN], nin[MEAN + 1], nin[MEAN + 2]);
	vec3 std = vec3(nin[STD], nin[STD + 1], nin[STD + 2]);
	vec3 lo = mean - gamma * std;
	vec3 hi = mean + gamma * std;
	int W = w * S;
	[[unroll]] for (int q = 0; q < Q; q++) {
		int qx = q % S;
		int qy = q / S;
		float mx = -3.0e38;
		[[unroll]] for (int t = 0; t < 9; t++) {
			mx = max(mx, head(Q + q * 9 + t));
		}
		float e[9];
		float es = 0.0;
		[[unroll]] for (int t = 0; t < 9; t++) {
			e[t] = exp(head(Q + q * 9 + t) - mx);
			es += e[t];
		}
		vec3 cur = vec3(0.0);
		[[unroll]] for (int t = 0; t < 9; t++) {
			float k = e[t] / es;
#if NSHARP > 0
			k += head(10 * Q + 1 + NRESID + q * 9 + t);
#endif
			cur += yt[t] * k;
		}
		vec3 h_rgb = vec3(nin[HW_F + q], nin[HW_F + Q + q], nin[HW_F + 2 * Q + q]);
		float h_acc = nin[HW_F + 3 * Q + q];
		float valid = nin[VALID_F + q];
		vec3 h_rect = min(max(h_rgb, lo), hi);
		float logit = head(q);
#if WEIGHTED == 1
		float wq = p.wq[q / 4][q % 4];
		float prior = log(clamp(h_acc, 0.0, 1.0) * p.f1.z + 1.0e-3) - log(wq);
		float a = 1.0 / (1.0 + exp(-clamp(logit + prior, -80.0, 80.0))) * valid;
		float acc = min(wq / (1.0 - a + 1.0e-4), p.f1.z) / p.f1.z;
#else
		float prior = -log(1.0 - clamp(h_acc, 0.0, p.f1.w));
		float a = 1.0 / (1.0 + exp(-clamp(logit + prior, -80.0, 80.0))) * valid;
		float acc = a;
#endif
		vec3 o = a * h_rect + (1.0 - a) * cur;
#if NRESID > 0
		o += vec3(head(10 * Q + 1 + q), head(10 * Q + 1 + Q + q), head(10 * Q + 1 + 2 * Q + q));
#endif
		ivec2 P = g * S + ivec2(qx, qy);
		vec3 r = clamp(o, vec3(0.0), vec3(p.f0.z));
		imageStore(rgb_out, P, vec4(r / (1.0 - r), 1.0));
		new_hist[P.y * W + P.x] = vec4(clamp(o, vec3(0.0), vec3(1.0)), acc);
	}
}
