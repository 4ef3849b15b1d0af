/* A second translation unit that only uses the declarations. */
#include "../../rsq.h"
int main(void) {
    rsq_client_config cfg;
    rsq_client c;
    rsq_client_config_init(&cfg);
    cfg.url = "redis://127.0.0.1:1";
    if (rsq_client_init(&c, &cfg) != RSQ_OK) return 1;
    rsq_client_free(&c);
    return rsq_result_str(RSQ_OK)[0] == 'o' ? 0 : 1;
}
