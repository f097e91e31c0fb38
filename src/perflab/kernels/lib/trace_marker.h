/* trace_marker.h: the marker call a traced kernel makes around the region it wants
 * counted apart from process start-up and exit (perflab.observe.trace.count(..., region=...),
 * `perflab trace --region`). Counting covers the calls made between the first and the
 * second marker call, by every thread and child; the markers themselves are not in it.
 *
 * The marker is getpgrp(2): no arguments, no effect, and no part of a C program's
 * start-up or of glibc's malloc, stdio or pthreads (shells call it for job control, so
 * do not use it to mark a region of a shell script). Made with syscall(2) so that no
 * library may answer it from a cache.
 *
 * trace_marker() is defined in trace_marker.c, out of line: it is never inside a timed
 * interval (trace_control.c reads the clock after the first marker and before the
 * second), and what a tracer counts between markers is system calls, which a function
 * call does not make.
 */
#ifndef PERFLAB_TRACE_MARKER_H
#define PERFLAB_TRACE_MARKER_H

#define TRACE_MARKER_NAME "getpgrp"

void trace_marker(void);

#endif /* PERFLAB_TRACE_MARKER_H */
