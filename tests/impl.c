/* impl.c - the one translation unit of the test runner that holds the implementation. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
