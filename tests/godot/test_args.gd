class_name TestArgs
extends RefCounted
## `--key value` pairs after `--` on the command line.


static func parse() -> Dictionary:
	var out := {}
	var args := OS.get_cmdline_user_args()
	var i := 0
	while i < args.size():
		var a: String = args[i]
		if a.begins_with("--"):
			var has_value := i + 1 < args.size() and not String(args[i + 1]).begins_with("--")
			out[a.substr(2)] = args[i + 1] if has_value else "1"
			i += 2 if has_value else 1
		else:
			i += 1
	return out
