// perflab-build: -static
/* heapexec_static: heapexec (heapexec.c) linked statically, so that no dynamic loader
 * runs before main (claim malloc.heap-after-exec). setup.py reads the first line. */
#include "heapexec.c"
