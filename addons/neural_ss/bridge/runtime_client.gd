class_name NeuralSSRuntimeClient
extends Node
## Client of the NSS runtime process (addons/neural_ss/runtime/PROTOCOL.md).
##
## The game thread never waits on inference: [method submit] queues frame N and returns, the
## socket is pumped once per [method _process] without blocking, and the result of an earlier
## frame is handed out through [signal upscaled] when it arrives. At most one frame is in flight,
## so a slow model lowers the upscaled rate, not the game's. Faults (runtime missing, crashed,
## refusing, slower than [member budget_ms]) only stop results coming: the owner keeps showing its
## bilinear upscale; one line says which path is live and why ("neural_ss: NEURAL via runtime ..." /
## "neural_ss: BILINEAR fallback: ..." with what is missing and how to fix it), once per outage, and
## the client reconnects (relaunching the runtime when it started it) with exponential backoff,
## silently. "started runtime" is printed only for a process that really started (it reported its port).

## A fresh upscaled frame: linear RGB(A) in RGBAH/RGBAF, [param frame_index] is the frame it upscales.
signal upscaled(image: Image, frame_index: int)
## The connection state changed; [param message] says why (empty when all is well).
signal state_changed(state: State, message: String)

enum State { OFF, LAUNCHING, CONNECTING, HANDSHAKE, READY, BACKOFF, DIAGNOSING }

const PROTOCOL_VERSION := 1
const HELLO := 1
const WELCOME := 2
const FRAME := 3
const RESULT := 4
const ERROR := 5
const BYE := 6
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
const TOKEN_ENV := "NSS_RUNTIME_TOKEN"
## Run with the runtime's Python when the runtime died during start-up: which of its imports fail.
const PROBE := "import json, os, sys\nr = {'python': sys.version.split()[0]}\nfor m in ('numpy', 'onnxruntime'):\n" \
		+ "    try:\n        __import__(m)\n        r[m] = ''\n    except Exception as e:\n" \
		+ "        r[m] = '%s: %s' % (type(e).__name__, e)\nwith open(sys.argv[1] + '.tmp', 'w') as f:\n" \
		+ "    json.dump(r, f)\nos.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
const FIX_HINT := "install them with `%s -m pip install numpy onnxruntime` (onnxruntime-gpu for CUDA), or set " \
		+ "neural_ss/python/command to a Python that has them"
const _RX_HEADER := 0
const _RX_RESULT_HEAD := 100  # a RESULT's fixed part; its pixels are read as RESULT

## Host of the runtime (loopback only: the runtime never listens elsewhere).
var host: String = "127.0.0.1"
## Port of an already running runtime; 0 = start one ([member command]) and use the port it reports.
var port: int = 0
## Token of an already running runtime (a launched one gets a fresh random token).
var token: String = ""
## Command line that starts Python with numpy + onnxruntime (split on spaces); empty = python3.
var command: String = ""
## Model file for a launched runtime (res://, user:// or an absolute path).
var model_path: String = ""
## ONNX Runtime providers for a launched runtime: "auto" or a comma list.
var providers: String = "auto"
## Results arriving later than this after their frame was sent are not shown: the bilinear upscale is.
var budget_ms: float = 250.0
## An in-flight frame without an answer for this long means the runtime hangs: reconnect.
var stall_timeout_ms: float = 5000.0
## Frames sent before their results arrive. 1: the game shows the upscale of frame N-1 while the
## runtime works on frame N (lowest latency). 2: the runtime always has the next frame queued, so the
## upscaled rate reaches the model's own rate even when the game's frames are long, one frame later.
var max_in_flight: int = 1
## Ask for RGBA32F results instead of RGBA16F (twice the bytes; for exact comparisons).
var f32_output: bool = false
## Test/recording mode: submit() waits for each result, so every frame is upscaled. Blocks the game.
var lockstep: bool = false
## Backoff between reconnection attempts, doubling from min to max (seconds).
var backoff_min_s: float = 0.25
var backoff_max_s: float = 8.0
## How long a launched runtime may take to report its port (Python + ONNX Runtime start-up).
var launch_timeout_s: float = 60.0

