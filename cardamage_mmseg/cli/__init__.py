"""The tools' layer: argument flags, config rewriting asked for on the
command line (label sets, loss presets, speed switches, work dir) and the
mapping of errors to exit codes. Only ``tools/`` import it; the library
below never parses arguments or exits the interpreter."""
