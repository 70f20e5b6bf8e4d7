#pragma once
// The CPython interpreters the tests run: Debian's /usr/bin/python3.11 always (CI installs it;
// tests fail loudly without it) and every pyenv CPython 3.10 to 3.13 the machine has (likely, not
// guaranteed). Tests over "every interpreter" assert they got a non-empty list.
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

namespace perfwatch::test {

struct TestInterpreter {
  std::string path;
  int minor = 0;     // 3.minor
  std::string name;  // for messages: "debian-3.11", "pyenv-3.12.1"
};

inline const std::string kDebianPython = "/usr/bin/python3.11";
inline const std::string kPythonWorkload = PW_PYTHON_WORKLOAD;

inline std::vector<TestInterpreter> test_interpreters() {
  std::vector<TestInterpreter> found;
  if (std::filesystem::exists(kDebianPython)) found.push_back({kDebianPython, 11, "debian-3.11"});
  std::error_code ec;
  const std::regex version(R"(3\.(1[0-3])\.\d+)");
  for (const auto& entry : std::filesystem::directory_iterator(PW_PYENV_ROOT "/versions", ec)) {
    std::string v = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(v, m, version)) continue;
    std::string path = entry.path().string() + "/bin/python3." + m[1].str();
    if (std::filesystem::exists(path)) found.push_back({path, std::stoi(m[1]), "pyenv-" + v});
  }
  return found;
}

}  // namespace perfwatch::test
