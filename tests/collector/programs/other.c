// A different program, to replace a target's binary at the same path.
#include <stdio.h>

__attribute__((noinline)) int pw_other_function(int x) { return x * 11 + 2; }

int main(void) {
  printf("other_function %p\nready\n", (void*)&pw_other_function);
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) pw_other_function(line[0]);
  return 0;
}