var state: State = State.OFF
## What the runtime said about its model (name, preset, provider, scale, n_prev, multiple, fp16).
var model_info: Dictionary = {}
## Last per-stage figures in ms (transfer, inference, runtime, latency) and the upscaled rate.
var stats: Dictionary = {}
## Milliseconds the game thread spent in this client (sending, receiving, decoding results, handing them
## out) since the owner last reset it to 0: the bridge's own cost per frame.
var game_thread_ms: float = 0.0
## Counters since start: sent, results, late, errors, skipped, connections, outages, in_flight_max,
## attempts (connection / launch attempts, retries included).
var counters: Dictionary = {
	"sent": 0, "results": 0, "late": 0, "errors": 0, "skipped": 0, "connections": 0, "outages": 0,
	"in_flight_max": 0, "attempts": 0,
}

var _peer: StreamPeerTCP
var _pid: int = -1
var _pid_announced: int = -1
var _exe: String = ""
var _launch_args: PackedStringArray = PackedStringArray()
var _probe_file: String = ""
var _probe_pid: int = -1
var _diagnosed: bool = false
var _ready_file: String = ""
var _connect_port: int = 0
var _state_since_ms: float = 0.0
var _backoff_s: float = 0.0
var _retry_at_ms: float = 0.0
var _outage_warned: bool = false
var _warned: Dictionary = {}
var _send_queue: Array[PackedByteArray] = []
var _send_offset: int = 0
var _in_flight: Dictionary = {}  # frame index -> {"sent_ms", "size"}
var _skipped: int = 0
var _last_sent_index: int = -1
var _last_size: Vector2i = Vector2i.ZERO
# receive state machine: a header, then a payload; RESULT pixels go straight into one buffer
var _rx_need: int = HEADER_SIZE
var _rx_buf: PackedByteArray = PackedByteArray()
var _rx_type: int = 0
var _rx_result: Dictionary = {}
var _result_times: Array[float] = []


func _ready() -> void:
	set_process(true)


func _exit_tree() -> void:
	shutdown()


func _notification(what: int) -> void:
	if what == NOTIFICATION_WM_CLOSE_REQUEST or what == NOTIFICATION_PREDELETE:
		shutdown()


## Starts connecting (and launching, when [member port] is 0).
func start() -> void:
	_backoff_s = backoff_min_s
	_attempt()


## Says goodbye, closes the socket and ends a runtime this client launched.
func shutdown() -> void:
	if _peer != null and _peer.get_status() == StreamPeerTCP.STATUS_CONNECTED:
		_peer.put_partial_data(_header(BYE, 0))
	_close()
	if _pid > 0:
		if OS.is_process_running(_pid):
			OS.kill(_pid)
		_pid = -1
	_set_state(State.OFF, "")


## True when frames sent now will be upscaled.
func is_ready() -> bool:
	return state == State.READY


## Queues [param frame] for upscaling when the runtime is ready and idle; returns whether it was
## sent. Never blocks (except in [member lockstep] mode).
func submit(frame: NeuralSSFrame) -> bool:
	var t0 := Time.get_ticks_usec()
	var sent := _submit(frame)
	game_thread_ms += (Time.get_ticks_usec() - t0) / 1000.0
	return sent


