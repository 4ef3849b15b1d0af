/* The implementation in its own translation unit. */
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
