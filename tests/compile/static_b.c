#define RSQ_STATIC
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
int static_b(void) { return rsq_result_str(RSQ_ERR_IO)[0] == 'c' ? 0 : 1; }
