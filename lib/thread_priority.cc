#include "lib/thread_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sqlbak {

void run_below_applications() {
  const auto tid = static_cast<id_t>(::gettid());
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  // Best effort: a refusal (a seccomp filter) leaves the thread as it was.
  (void)::setpriority(PRIO_PROCESS, tid, std::min(19, current + kBackgroundNice));
}

}  // namespace sqlbak
