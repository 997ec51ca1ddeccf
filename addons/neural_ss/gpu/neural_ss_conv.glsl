#version 450
// Convolution pass of the NSS GPU runtime (NeuralSSGpuRunner): one invocation computes ALL output channels of
// a BX x BY block of pixels, so every input value is loaded once per window (not once per output channel) and
// every weight, read with a dynamically uniform index (a scalar broadcast), serves BX * BY pixels.
// The runner puts its #defines right after #version (one pipeline per layer):
//   K        kernel size (1 or 3)             COUT4  output vec4 groups      ACT  0 none, 1 relu
//   CIN4     input vec4 groups (A then B)     CA4    groups read from input A (the rest from input B)
//   UP_A     1: input A is at half resolution, read nearest-upsampled x2 (the decoder's upsample + concat)
//   POOL     1: also write the 2x2 average pool of the activated output (BX = BY = 2)
//   REPLICATE 1: replicate border (else zeros)    BX, BY  pixels per invocation    LX, LY  work group size
//   NW       vec4s in the layer's weight buffer
// Tensors: vec4-packed planar, element (c, y, x) = lane c % 4 of vec4 ((c / 4) * H + y) * W + x.
// Weights: [out group o][tap t][in group c][in lane j] vec4 of 4 output channels (mat4 column j), then
// the bias vec4s; both offsets in vec4 units in the push constants.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = LX, local_size_y = LY, local_size_z = 1) in;
layout(push_constant, std430) uniform Params {
	ivec4 dims;  // output W, H; input A's W, H
	ivec4 offs;  // weights offset, bias offset (-1: none), 0, 0
} p;
layout(std430, set = 0, binding = 0) restrict writeonly buffer Out { vec4 o_buf[]; };
layout(std430, set = 0, binding = 1) restrict readonly buffer InA { vec4 a_buf[]; };
layout(std430, set = 0, binding = 2) restrict readonly buffer InB { vec4 b_buf[]; };
layout(std140, set = 0, binding = 3) uniform Wts { vec4 w[NW]; };  // this layer's weights + bias (a uniform
// buffer: read with dynamically uniform indices, one broadcast per value on every device)
layout(std430, set = 0, binding = 4) restrict writeonly buffer Pool { vec4 pool_buf[]; };

#define R (K / 2)
#define WX (BX + K - 1)
#define WY (BY + K - 1)
#define NPX (BX * BY)
#define KK (K * K)

vec4 acc[COUT4 * NPX];

void accumulate(vec4 win[WX * WY], int c) {
	[[unroll]] for (int t = 0; t < KK; t++) {
		[[unroll]] for (int o = 0; o < COUT4; o++) {
			int q = p.offs.x + ((o * KK + t) * CIN4 + c) * 4;
			mat4 m = mat4(w[q], w[q + 1], w[q + 2], w[q + 3]);
			[[unroll]] for (int j = 0; j < BY; j++) {
				[[unroll]] for (int i = 0; i < BX; i++) {
					acc[o * NPX + j * BX + i] += m * win[(j + t / K) * WX + i + t % K];
				}
			}
		}
	}
}

void main() {
	int W = p.dims.x;
	int H = p.dims.y;
	// no early return for invocations past the edge: they compute on clamped coordinates and skip the
	// stores, so the loops stay in uniform control flow and llvmpipe reads the (dynamically uniform)
	// weights with one scalar load + broadcast instead of a per-lane gather
	ivec2 b0 = ivec2(gl_GlobalInvocationID.xy) * ivec2(BX, BY);
	int xs[WX];
	int ys[WY];
	float vx[WX];
	float vy[WY];
	[[unroll]] for (int i = 0; i < WX; i++) {
		int x = b0.x + i - R;
		vx[i] = (REPLICATE == 1 || (x >= 0 && x < W)) ? 1.0 : 0.0;
		xs[i] = clamp(x, 0, W - 1);
	}
	[[unroll]] for (int j = 0; j < WY; j++) {
		int y = b0.y + j - R;
		vy[j] = (REPLICATE == 1 || (y >= 0 && y < H)) ? 1.0 : 0.0;
		ys[j] = clamp(y, 0, H - 1);
	}
	[[unroll]] for (int o = 0; o < COUT4; o++) {
		vec4 bias = p.offs.y >= 0 ? w[p.offs.y + o] : vec4(0.0);
		[[unroll]] for (int i = 0; i < NPX; i++) {
			acc[o * NPX + i] = bias;
		}
	}
	vec4 win[WX * WY];
	for (int c = 0; c < CA4; c++) {
		[[unroll]] for (int j = 0; j < WY; j++) {
			[[unroll]] for (int i = 0; i < WX; i++) {
#if UP_A == 1
				int idx = (c * p.dims.w + ys[j] / 2) * p.dims.z + xs[i] / 2;
#else
				int idx = (c * H + ys[j]) * W + xs[i];
#endif
				win[j * WX + i] = a_buf[idx] * (vx[i] * vy[j]);
			}
		}
		accumulate(win, c);
	}
	for (int c = CA4; c < CIN4; c++) {
		[[unroll]] for (int j = 0; j < WY; j++) {
			[[unroll]] for (int i = 0; i < WX; i++) {
				win[j * WX + i] = b_buf[((c - CA4) * H + ys[j]) * W + xs[i]] * (vx[i] * vy[j]);
			}
		}
		accumulate(win, c);
	}
	[[unroll]] for (int o = 0; o < COUT4; o++) {
		vec4 sum = vec4(0.0);
		[[unroll]] for (int j = 0; j < BY; j++) {
			[[unroll]] for (int i = 0; i < BX; i++) {
				vec4 v = acc[o * NPX + j * BX + i];
#if ACT == 1
				v = max(v, vec4(0.0));
#endif
				sum += v;
				ivec2 q = b0 + ivec2(i, j);
				if (q.x < W && q.y < H) {
					o_buf[(o * H + q.y) * W + q.x] = v;
				}
			}
		}
#if POOL == 1
		if (b0.x < W && b0.y < H) {
			pool_buf[(o * (H / 2) + b0.y / 2) * (W / 2) + b0.x / 2] = 0.25 * sum;
		}
#endif
	}
}
