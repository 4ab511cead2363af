// jemalloc's settings for the annal binary, which links jemalloc (see
// cli/CMakeLists.txt). jemalloc reads this symbol when it starts; MALLOC_CONF
// in the environment still overrides it.
//
// tcache_max 1 MiB: a read reply of 1,000 events is built in one Cap'n Proto
// segment of about 150 KiB. Above the default cache limit (32 KiB) every such
// buffer went back to the arena and came back as fresh pages (page faults,
// madvise, TLB shootdowns): reads of 1,000-event pages ran at 1.3 M events/s
// instead of 5 M (docs/benchmarks.md, "jemalloc").
extern "C" {
__attribute__((used)) const char* malloc_conf = "tcache_max:1048576";
}
