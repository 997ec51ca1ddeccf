class_name NeuralSSRuntimeClient
extends Node
## Client of the NSS runtime process (addons/neural_ss/runtime/PROTOCOL.md).
##
## The game thread never waits on inference: [method submit] queues frame N and returns, the
## socket is pumped once per [method _process] without blocking, and the result of an earlier
## frame is handed out through [signal upscaled] when it arrives. At most [member max_in_flight] frames
## (1 or 2) are in flight, so a slow model lowers the upscaled rate, not the game's. Faults (runtime missing, crashed,
## refusing, slower than [member budget_ms]) only stop results coming: the owner keeps showing its
## bilinear upscale; one line says which path is live and why ("neural_ss: NEURAL via runtime ..." /
## "neural_ss: BILINEAR fallback: ..." with what is missing and how to fix it), once per outage, and
## the client reconnects (relaunching the runtime when it started it) with exponential backoff,
## silently. "started runtime" is printed only for a process that really started (it reported its port).
## The bytes on the wire: NeuralSSRuntimeWire; the process it starts: NeuralSSRuntimeProcess.

## A fresh upscaled frame: linear RGB(A) in RGBAH/RGBAF, [param frame_index] is the frame it upscales.
signal upscaled(image: Image, frame_index: int)
## The connection state changed; [param message] says why (empty when all is well).
signal state_changed(state: State, message: String)

enum State { OFF, LAUNCHING, CONNECTING, HANDSHAKE, READY, BACKOFF, DIAGNOSING }

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
var _runtime_process := NeuralSSRuntimeProcess.new()
var _pid_announced: int = -1
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
var _wire := NeuralSSRuntimeWire.new()
var _rx_buf: PackedByteArray = PackedByteArray()
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
		_peer.put_partial_data(NeuralSSRuntimeWire.header(NeuralSSRuntimeWire.BYE, 0))
	_close()
	_runtime_process.kill()
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
		flags |= NeuralSSRuntimeWire.FLAG_CUT
	if frame.size != _last_size:
		flags |= NeuralSSRuntimeWire.FLAG_RESIZE
	# frames the game rendered but did not send: the runtime extrapolates motion or resets history
	var skipped := 0 if (_last_sent_index < 0 or flags != 0) else clampi(frame.index - _last_sent_index - 1, 0, 65535)
	var head := NeuralSSRuntimeWire.frame_head(frame, flags, skipped)
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
	if _runtime_process.reported_port() > 0:
		_connect(_runtime_process.reported_port())
		return
	var runtime_dir := NeuralSSRuntimeProcess.global_path(
			get_script().resource_path.get_base_dir().path_join("../runtime")).simplify_path()
	var why := _runtime_process.launch(command, model_path, providers, runtime_dir)
	if not why.is_empty():
		_fail(why)
		return
	token = _runtime_process.token
	_set_state(State.LAUNCHING, "")


func _poll_launch(now: float) -> void:
	var p := _runtime_process.reported_port()
	if p > 0:
		if _runtime_process.pid != _pid_announced:  # printed only now: the process really started and listens
			_pid_announced = _runtime_process.pid
			print("neural_ss: started runtime (pid %d): %s %s" % [_runtime_process.pid, _runtime_process.exe,
					" ".join(_runtime_process.launch_args)])
		_connect(p)
		return
	if not _runtime_process.running():
		if not _runtime_process.diagnosed and _runtime_process.start_probe():
			_set_state(State.DIAGNOSING, "")
			return
		_fail("the runtime exited during start-up ('%s' has numpy and onnxruntime: see its output above)"
				% _runtime_process.exe)
	elif now - _state_since_ms > launch_timeout_s * 1000.0:
		_fail("the runtime did not report its port within %d s" % int(launch_timeout_s))