func _submit(frame: NeuralSSFrame) -> bool:
	poll()  # pick up a result that arrived since the last frame, so the runtime is never left idle
	if state != State.READY:
		return false
	if _in_flight.size() >= maxi(1, max_in_flight):
		_skipped += 1
		counters["skipped"] += 1
		return false
	if not frame.bytes_ok():
		_warn_once("bytes", "neural_ss: frame %d has %d/%d bytes for %s; not sent" % [
				frame.index, frame.colour_depth.size(), frame.motion.size(), frame.size])
		return false
	var multiple: int = model_info.get("multiple", 1)
	if frame.size.x % multiple != 0 or frame.size.y % multiple != 0:
		_warn_once("multiple", ("neural_ss: BILINEAR fallback: low-res size %s is not a multiple of %d (model %s): "
				+ "use a window size whose low-res size (output / scale) is") % [frame.size, multiple,
				model_info.get("name", "?")])
		return false
	var flags := 0
	if frame.camera_cut:
		flags |= FLAG_CUT
	if frame.size != _last_size:
		flags |= FLAG_RESIZE
	# frames the game rendered but did not send: the runtime extrapolates motion or resets history
	var skipped := 0 if (_last_sent_index < 0 or flags != 0) else clampi(frame.index - _last_sent_index - 1, 0, 65535)
	var head := PackedByteArray()
	head.resize(HEADER_SIZE + FRAME_HEAD_SIZE)
	_write_header(head, FRAME, FRAME_HEAD_SIZE + frame.colour_depth.size() + frame.motion.size())
	head.encode_u32(12, frame.index & 0xFFFFFFFF)
	head.encode_u16(16, frame.size.x)
	head.encode_u16(18, frame.size.y)
	head.encode_u32(20, flags)
	head.encode_float(24, clampf(frame.jitter.x, -0.5, 0.5))
	head.encode_float(28, clampf(frame.jitter.y, -0.5, 0.5))
	head.encode_u16(32, FMT_F32)
	head.encode_u16(34, skipped)
	_send_queue.append(head)
	_send_queue.append(frame.colour_depth)
	_send_queue.append(frame.motion)
	_in_flight[frame.index & 0xFFFFFFFF] = {"sent_ms": _now_ms(), "index": frame.index}
	counters["in_flight_max"] = maxi(int(counters["in_flight_max"]), _in_flight.size())
	_last_sent_index = frame.index
	_last_size = frame.size
	_skipped = 0
	counters["sent"] += 1
	_flush_send()
	if lockstep:
		_wait_for_result()
	return true


func _process(_delta: float) -> void:
	var t0 := Time.get_ticks_usec()
	poll()
	game_thread_ms += (Time.get_ticks_usec() - t0) / 1000.0


## Pumps the connection: launch/connect/handshake progress, sending, receiving. Never blocks.
func poll() -> void:
	var now := _now_ms()
	match state:
		State.OFF:
			return
		State.BACKOFF:
			if now >= _retry_at_ms:
				_attempt()
		State.LAUNCHING:
			_poll_launch(now)
		State.DIAGNOSING:
			_poll_probe(now)
		State.CONNECTING:
			_poll_connecting(now)
		State.HANDSHAKE, State.READY:
			_peer.poll()
			if _peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
				_fail("the runtime closed the connection" + _process_note())
				return
			_flush_send()
			_receive()
			if state == State.HANDSHAKE and now - _state_since_ms > 5000.0:
				_fail("no answer to the handshake within 5 s")
			elif state == State.READY:
				for id: int in _in_flight:
					if now - float(_in_flight[id]["sent_ms"]) > stall_timeout_ms:
						_fail("no result for frame %d within %d ms (runtime hung?)" % [id, int(stall_timeout_ms)])
						break


# --- connection life cycle ---------------------------------------------------------------

func _attempt() -> void:
	_close()
	counters["attempts"] += 1
	if port > 0:
		_connect(port)
		return
	if _pid > 0 and OS.is_process_running(_pid) and FileAccess.file_exists(_ready_file):
		_connect(_read_port())
		return
	_launch()


