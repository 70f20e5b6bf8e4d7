// A program that embeds CPython through libpython3.11.so, so that its _PyRuntime is in the library
// and not in the executable: pw_embed_python SCRIPT ARGS... runs SCRIPT as the python command would.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

int main(int argc, char** argv) { return Py_BytesMain(argc, argv); }
