// Lowering the priority of a backup's worker threads below the application's.
//
// In WAL mode a backup's hasher, compressors, assembler, storer and its early
// integrity check run this way (Linux keeps a niceness per thread): on a busy
// host the backup takes longer instead of delaying the application's commits,
// and on an idle one nothing changes. Niceness only weighs against threads of
// the same session or CPU cgroup: it helps sqlbakctl run beside the
// application, while sqlbakd's unit sets CPUWeight= instead (and its syscall
// filter refuses setpriority, which is then a no-op). Not in rollback-journal
// mode, where the step thread holds a lock the application's writers wait for
// and may itself wait for these threads (a full queue).
#pragma once

namespace sqlbak {

// Adds kBackgroundNice to the calling thread's niceness; best effort.
void run_below_applications();

inline constexpr int kBackgroundNice = 10;

}  // namespace sqlbak