func _launch() -> void:
	if _pid > 0 and OS.is_process_running(_pid):
		OS.kill(_pid)
	var default_python := "python" if OS.get_name() == "Windows" else "python3"
	var argv := (command if not command.strip_edges().is_empty() else default_python).strip_edges().split(" ", false)
	var exe := argv[0]
	var args := argv.slice(1)
	_exe = exe
	_launch_args = args.duplicate()
	if find_executable(exe).is_empty():
		var where := ("'%s' does not exist" % exe) if exe.contains("/") or exe.contains("\\") \
				else ("'%s' is not on PATH" % exe)
		_fail(("no Python to run the runtime: %s; install Python 3 with numpy + onnxruntime "
				+ "(`python3 -m pip install numpy onnxruntime`) or set neural_ss/python/command to such a Python")
				% where)
		return
	var model := _global_path(model_path)
	if model.is_empty() or (model != "identity" and not FileAccess.file_exists(model)):
		_fail("model file not found: '%s' (neural_ss/model_path or --nss-model; the addon's default is "
				% model_path + "res://addons/neural_ss/models/default_x2.onnx)")
		return
	token = Crypto.new().generate_random_bytes(16).hex_encode()
	# the token travels in the environment, not on the command line other users can read
	OS.set_environment(TOKEN_ENV, token)
	var runtime_dir := _global_path(get_script().resource_path.get_base_dir().path_join("../runtime")).simplify_path()
	var sep := ";" if OS.get_name() == "Windows" else ":"
	var pypath := OS.get_environment("PYTHONPATH")
	if not pypath.split(sep).has(runtime_dir):
		OS.set_environment("PYTHONPATH", runtime_dir + (sep + pypath if not pypath.is_empty() else ""))
	_ready_file = OS.get_user_data_dir().path_join("nss_runtime_%d.json" % OS.get_process_id())
	if FileAccess.file_exists(_ready_file):
		DirAccess.remove_absolute(_ready_file)
	args.append_array(PackedStringArray(["-m", "nss_runtime.server", "--model", model, "--port", "0",
			"--ready-file", _ready_file, "--parent-pid", str(OS.get_process_id()), "--providers", providers]))
	_pid = OS.create_process(exe, args)
	_launch_args = args
	if _pid <= 0:
		_fail("could not start the runtime '%s' (set neural_ss/python/command to a Python with numpy + onnxruntime)"
				% exe)
		return
	_set_state(State.LAUNCHING, "")


func _poll_launch(now: float) -> void:
	if FileAccess.file_exists(_ready_file):
		var p := _read_port()
		if p > 0:
			if _pid != _pid_announced:  # printed only now: the process really started and listens
				_pid_announced = _pid
				print("neural_ss: started runtime (pid %d): %s %s" % [_pid, _exe, " ".join(_launch_args)])
			_connect(p)
			return
	if not OS.is_process_running(_pid):
		if not _diagnosed and _start_probe():
			return
		_fail("the runtime exited during start-up ('%s' has numpy and onnxruntime: see its output above)" % _exe)
	elif now - _state_since_ms > launch_timeout_s * 1000.0:
		_fail("the runtime did not report its port within %d s" % int(launch_timeout_s))


# The runtime died before reporting its port: ask the same Python which import fails (once, without
# blocking the game), so the one warning can say what to install.
func _start_probe() -> bool:
	_diagnosed = true
	_probe_file = OS.get_user_data_dir().path_join("nss_runtime_probe_%d.json" % OS.get_process_id())
	if FileAccess.file_exists(_probe_file):
		DirAccess.remove_absolute(_probe_file)
	var args := PackedStringArray()
	for a: String in _launch_args:
		if a == "-m":
			break
		args.append(a)
	args.append_array(PackedStringArray(["-c", PROBE, _probe_file]))
	_probe_pid = OS.create_process(_exe, args)
	if _probe_pid <= 0:
		return false
	_set_state(State.DIAGNOSING, "")
	return true


func _poll_probe(now: float) -> void:
	if FileAccess.file_exists(_probe_file):
		var data: Variant = JSON.parse_string(FileAccess.get_file_as_string(_probe_file))
		DirAccess.remove_absolute(_probe_file)
		var missing := PackedStringArray()
		if data is Dictionary:
			for m: String in ["numpy", "onnxruntime"]:
				if not str((data as Dictionary).get(m, "")).is_empty():
					missing.append("%s (%s)" % [m, (data as Dictionary)[m]])
		if missing.is_empty():
			_fail("the runtime exited during start-up although '%s' has numpy and onnxruntime: see its output above"
					% _exe)
		else:
			_fail(("'%s' (Python %s) cannot import %s; " + FIX_HINT) % [_exe,
					str((data as Dictionary).get("python", "?")), ", ".join(missing), _exe])
	elif not OS.is_process_running(_probe_pid) and now - _state_since_ms > 500.0 \
			or now - _state_since_ms > 30000.0:
		_fail("the runtime exited during start-up and '%s' could not run a Python check: is it Python 3? " % _exe
				+ "Set neural_ss/python/command to a Python 3 with numpy + onnxruntime")


