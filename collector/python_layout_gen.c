/* Build step: compiled against one CPython include directory (with its internal headers) and
 * run, it prints that version's PythonLayout (collector/python_layout.h) as a C++ initializer,
 * every offset taken with offsetof from CPython's own structs. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>

#if PY_VERSION_HEX >= 0x030b0000
#include "internal/pycore_frame.h"
#else
#include <frameobject.h>
#endif
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#if PY_VERSION_HEX < 0x030a0000
#error "CPython before 3.10 is not supported"
#endif

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

#if PY_VERSION_HEX >= 0x030b0000
typedef _PyInterpreterFrame Frame;
#define FRAME_PREVIOUS previous
#if PY_VERSION_HEX >= 0x030d0000
#define FRAME_CODE f_executable
#define FRAME_INSTR instr_ptr
#else
#define FRAME_CODE f_code
#define FRAME_INSTR prev_instr
#endif
#else
typedef PyFrameObject Frame;
#define FRAME_PREVIOUS f_back
#define FRAME_CODE f_code
#define FRAME_INSTR f_lasti
#endif

int main(int argc, char **argv)
{
	const char *source = argc > 1 ? argv[1] : "";
	size_t tag_base = offsetof(PyCodeObject, co_firstlineno);
	size_t frame_read = MAX(END(Frame, FRAME_CODE), MAX(END(Frame, FRAME_PREVIOUS), END(Frame, FRAME_INSTR)));
	size_t code_end = MAX(END(PyCodeObject, co_linetable), MAX(END(PyCodeObject, co_filename), END(PyCodeObject, co_name)));

	printf("{%d, %d, {\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
	printf("  .runtime_interp_main = %zu,\n", offsetof(_PyRuntimeState, interpreters.main));
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .interp_threads_head = %zu,\n", offsetof(PyInterpreterState, threads.head));
#else
	printf("  .interp_threads_head = %zu,\n", offsetof(PyInterpreterState, tstate_head));
#endif
	printf("  .tstate_next = %zu,\n", offsetof(PyThreadState, next));
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .tstate_thread_id = %zu,\n", offsetof(PyThreadState, native_thread_id));
#else
	printf("  .tstate_thread_id = %zu,\n", offsetof(PyThreadState, thread_id));
#endif
#if PY_VERSION_HEX >= 0x030d0000
	printf("  .tstate_cframe = PY_ABSENT,\n  .current_frame = %zu,\n", offsetof(PyThreadState, current_frame));
#elif PY_VERSION_HEX >= 0x030b0000
	printf("  .tstate_cframe = %zu,\n  .current_frame = %zu,\n", offsetof(PyThreadState, cframe),
	       offsetof(_PyCFrame, current_frame));
#else
	printf("  .tstate_cframe = PY_ABSENT,\n  .current_frame = %zu,\n", offsetof(PyThreadState, frame));
#endif
	printf("  .frame_code = %zu,\n", offsetof(Frame, FRAME_CODE));
	printf("  .frame_previous = %zu,\n", offsetof(Frame, FRAME_PREVIOUS));
	printf("  .frame_instr = %zu,\n", offsetof(Frame, FRAME_INSTR));
#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030c0000
	printf("  .frame_is_entry = %zu,\n", offsetof(Frame, is_entry));
	frame_read = MAX(frame_read, END(Frame, is_entry));
#else
	printf("  .frame_is_entry = PY_ABSENT,\n");
#endif
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .frame_owner = %zu,\n", offsetof(Frame, owner));
	frame_read = MAX(frame_read, END(Frame, owner));
#else
	printf("  .frame_owner = PY_ABSENT,\n");
#endif
	printf("  .frame_read = %zu,\n", frame_read);
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .code_units = %zu,\n", offsetof(PyCodeObject, co_code_adaptive));
#else
	printf("  .code_units = PY_ABSENT,\n");
#endif
	printf("  .code_tag_base = %zu,\n", tag_base);
	printf("  .code_firstlineno = 0,\n");
	printf("  .code_filename = %zu,\n", offsetof(PyCodeObject, co_filename) - tag_base);
	printf("  .code_name = %zu,\n", offsetof(PyCodeObject, co_name) - tag_base);
	printf("  .code_linetable = %zu,\n", offsetof(PyCodeObject, co_linetable) - tag_base);
	printf("  .code_read = %zu,\n", code_end - tag_base);
#if PY_VERSION_HEX >= 0x030c0000
	printf("  .owner_cstack = %d,\n", FRAME_OWNED_BY_CSTACK);
	printf("  .flags = 0,\n");
#elif PY_VERSION_HEX >= 0x030b0000
	printf("  .owner_cstack = 0xff,\n");
	printf("  .flags = 0,\n");
#else
	printf("  .owner_cstack = 0xff,\n");
	printf("  .flags = PY_LAYOUT_LASTI_INDEX | PY_LAYOUT_PTHREAD_ID | PY_LAYOUT_ALL_ENTRY,\n");
#endif
	printf("}, {\n");
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .code_qualname = %zu,\n", offsetof(PyCodeObject, co_qualname));
	code_end = MAX(code_end, END(PyCodeObject, co_qualname));
#else
	printf("  .code_qualname = PY_ABSENT,\n");
#endif
	printf("  .code_size = %zu,\n", code_end);
	printf("  .unicode_state = %zu,\n", offsetof(PyASCIIObject, state));
	printf("  .unicode_length = %zu,\n", offsetof(PyASCIIObject, length));
	printf("  .unicode_ascii_data = %zu,\n", sizeof(PyASCIIObject));
	printf("  .unicode_compact_data = %zu,\n", sizeof(PyCompactUnicodeObject));
	printf("  .bytes_size = %zu,\n", offsetof(PyVarObject, ob_size));
	printf("  .bytes_data = %zu,\n", offsetof(PyBytesObject, ob_sval));
#if PY_VERSION_HEX >= 0x030b0000
	printf("  .line_table = LineTableFormat::locations,\n");
#else
	printf("  .line_table = LineTableFormat::pep626,\n");
#endif
	printf("}, \"%s\"},\n", source);
	return 0;
}