func _poll_probe(now: float) -> void:
	var verdict := _runtime_process.probe_verdict(now - _state_since_ms)
	if not verdict.is_empty():
		_fail(verdict)


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
			var msg := NeuralSSRuntimeWire.hello(token, f32_output)
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
	if port == 0 and _runtime_process.running() and not fatal_from_runtime:
		_runtime_process.kill()  # a hung or half-dead runtime this client started: start a fresh one
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
		var want := mini(avail, _wire.need - _rx_buf.size())
		var res: Array = _peer.get_partial_data(want)
		if res[0] != OK:
			_fail("reading from the runtime failed (%s)" % error_string(res[0]))
			return
		var got: PackedByteArray = res[1]
		if _rx_buf.is_empty():
			_rx_buf = got
		else:
			_rx_buf.append_array(got)
		if _rx_buf.size() == _wire.need:
			var chunk := _rx_buf
			_rx_buf = PackedByteArray()
			var msg := _wire.take(chunk, state == State.HANDSHAKE)
			if not msg.is_empty():
				_on_message(msg)


func _reset_rx() -> void:
	_wire.reset()
	_rx_buf = PackedByteArray()


func _on_message(msg: Dictionary) -> void:
	match int(msg["type"]):
		NeuralSSRuntimeWire.BAD:
			_fail(str(msg["reason"]))
		NeuralSSRuntimeWire.WELCOME:
			_on_welcome(msg["info"])
		NeuralSSRuntimeWire.RESULT:
			_on_result(msg)
		NeuralSSRuntimeWire.ERROR:
			var what := "%s: %s" % [msg["name"], msg["text"]]
			counters["errors"] += 1
			if bool(msg["fatal"]):
				# the runtime's own words reach the Godot output (e.g. "model x.onnx: not an NSS model")
				_fail(what, state == State.HANDSHAKE)
			else:
				_in_flight.erase(int(msg["id"]))
				_warn_once("err%d" % int(msg["code"]), "neural_ss: runtime rejected frame %d: %s" % [msg["id"], what])


func _on_welcome(info: Dictionary) -> void:
	model_info = info
	counters["connections"] += 1
	var what := "model %s (%s, x%d%s) on %s" % [model_info.get("name", "?"), model_info.get("preset", "?"),
			model_info["scale"], ", jittered input" if bool(model_info.get("jitter", false)) else "",
			model_info.get("provider", "?")]
	if _outage_warned and counters["connections"] > 1:
		print("neural_ss: NEURAL again, runtime reconnected: %s" % what)
	elif counters["connections"] == 1 or _outage_warned:
		var via := ("at %s:%d" % [host, port]) if port > 0 else ("'%s' (pid %d)" % [_runtime_process.exe, _runtime_process.pid])
		print("neural_ss: NEURAL via runtime %s: %s" % [via, what])
	_outage_warned = false
	_backoff_s = backoff_min_s
	_set_state(State.READY, "")


func _on_result(r: Dictionary) -> void:
	var id: int = r["id"]
	var sent: Dictionary = _in_flight.get(id, {})
	_in_flight.erase(id)
	if sent.is_empty():
		return  # a frame from before a reconnect
	var now := _now_ms()
	var latency := now - float(sent["sent_ms"])
	counters["results"] += 1
	var runtime_ms: float = r["server_ms"]
	stats["inference"] = float(r["infer_ms"])
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
				+ "neural_ss/python/budget_ms %.0f)") % [latency, budget_ms])
		return
	var fmt := Image.FORMAT_RGBAF if int(r["fmt"]) == NeuralSSRuntimeWire.FMT_F32 else Image.FORMAT_RGBAH
	var img := Image.create_from_data(int(r["w"]), int(r["h"]), false, fmt, r["pixels"])
	upscaled.emit(img, int(sent["index"]))


func _wait_for_result() -> void:
	var deadline := _now_ms() + stall_timeout_ms
	while not _in_flight.is_empty() and state == State.READY and _now_ms() < deadline:
		poll()
		if not _in_flight.is_empty():
			OS.delay_usec(200)


# --- helpers ---------------------------------------------------------------------------------

func _process_note() -> String:
	return _runtime_process.exit_note() if port == 0 else ""


func _warn_once(key: String, message: String) -> void:
	if not _warned.has(key):
		_warned[key] = true
		push_warning(message)


static func _now_ms() -> float:
	return Time.get_ticks_usec() / 1000.0