## The full path of [param exe] (as given when it has a directory part, else found on PATH); empty when
## there is no such file.
static func find_executable(exe: String) -> String:
	if exe.is_empty():
		return ""
	var windows := OS.get_name() == "Windows"
	if exe.contains("/") or exe.contains("\\") or exe.is_absolute_path():
		return exe if FileAccess.file_exists(exe) or (windows and FileAccess.file_exists(exe + ".exe")) else ""
	for dir: String in OS.get_environment("PATH").split(";" if windows else ":", false):
		for name: String in ([exe, exe + ".exe"] if windows else [exe]):
			var p := dir.path_join(name)
			if FileAccess.file_exists(p):
				return p
	return ""


func _read_port() -> int:
	var text := FileAccess.get_file_as_string(_ready_file)
	var data: Variant = JSON.parse_string(text)
	if data is Dictionary and (data as Dictionary).has("port"):
		return int(data["port"])
	return 0


func _connect(p: int) -> void:
	_connect_port = p
	_peer = StreamPeerTCP.new()
	var err := _peer.connect_to_host(host, p)
	if err != OK:
		_fail("cannot connect to %s:%d (%s)" % [host, p, error_string(err)])
		return
	_set_state(State.CONNECTING, "")


func _poll_connecting(now: float) -> void:
	_peer.poll()
	match _peer.get_status():
		StreamPeerTCP.STATUS_CONNECTED:
			_peer.set_no_delay(true)
			var tok := token.to_ascii_buffer()
			var msg := PackedByteArray()
			msg.resize(HEADER_SIZE + 10)
			_write_header(msg, HELLO, 10 + tok.size())
			msg.encode_u32(12, PROTOCOL_VERSION)
			msg.encode_u32(16, 1 if f32_output else 0)
			msg.encode_u16(20, tok.size())
			msg.append_array(tok)
			_reset_rx()
			_send_queue.clear()
			_send_offset = 0
			_send_queue.append(msg)
			_flush_send()
			_set_state(State.HANDSHAKE, "")
		StreamPeerTCP.STATUS_ERROR, StreamPeerTCP.STATUS_NONE:
			_fail("cannot connect to the runtime at %s:%d%s" % [host, _peer.get_connected_port(), _process_note()])
		_:
			if now - _state_since_ms > 3000.0:
				_fail("connecting to the runtime timed out")


func _close() -> void:
	if _peer != null:
		_peer.disconnect_from_host()
		_peer = null
	_send_queue.clear()
	_send_offset = 0
	_in_flight.clear()
	_last_size = Vector2i.ZERO
	_last_sent_index = -1
	_reset_rx()


func _fail(reason: String, fatal_from_runtime: bool = false) -> void:
	var was_ready := state == State.READY
	_close()
	if was_ready:
		counters["outages"] += 1
	if not _outage_warned:
		_outage_warned = true
		if fatal_from_runtime:
			push_error("neural_ss: BILINEAR fallback: runtime refused: %s" % reason)
		else:
			push_warning("neural_ss: BILINEAR fallback: runtime unavailable: %s; retrying in the background" % reason)
	else:
		print_verbose("neural_ss: runtime still unavailable: %s" % reason)
	if port == 0 and _pid > 0 and OS.is_process_running(_pid) and not fatal_from_runtime:
		OS.kill(_pid)  # a hung or half-dead runtime this client started: start a fresh one
		_pid = -1
	_retry_at_ms = _now_ms() + _backoff_s * 1000.0
	_backoff_s = minf(maxf(_backoff_s * 2.0, backoff_min_s), backoff_max_s)
	_set_state(State.BACKOFF, reason)


func _set_state(s: State, message: String) -> void:
	if s == state and message.is_empty():
		return
	state = s
	_state_since_ms = _now_ms()
	state_changed.emit(s, message)


# --- sending and receiving ------------------------------------------------------------------

