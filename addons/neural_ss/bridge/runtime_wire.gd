class_name NeuralSSRuntimeWire
extends RefCounted
## The wire format of the NSS runtime protocol (addons/neural_ss/runtime/PROTOCOL.md), both ways:
## encoders for what the game sends (HELLO, FRAME, BYE) and a decoder for what the runtime sends
## (WELCOME, RESULT, ERROR). No sockets here: NeuralSSRuntimeClient moves the bytes.
##
## Decoding: read exactly [member need] bytes, give them to [method take]; it returns an empty
## dictionary while a message is incomplete, else the message ({"type": WELCOME / RESULT / ERROR, ...})
## or {"type": BAD, "reason": ...} for anything the protocol does not allow.

const PROTOCOL_VERSION := 1
const HELLO := 1
const WELCOME := 2
const FRAME := 3
const RESULT := 4
const ERROR := 5
const BYE := 6
const BAD := -1  # not a message: the bytes broke the protocol
const HEADER_SIZE := 12
const FRAME_HEAD_SIZE := 24
const RESULT_HEAD_SIZE := 20
const FLAG_CUT := 1
const FLAG_RESIZE := 2
const FMT_F32 := 1
const FMT_F16 := 2
const MAX_SMALL_PAYLOAD := 4096
const MAX_RESULT_PAYLOAD := RESULT_HEAD_SIZE + 4096 * 4096 * 16
const ERROR_NAMES := {
	1: "BAD_TOKEN", 2: "BAD_VERSION", 3: "BAD_HEADER", 4: "TOO_LARGE", 5: "BAD_FRAME", 6: "MODEL",
	7: "BUSY", 8: "TIMEOUT", 9: "NOT_READY",
}

enum Part { HEADER, RESULT_HEAD, RESULT_PIXELS, PAYLOAD }

## Bytes [method take] wants next.
var need: int = HEADER_SIZE
var _part: Part = Part.HEADER
var _type: int = 0
var _result: Dictionary = {}


## Starts over (a new connection).
func reset() -> void:
	_expect(HEADER_SIZE, Part.HEADER)
	_result = {}


## The 12-byte header of a message of `type` with a payload of `length` bytes.
static func header(type: int, length: int) -> PackedByteArray:
	var h := PackedByteArray()
	h.resize(HEADER_SIZE)
	write_header(h, type, length)
	return h


static func write_header(buf: PackedByteArray, type: int, length: int) -> void:
	buf[0] = 0x4E  # N
	buf[1] = 0x53  # S
	buf[2] = 0x53  # S
	buf[3] = 0x52  # R
	buf.encode_u16(4, type)
	buf.encode_u16(6, 0)
	buf.encode_u32(8, length)


## HELLO: protocol version, the output format wanted (RGBA32F when f32, else RGBA16F), the token.
static func hello(token: String, f32: bool) -> PackedByteArray:
	var tok := token.to_ascii_buffer()
	var msg := PackedByteArray()
	msg.resize(HEADER_SIZE + 10)
	write_header(msg, HELLO, 10 + tok.size())
	msg.encode_u32(12, PROTOCOL_VERSION)
	msg.encode_u32(16, 1 if f32 else 0)
	msg.encode_u16(20, tok.size())
	msg.append_array(tok)
	return msg


## The header + fixed part of a FRAME; the frame's colour_depth and motion bytes follow it on the wire.
static func frame_head(frame: NeuralSSFrame, flags: int, skipped: int) -> PackedByteArray:
	var head := PackedByteArray()
	head.resize(HEADER_SIZE + FRAME_HEAD_SIZE)
	write_header(head, FRAME, FRAME_HEAD_SIZE + frame.colour_depth.size() + frame.motion.size())
	head.encode_u32(12, frame.index & 0xFFFFFFFF)
	head.encode_u16(16, frame.size.x)
	head.encode_u16(18, frame.size.y)
	head.encode_u32(20, flags)
	head.encode_float(24, clampf(frame.jitter.x, -0.5, 0.5))
	head.encode_float(28, clampf(frame.jitter.y, -0.5, 0.5))
	head.encode_u16(32, FMT_F32)
	head.encode_u16(34, skipped)
	return head


## Decodes the next [member need] bytes. `handshake`: a WELCOME is expected (else RESULTs are).
func take(b: PackedByteArray, handshake: bool) -> Dictionary:
	match _part:
		Part.HEADER:
			if b.slice(0, 4).get_string_from_ascii() != "NSSR":
				return _bad("the runtime sent a bad header (not an NSS runtime on this port?)")
			var type := b.decode_u16(4)
			var length := b.decode_u32(8)
			var limit := MAX_RESULT_PAYLOAD if type == RESULT else MAX_SMALL_PAYLOAD
			var ok_type := type == ERROR or (type == WELCOME and handshake) or (type == RESULT and not handshake)
			if not ok_type or length > limit or (type == RESULT and length < RESULT_HEAD_SIZE):
				return _bad("unexpected message from the runtime (type %d, %d bytes)" % [type, length])
			if type == RESULT:
				_result = {"length": length}
				_expect(RESULT_HEAD_SIZE, Part.RESULT_HEAD)  # its fixed part first, then the pixels alone
			elif length == 0:
				return _message(type, PackedByteArray())
			else:
				_type = type
				_expect(length, Part.PAYLOAD)
		Part.RESULT_HEAD:
			var w := b.decode_u16(4)
			var h := b.decode_u16(6)
			var fmt := b.decode_u32(8)
			var bpp := 16 if fmt == FMT_F32 else 8
			if w == 0 or h == 0 or int(_result["length"]) != RESULT_HEAD_SIZE + w * h * bpp \
					or (fmt != FMT_F32 and fmt != FMT_F16):
				return _bad("the runtime sent a malformed result (%dx%d, format %d)" % [w, h, fmt])
			_result.merge({"type": RESULT, "id": b.decode_u32(0), "w": w, "h": h, "fmt": fmt,
					"infer_ms": b.decode_float(12), "server_ms": b.decode_float(16)})
			_expect(w * h * bpp, Part.RESULT_PIXELS)
		Part.RESULT_PIXELS:
			var r := _result
			r["pixels"] = b
			_result = {}
			_expect(HEADER_SIZE, Part.HEADER)
			return r
		Part.PAYLOAD:
			return _message(_type, b)
	return {}


func _expect(n: int, part: Part) -> void:
	need = n
	_part = part


func _bad(reason: String) -> Dictionary:
	return {"type": BAD, "reason": reason}


func _message(type: int, p: PackedByteArray) -> Dictionary:
	_expect(HEADER_SIZE, Part.HEADER)
	if type == WELCOME:
		if p.size() < 34:
			return _bad("the runtime sent a short WELCOME")
		var n := p.decode_u16(32)
		var parsed: Variant = JSON.parse_string(p.slice(34, 34 + n).get_string_from_utf8())
		var info: Dictionary = parsed if parsed is Dictionary else {}
		info["scale"] = p.decode_u32(4)
		info["multiple"] = maxi(1, p.decode_u32(16))
		return {"type": WELCOME, "info": info}
	if p.size() < 8:
		return _bad("the runtime sent a short ERROR")
	var code := p.decode_u16(4)
	return {"type": ERROR, "id": p.decode_u32(0), "code": code, "name": ERROR_NAMES.get(code, str(code)),
			"fatal": p.decode_u16(6) != 0, "text": p.slice(8).get_string_from_utf8()}
