#include "lib/process_setup.h"

#include <malloc.h>
#include <sys/prctl.h>

namespace sqlbak {

void prepare_process() {
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  (void)::mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
  (void)::mallopt(M_ARENA_MAX, 4);
}

}  // namespace sqlbak
