// The header and the implementation compiled as C++.
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
#include <string>
int main() {
    rsq_reader rd;
    const rsq_reply *r = 0;
    rsq_reader_init(&rd, 0, 0);
    std::string in = "*1\r\n+ok\r\n";
    rsq_reader_feed(&rd, in.data(), in.size());
    int ok = rsq_reader_next(&rd, &r) == RSQ_OK && r->len == 1;
    rsq_reader_free(&rd);
    return ok ? 0 : 1;
}
