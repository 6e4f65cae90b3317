// What sqlbakd and sqlbakctl do first, before reading any configuration.
#pragma once

namespace sqlbak {

// Both programs hold secrets (S3 keys, the SMTP password, the HTTP token) in
// memory: no core dump, and no ptrace or /proc/PID/mem by the same non-root
// user (PR_SET_DUMPABLE). And both pass 1–16 MiB buffers between threads
// (batches, blocks, packs): with glibc's default, each such buffer freed raises
// the mmap threshold up to 32 MiB, after which they come from per-thread
// arenas that keep what they once held: a daemon's RSS creeps up job after job,
// and one backup's peak holds several packs' worth of freed memory. A fixed
// 2 MiB threshold keeps packs mmapped and returned to the system when freed,
// while the 1 MiB batches and blocks, allocated thousands of times a backup,
// are reused from the arenas (mmapping each costs a backup ~10 % in page
// faults); fewer arenas bound what those keep.
void prepare_process();

}  // namespace sqlbak