func _flush_send() -> void:
	while not _send_queue.is_empty():
		var buf: PackedByteArray = _send_queue[0]
		var chunk := buf if _send_offset == 0 else buf.slice(_send_offset)
		var res: Array = _peer.put_partial_data(chunk)
		if res[0] != OK:
			_fail("sending to the runtime failed (%s)" % error_string(res[0]))
			return
		_send_offset += int(res[1])
		if _send_offset < buf.size():
			return  # socket buffer full: continue next frame
		_send_queue.pop_front()
		_send_offset = 0


func _receive() -> void:
	while state == State.HANDSHAKE or state == State.READY:
		var avail := _peer.get_available_bytes()
		if avail <= 0:
			return
		var want := mini(avail, _rx_need - _rx_buf.size())
		var res: Array = _peer.get_partial_data(want)
		if res[0] != OK:
			_fail("reading from the runtime failed (%s)" % error_string(res[0]))
			return
		var got: PackedByteArray = res[1]
		if _rx_buf.is_empty():
			_rx_buf = got
		else:
			_rx_buf.append_array(got)
		if _rx_buf.size() == _rx_need:
			_on_chunk()


func _reset_rx() -> void:
	_rx_need = HEADER_SIZE
	_rx_buf = PackedByteArray()
	_rx_type = 0
	_rx_result = {}


func _next(need: int, type: int) -> void:
	_rx_need = need
	_rx_type = type
	_rx_buf = PackedByteArray()


func _on_chunk() -> void:
	var b := _rx_buf
	match _rx_type:
		_RX_HEADER:
			if b.slice(0, 4).get_string_from_ascii() != "NSSR":
				_fail("the runtime sent a bad header (not an NSS runtime on this port?)")
				return
			var type := b.decode_u16(4)
			var length := b.decode_u32(8)
			var limit := MAX_RESULT_PAYLOAD if type == RESULT else MAX_SMALL_PAYLOAD
			var ok_type := type == ERROR or (type == WELCOME and state == State.HANDSHAKE) \
					or (type == RESULT and state == State.READY)
			if not ok_type or length > limit or (type == RESULT and length < RESULT_HEAD_SIZE):
				_fail("unexpected message from the runtime (type %d, %d bytes)" % [type, length])
				return
			if type == RESULT:
				_next(RESULT_HEAD_SIZE, _RX_RESULT_HEAD)  # its fixed part first, then the pixels alone
				_rx_result = {"length": length}
			elif length == 0:
				_on_message(type, PackedByteArray())
				_next(HEADER_SIZE, 0)
			else:
				_next(length, type)
		_RX_RESULT_HEAD:
			var w := b.decode_u16(4)
			var h := b.decode_u16(6)
			var fmt := b.decode_u32(8)
			var bpp := 16 if fmt == FMT_F32 else 8
			if w == 0 or h == 0 or int(_rx_result["length"]) != RESULT_HEAD_SIZE + w * h * bpp \
					or (fmt != FMT_F32 and fmt != FMT_F16):
				_fail("the runtime sent a malformed result (%dx%d, format %d)" % [w, h, fmt])
				return
			_rx_result.merge({"id": b.decode_u32(0), "w": w, "h": h, "fmt": fmt,
					"infer_ms": b.decode_float(12), "server_ms": b.decode_float(16)})
			_next(w * h * bpp, RESULT)
		RESULT:
			_on_result(b)
			_next(HEADER_SIZE, 0)
		_:
			var t := _rx_type
			_next(HEADER_SIZE, 0)
			_on_message(t, b)


