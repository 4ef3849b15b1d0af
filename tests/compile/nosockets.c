/* The core without the socket transport, as a firmware build has it. */
#define RSQ_NO_SOCKETS
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
int rsq_nosockets_probe(void);
int rsq_nosockets_probe(void) { return rsq_result_str(RSQ_OK)[0]; }
