// Loaded by a target with dlopen after the symbolizer took its maps snapshot.
__attribute__((noinline)) int pw_plugin_function(int x) { return x * 5 + 1; }
