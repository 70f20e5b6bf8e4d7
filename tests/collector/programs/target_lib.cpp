// The shared library the target programs link.
namespace pwlib {

void* volatile return_address_sink;

extern "C" __attribute__((noinline)) void* pwlib_return_address() { return __builtin_return_address(0); }

// Returns an address inside itself: the return address of its call (not a tail call). Taking
// a library function's address in a non-PIE program would give its PLT entry in the program.
__attribute__((noinline)) void* library_caller() {
  return_address_sink = pwlib_return_address();
  return return_address_sink;
}

}  // namespace pwlib
