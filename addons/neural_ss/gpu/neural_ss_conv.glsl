#version 450
// Convolution pass of the NSS GPU runtime (NeuralSSGpuRunner): one invocation computes COUT4 / OSPLIT output
// vec4 groups (all output channels when OSPLIT = 1) of a BX x BY block of pixels, so every input value is
// loaded once per tap (not once per output channel) and every weight, read with a dynamically uniform index
// from a uniform buffer (a scalar broadcast), serves BX * BY pixels. Work group z = which of the OSPLIT parts.
// The inputs are loaded tap by tap. Measured on llvmpipe (interleaved, docs/runtime.md): 4 x 1 pixels with all
// output groups per invocation (the runner's default) beat 1 x 1, 2 x 1, 8 x 1, 16 x 1 and OSPLIT 2-4.
// The runner puts its #defines right after #version (one pipeline per layer):
//   K        kernel size (1 or 3)             COUT4  output vec4 groups      ACT  0 none, 1 relu
//   CIN4     input vec4 groups (A then B)     CA4    groups read from input A (the rest from input B)
//   UP_A     1: input A is at half resolution, read nearest-upsampled x2 (the decoder's upsample + concat)
//   POOL     1: also write the 2x2 average pool of the activated output (BX, BY even)
//   REPLICATE 1: replicate border (else zeros)    BX, BY  pixels per invocation    LX, LY  work group size
//   OSPLIT   output groups split over work group z (COUT4 % OSPLIT == 0)
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

#define KK (K * K)
#define OC4 (COUT4 / OSPLIT)
#define NPX (BX * BY)

vec4 acc[OC4 * NPX];

void accumulate(vec4 v[NPX], int c, int t, int o0) {
	[[unroll]] for (int o = 0; o < OC4; o++) {
		int k = p.offs.x + (((o0 + o) * KK + t) * CIN4 + c) * 4;
		mat4 m = mat4(w[k], w[k + 1], w[k + 2], w[k + 3]);
		[[unroll]] for (int i = 0; i < NPX; i++) {
			acc[o * NPX + i] += m * v[i];
		}
	}
}

void main() {
	int W = p.dims.x;
	int H = p.dims.y;
	// no early return for invocations past the edge: they compute on clamped coordinates and skip the
	// stores, so the loops stay in uniform control flow (llvmpipe then reads uniform values once)
	ivec2 b0 = ivec2(gl_GlobalInvocationID.xy) * ivec2(BX, BY);
	int o0 = int(gl_WorkGroupID.z) * OC4;
	[[unroll]] for (int o = 0; o < OC4; o++) {
		vec4 bias = p.offs.y >= 0 ? w[p.offs.y + o0 + o] : vec4(0.0);
		[[unroll]] for (int i = 0; i < NPX; i++) {
			acc[o * NPX + i] = bias;
		}
	}
	// input A's groups, then input B's: two loops, so no masked execution of both reads per tap
	for (int c = 0; c < CA4; c++) {
		[[unroll]] for (int t = 0; t < KK; t++) {
			vec4 v[NPX];
			[[unroll]] for (int j = 0; j < BY; j++) {
				[[unroll]] for (int i = 0; i < BX; i++) {
					ivec2 q = b0 + ivec2(i + t % K - K / 2, j + t / K - K / 2);
					float inside = (REPLICATE == 1 || (q.x >= 0 && q.y >= 0 && q.x < W && q.y < H)) ? 1.0 : 0.0;
					q = clamp(q, ivec2(0), ivec2(W - 1, H - 1));
#if UP_A == 1
					v[j * BX + i] = a_buf[(c * p.dims.w + q.y / 2) * p.dims.z + q.x / 2] * inside;
#else
					v[j * BX + i] = a_buf[(c * H + q.y) * W + q.x] * inside;
#endif
				}
			}
			accumulate(v, c, t, o0);
		}
	}
	for (int c = CA4; c < CIN4; c++) {
		[[unroll]] for (int t = 0; t < KK; t++) {
			vec4 v[NPX];
			[[unroll]] for (int j = 0; j < BY; j++) {
				[[unroll]] for (int i = 0; i < BX; i++) {
					ivec2 q = b0 + ivec2(i + t % K - K / 2, j + t / K - K / 2);
					float inside = (REPLICATE == 1 || (q.x >= 0 && q.y >= 0 && q.x < W && q.y < H)) ? 1.0 : 0.0;
					q = clamp(q, ivec2(0), ivec2(W - 1, H - 1));
					v[j * BX + i] = b_buf[((c - CA4) * H + q.y) * W + q.x] * inside;
				}
			}
			accumulate(v, c, t, o0);
		}
	}
	[[unroll]] for (int o = 0; o < OC4; o++) {
		[[unroll]] for (int i = 0; i < NPX; i++) {
#if ACT == 1
			acc[o * NPX + i] = max(acc[o * NPX + i], vec4(0.0));
#endif
			ivec2 q = b0 + ivec2(i % BX, i / BX);
			if (q.x < W && q.y < H) {
				o_buf[((o0 + o) * H + q.y) * W + q.x] = acc[o * NPX + i];
			}
		}
#if POOL == 1
		// the 2x2 average pool of the activated output, one value per 2x2 cell of the block (BX, BY even)
		[[unroll]] for (int j = 0; j < BY; j += 2) {
			[[unroll]] for (int i = 0; i < BX; i += 2) {
				ivec2 q = (b0 + ivec2(i, j)) / 2;
				if (q.x < W / 2 && q.y < H / 2) {
					int k = o * NPX + j * BX + i;
					pool_buf[((o0 + o) * (H / 2) + q.y) * (W / 2) + q.x] =
							0.25 * (acc[k] + acc[k + 1] + acc[k + BX] + acc[k + BX + 1]);
				}
			}
		}
#endif
	}
}
