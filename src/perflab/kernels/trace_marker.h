/* trace_marker.h: the marker call a traced kernel makes around the region it wants
 * counted apart from process start-up and exit (perflab.observe.trace.count(..., region=...),
 * `perflab trace --region`). Counting covers the calls made between the first and the
 * second marker call, by every thread and child; the markers themselves are not in it.
 *
 * The marker is getpgrp(2): no arguments, no effect, and no part of a C program's
 * start-up or of glibc's malloc, stdio or pthreads (shells call it for job control, so
 * do not use it to mark a region of a shell script). Made with syscall(2) so that no
 * library may answer it from a cache.
 */
#ifndef PERFLAB_TRACE_MARKER_H
#define PERFLAB_TRACE_MARKER_H

#include <sys/syscall.h>
#include <unistd.h>

#define TRACE_MARKER_NAME "getpgrp"

static inline void trace_marker(void)
{
    syscall(SYS_getpgrp);
}

#endif /* PERFLAB_TRACE_MARKER_H */
