/*
 * tutti-info: what this build of tutti can do here, and every setting with
 * its value (from the environment), default and help.
 */
#include "config.h"

#include "reduce/reduce.h"
#include "transports/transport.h"
#include "tutti.h"

#include <stdio.h>
#include <string.h>

static void print_build(void)
{
    int major, minor, patch;
    tutti_version(&major, &minor, &patch);
    printf("tutti %d.%d.%d\n\n", major, minor, patch);
    printf("reduction kernels: %s on this CPU (built:", tt_reduce_isa_names[tt_reduce_best_isa()]);
    for (int isa = TT_REDUCE_ISA_GENERIC; isa < TT_REDUCE_ISA_COUNT; isa++)
        if (tt_reduce_kernel((tt_reduce_isa_t)isa, TUTTI_FP32, TUTTI_SUM) != NULL)
            printf(" %s", tt_reduce_isa_names[isa]);
    printf(")\n");
    printf("transports:\n");
    for (int t = 0; tt_transports[t] != NULL; t++) {
        char why[160] = "";
        int ok = tt_transports[t]->available(why, sizeof(why));
        printf("  %-6s %s%s%s\n", tt_transports[t]->name, ok ? "available" : "unavailable",
               ok ? "" : ": ", why);
    }
}

int main(int argc, char **argv)
{
    tutti_config_t config;
    tutti_setting_t s;

    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: tutti-info\nPrints the build, the transports and every TUTTI_* setting.\n");
        return 0;
    }
    print_build();
    if (tutti_config_create(&config) != TUTTI_OK)
        return 1;
    printf("\nsettings (environment variable = value [default]):\n");
    for (size_t i = 0; tutti_config_setting(config, i, &s) == TUTTI_OK; i++)
        printf("  %s = %s [%s]\n      %s\n", s.name, s.value, s.default_value, s.help);
    tutti_config_destroy(config);
    return 0;
}
