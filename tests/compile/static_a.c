/* RSQ_STATIC: each translation unit has its own private copy; no clashes at link. */
#define RSQ_STATIC
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
int static_b(void);
int main(void) { return static_b() + (rsq_result_str(RSQ_OK)[0] != 'o'); }