func _on_message(type: int, p: PackedByteArray) -> void:
	if type == WELCOME:
		if p.size() < 34:
			_fail("the runtime sent a short WELCOME")
			return
		var n := p.decode_u16(32)
		var info: Variant = JSON.parse_string(p.slice(34, 34 + n).get_string_from_utf8())
		model_info = info if info is Dictionary else {}
		model_info["scale"] = p.decode_u32(4)
		model_info["multiple"] = maxi(1, p.decode_u32(16))
		counters["connections"] += 1
		var what := "model %s (%s, x%d%s) on %s" % [model_info.get("name", "?"), model_info.get("preset", "?"),
				model_info["scale"], ", jittered input" if bool(model_info.get("jitter", false)) else "",
				model_info.get("provider", "?")]
		if _outage_warned and counters["connections"] > 1:
			print("neural_ss: NEURAL again, runtime reconnected: %s" % what)
		elif counters["connections"] == 1 or _outage_warned:
			var via := ("at %s:%d" % [host, port]) if port > 0 else ("'%s' (pid %d)" % [_exe, _pid])
			print("neural_ss: NEURAL via runtime %s: %s" % [via, what])
		_outage_warned = false
		_backoff_s = backoff_min_s
		_set_state(State.READY, "")
	elif type == ERROR:
		if p.size() < 8:
			_fail("the runtime sent a short ERROR")
			return
		var id := p.decode_u32(0)
		var code := p.decode_u16(4)
		var fatal := p.decode_u16(6) != 0
		var text := p.slice(8).get_string_from_utf8()
		var what := "%s: %s" % [ERROR_NAMES.get(code, str(code)), text]
		counters["errors"] += 1
		if fatal:
			# the runtime's own words reach the Godot output (e.g. "model x.onnx: not an NSS model")
			_fail(what, state == State.HANDSHAKE)
		else:
			_in_flight.erase(id)
			_warn_once("err%d" % code, "neural_ss: runtime rejected frame %d: %s" % [id, what])


func _on_result(pixels: PackedByteArray) -> void:
	var id: int = _rx_result["id"]
	var sent: Dictionary = _in_flight.get(id, {})
	_in_flight.erase(id)
	if sent.is_empty():
		return  # a frame from before a reconnect
	var now := _now_ms()
	var latency := now - float(sent["sent_ms"])
	counters["results"] += 1
	var runtime_ms: float = _rx_result["server_ms"]
	stats["inference"] = float(_rx_result["infer_ms"])
	stats["runtime"] = runtime_ms
	stats["transfer"] = maxf(0.0, latency - runtime_ms)
	stats["latency"] = latency
	_result_times.append(now)
	while _result_times.size() > 1 and now - _result_times[0] > 1000.0:
		_result_times.pop_front()
	stats["upscaled_fps"] = (_result_times.size() - 1) * 1000.0 / maxf(now - _result_times[0], 1.0)
	if latency > budget_ms and not lockstep:
		counters["late"] += 1
		_warn_once("late", ("neural_ss: BILINEAR fallback while the runtime is slower than the budget (%.0f ms > "
				+ "neural_ss/runtime_budget_ms %.0f)") % [latency, budget_ms])
		return
	var fmt := Image.FORMAT_RGBAF if int(_rx_result["fmt"]) == FMT_F32 else Image.FORMAT_RGBAH
	var img := Image.create_from_data(int(_rx_result["w"]), int(_rx_result["h"]), false, fmt, pixels)
	upscaled.emit(img, int(sent["index"]))


func _wait_for_result() -> void:
	var deadline := _now_ms() + stall_timeout_ms
	while not _in_flight.is_empty() and state == State.READY and _now_ms() < deadline:
		poll()
		if not _in_flight.is_empty():
			OS.delay_usec(200)


# --- helpers ---------------------------------------------------------------------------------

func _header(type: int, length: int) -> PackedByteArray:
	var h := PackedByteArray()
	h.resize(HEADER_SIZE)
	_write_header(h, type, length)
	return h


func _write_header(buf: PackedByteArray, type: int, length: int) -> void:
	buf[0] = 0x4E  # N
	buf[1] = 0x53  # S
	buf[2] = 0x53  # S
	buf[3] = 0x52  # R
	buf.encode_u16(4, type)
	buf.encode_u16(6, 0)
	buf.encode_u32(8, length)


func _process_note() -> String:
	if port == 0 and _pid > 0 and not OS.is_process_running(_pid):
		return " (the runtime process %d has exited)" % _pid
	return ""


func _warn_once(key: String, message: String) -> void:
	if not _warned.has(key):
		_warned[key] = true
		push_warning(message)


static func _global_path(p: String) -> String:
	if p.begins_with("res://") or p.begins_with("user://"):
		return ProjectSettings.globalize_path(p)
	return p


static func _now_ms() -> float:
	return Time.get_ticks_usec() / 1000.0
