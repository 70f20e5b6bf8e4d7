// A process for the symbolizer tests. It prints "NAME 0xADDRESS" for some of its functions (C,
// C++, static), return addresses in itself and its shared library, an anonymous executable page
// and its load bias, then "ready", and serves commands from stdin until EOF:
//   dlopen PATH   loads PATH and prints "plugin 0xADDRESS" (of pw_plugin_function), then "ready".
// With "--ns DIR" first, it moves to a new mount namespace, mounts a tmpfs on DIR, copies itself
// there and runs that copy, whose path exists in no other namespace.
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pwlib {
void* library_caller();
}

extern "C" __attribute__((noinline)) int pw_leaf(int x) { return x + 1; }

namespace pwtest {

__attribute__((noinline)) long compute(long x) { return x * 3; }

template <typename T>
__attribute__((noinline)) T twice(T x) {
  return x * 2;
}
template long twice<long>(long);

}  // namespace pwtest

static __attribute__((noinline)) int static_function(int x) { return x - 1; }

static void* volatile return_address_sink;

extern "C" __attribute__((noinline)) void* pw_inner() { return __builtin_return_address(0); }

// Not a tail call: the return address pw_inner sees lies inside pw_outer.
extern "C" __attribute__((noinline)) void* pw_outer() {
  return_address_sink = pw_inner();
  return return_address_sink;
}

namespace {

void print(const char* name, const void* address) { std::printf("%s %p\n", name, address); }

// The main program's load bias (run-time address minus ELF virtual address); dl_iterate_phdr
// reports the program first.
ElfW(Addr) program_load_bias() {
  ElfW(Addr) bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        *static_cast<ElfW(Addr)*>(data) = info->dlpi_addr;
        return 1;
      },
      &bias);
  return bias;
}

[[noreturn]] void fail(const char* what) {
  std::printf("error %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void run_in_new_mount_namespace(const char* dir) {
  if (unshare(CLONE_NEWNS) != 0) fail("unshare");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("mount --make-rprivate /");
  if (mount("tmpfs", dir, "tmpfs", 0, "size=64m") != 0) fail("mount tmpfs");
  std::string copy = std::string(dir) + "/pw_target_in_namespace";
  int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  int out = open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  struct stat st {};
  if (in < 0 || out < 0 || fstat(in, &st) != 0) fail("copy");
  for (off_t at = 0; at < st.st_size;)
    if (sendfile(out, in, &at, static_cast<size_t>(st.st_size - at)) <= 0) fail("sendfile");
  close(in);
  close(out);
  char* argv[] = {copy.data(), nullptr};
  execv(copy.c_str(), argv);
  fail("execv");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--ns") == 0) run_in_new_mount_namespace(argv[2]);

  void* anon = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) fail("mmap");
  void* vdso = dlopen("linux-vdso.so.1", RTLD_NOLOAD | RTLD_LAZY);

  print("leaf", reinterpret_cast<const void*>(&pw_leaf));
  print("compute", reinterpret_cast<const void*>(&pwtest::compute));
  print("twice", reinterpret_cast<const void*>(&pwtest::twice<long>));
  print("static", reinterpret_cast<const void*>(&static_function));
  print("outer", reinterpret_cast<const void*>(&pw_outer));
  print("outer_return", pw_outer());
  print("library_return", pwlib::library_caller());
  print("anon_exec", anon);
  print("vdso_clock_gettime", vdso != nullptr ? dlsym(vdso, "__vdso_clock_gettime") : nullptr);
  print("bias", reinterpret_cast<const void*>(program_load_bias()));
  std::printf("ready\n");
  std::fflush(stdout);

  char line[4096];
  while (std::fgets(line, sizeof line, stdin) != nullptr) {
    line[std::strcspn(line, "\n")] = '\0';
    if (std::strncmp(line, "dlopen ", 7) == 0) {
      void* plugin = dlopen(line + 7, RTLD_NOW);
      if (plugin == nullptr) {
        std::printf("error dlopen: %s\n", dlerror());
        std::exit(1);
      }
      print("plugin", dlsym(plugin, "pw_plugin_function"));
      std::printf("ready\n");
      std::fflush(stdout);
    }
  }
  return 0;
}
