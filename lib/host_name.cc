#include "lib/host_name.h"

#include <unistd.h>

namespace sqlbak {

std::string local_host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace sqlbak
