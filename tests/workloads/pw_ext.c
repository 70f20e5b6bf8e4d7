// A CPython extension module for the end-to-end tests: C code called from Python, built with frame
// pointers, so its native frames (pw_ext_spin -> ext_outer -> ext_inner) can be shown beneath the
// Python function that called it.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static volatile unsigned long sink;

// A stack slot, so that even this leaf function sets up its frame (GCC leaves frameless leaves
// without one whatever the flags, and a frame-pointer unwind then skips their caller).
__attribute__((noinline)) static unsigned long ext_inner(long n) {
  volatile unsigned long x = sink;
  for (long i = 0; i < n; ++i) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

__attribute__((noinline)) static unsigned long ext_outer(long n) {
  unsigned long x = ext_inner(n);
  __asm__ volatile("" ::: "memory");
  return x;
}

static PyObject* pw_ext_spin(PyObject* self, PyObject* arg) {
  (void)self;
  long n = PyLong_AsLong(arg);
  if (n < 0 && PyErr_Occurred()) return NULL;
  sink = ext_outer(n);
  return PyLong_FromUnsignedLong(sink);
}

static PyMethodDef methods[] = {
    {"spin", pw_ext_spin, METH_O, "spin(n): n rounds of arithmetic in C"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pw_ext", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_pw_ext(void) { return PyModule_Create(&module); }
